#include "texshare/result.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace texshare {
namespace {

Result<int> parse_positive(int value) {
    if (value <= 0) return make_error(Errc::invalid_argument, "value {} is not positive", value);
    return value;
}

TEST(ResultTest, HoldsValue) {
    auto result = parse_positive(3);
    ASSERT_TRUE(result);
    EXPECT_TRUE(result.has_value());
    EXPECT_EQ(*result, 3);
    EXPECT_EQ(result.value(), 3);
}

TEST(ResultTest, HoldsErrorWithFormattedMessage) {
    auto result = parse_positive(-2);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, Errc::invalid_argument);
    EXPECT_EQ(result.error().message, "value -2 is not positive");
    EXPECT_EQ(result.error().sys_errno, 0);
    EXPECT_EQ(fmt::format("{}", result.error()), "invalid_argument: value -2 is not positive");
}

TEST(ResultTest, SystemErrorNamesErrno) {
    Error error = make_sys_error(EBADF, "close of fd {}", 9);
    EXPECT_EQ(error.code, Errc::system);
    EXPECT_EQ(error.sys_errno, EBADF);
    EXPECT_EQ(error.message, "close of fd 9: Bad file descriptor (errno 9)");
    Error peer = make_sys_error_as(Errc::peer_closed, EPIPE, "sendmsg");
    EXPECT_EQ(peer.code, Errc::peer_closed);
    EXPECT_EQ(peer.sys_errno, EPIPE);
}

TEST(ResultTest, MoveOnlyValues) {
    Result<std::unique_ptr<int>> result = std::make_unique<int>(5);
    ASSERT_TRUE(result);
    std::unique_ptr<int> taken = std::move(result).value();
    EXPECT_EQ(*taken, 5);
}

TEST(ResultTest, VoidResult) {
    Result<void> ok;
    EXPECT_TRUE(ok);
    Result<void> failed = make_error(Errc::protocol, "bad {}", "frame");
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code, Errc::protocol);
    EXPECT_EQ(failed.error().message, "bad frame");
}

TEST(ResultTest, EveryErrcHasAName) {
    for (Errc code :
         {Errc::invalid_argument, Errc::invalid_layout, Errc::unsupported, Errc::fd_not_open, Errc::system, Errc::library,
          Errc::would_block, Errc::peer_closed, Errc::truncated, Errc::protocol, Errc::rejected, Errc::timed_out,
          Errc::connection_refused, Errc::fds_in_flight_limit}) {
        EXPECT_NE(to_string(code), "unknown");
    }
}

TEST(ResultDeathTest, ValueOfAnErrorAbortsWithItsMessage) {
    EXPECT_DEATH({ (void)*parse_positive(-5); }, "Result::value\\(\\) on an error: invalid_argument: value -5 is not positive");
}

TEST(ResultDeathTest, ErrorOfAValueAborts) {
    EXPECT_DEATH({ (void)parse_positive(5).error(); }, "Result::error\\(\\) on a value");
    Result<void> ok;
    EXPECT_DEATH({ (void)ok.error(); }, "Result::error\\(\\) on a value");
}

TEST(ResultDeathTest, ValueOfAVoidErrorAbortsWithItsMessage) {
    Result<void> failed = make_error(Errc::protocol, "bad {}", "frame");
    EXPECT_DEATH({ failed.value(); }, "Result::value\\(\\) on an error: protocol: bad frame");
    Result<void> ok;
    ok.value();  // success: nothing happens
}

}  // namespace
}  // namespace texshare
