#include "texshare/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <type_traits>
#include <utility>

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

// Result<T> is a tagged union (issue 12 item 11: no std::variant visitation per Result):
// every copy, move and assignment between the two states builds and destroys exactly what
// it holds. Counted: a value is destroyed once per value built, whichever way it went.
struct Counted {
    static inline int alive = 0;
    int n = 0;
    explicit Counted(int value) : n(value) { ++alive; }
    Counted(const Counted& other) : n(other.n) { ++alive; }
    Counted(Counted&& other) noexcept : n(std::exchange(other.n, -1)) { ++alive; }
    Counted& operator=(const Counted&) = default;
    Counted& operator=(Counted&&) noexcept = default;
    ~Counted() { --alive; }
};

TEST(ResultTest, CopiesMovesAndAssignmentsBetweenValueAndErrorKeepEveryObjectOnce) {
    Counted::alive = 0;
    {
        Result<Counted> value = Counted(1);
        Result<Counted> error = make_error(Errc::protocol, "no {}", "value");
        EXPECT_EQ(Counted::alive, 1);
        Result<Counted> copy = value;  // copy of a value
        EXPECT_EQ(Counted::alive, 2);
        EXPECT_EQ(copy->n, 1);
        Result<Counted> error_copy = error;  // copy of an error
        EXPECT_EQ(error_copy.error().message, "no value");
        EXPECT_EQ(Counted::alive, 2);
        copy = error;  // value <- error: the value goes
        EXPECT_EQ(Counted::alive, 1);
        ASSERT_FALSE(copy);
        EXPECT_EQ(copy.error().message, "no value");
        copy = value;  // error <- value
        EXPECT_EQ(Counted::alive, 2);
        ASSERT_TRUE(copy);
        EXPECT_EQ(copy->n, 1);
        copy = Result<Counted>(Counted(7));  // value <- value, by move
        EXPECT_EQ(copy->n, 7);
        EXPECT_EQ(Counted::alive, 2);
        Result<Counted> moved = std::move(copy);  // move of a value
        EXPECT_EQ(moved->n, 7);
        moved = std::move(error_copy);  // value <- error, by move
        EXPECT_EQ(Counted::alive, 2);  // `copy` still holds its moved-from value
        ASSERT_FALSE(moved);
        EXPECT_EQ(moved.error().message, "no value");
        error = make_error(Errc::timed_out, "later");  // error <- error
        EXPECT_EQ(error.error().code, Errc::timed_out);
        const Result<Counted>& same = moved;
        moved = same;  // self-assignment changes nothing
        ASSERT_FALSE(moved);
        EXPECT_EQ(moved.error().message, "no value");
    }
    EXPECT_EQ(Counted::alive, 0) << "a value was destroyed twice or never";
}

TEST(ResultTest, MoveOnlyResultsMoveBetweenStates) {
    Result<std::unique_ptr<int>> a = std::make_unique<int>(3);
    Result<std::unique_ptr<int>> b = make_error(Errc::protocol, "none");
    b = std::move(a);
    ASSERT_TRUE(b);
    EXPECT_EQ(**b, 3);
    a = make_error(Errc::protocol, "gone");
    b = std::move(a);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().message, "gone");
    static_assert(!std::is_copy_constructible_v<Result<std::unique_ptr<int>>>);
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
