// The hello (frame/hello.hpp): version, role and feature checks, in their documented order.
#include "texshare/frame/hello.hpp"

#include <gtest/gtest.h>

#include "support/frame_pair.hpp"

namespace texshare {
namespace {

using testing::expect_error;

constexpr std::uint64_t both = hello_feature_pacing | hello_feature_feedback;

TEST(FrameHello, TheMessageSaysThisVersionRoleAndFeatures) {
    const FrameMessage m = make_hello_message(HelloRole::producer, hello_feature_feedback);
    EXPECT_EQ(m.kind, static_cast<std::uint32_t>(FrameKind::hello));
    EXPECT_EQ(m.image_id, 0U);
    const Hello hello = m.payload_as<Hello>();
    EXPECT_EQ(hello.major, frame_protocol_major);
    EXPECT_EQ(hello.minor, frame_protocol_minor);
    EXPECT_EQ(hello.role, static_cast<std::uint32_t>(HelloRole::producer));
    EXPECT_EQ(hello.features, hello_feature_feedback);
    std::array<UniqueFd, frame_fd_slots> fds{};
    EXPECT_TRUE(check_frame_message(m, fds));
}

TEST(FrameHello, FeaturesAreTheIntersectionAndUnknownBitsAreIgnored) {
    FrameMessage m = make_hello_message(HelloRole::consumer, both | (std::uint64_t{1} << 40));
    auto features = check_hello(m, HelloRole::consumer, hello_feature_feedback);
    ASSERT_TRUE(features) << features.error().message;
    EXPECT_EQ(*features, hello_feature_feedback);
    features = check_hello(m, HelloRole::consumer, both | (std::uint64_t{1} << 40));
    ASSERT_TRUE(features);
    EXPECT_EQ(*features, both);
}

TEST(FrameHello, AnotherMinorVersionIsFine) {
    FrameMessage m = make_hello_message(HelloRole::producer, both);
    m.edit_payload<Hello>([](Hello& h) { h.minor = 7; });
    EXPECT_TRUE(check_hello(m, HelloRole::producer, both));
}

TEST(FrameHello, AnotherMajorVersionIsRefusedNamingBothFirst) {
    for (std::uint16_t major : {std::uint16_t{1}, std::uint16_t{3}, std::uint16_t{0xffff}}) {
        FrameMessage m = make_hello_message(HelloRole::producer, both);
        // Whatever else is wrong (role, trailing bytes), the version is named first.
        m.edit_payload<Hello>([&](Hello& h) {
            h.major = major;
            h.minor = 4;
            h.role = 77;
        });
        m.payload[frame_payload_bytes - 1] = std::byte{1};
        expect_error(check_hello(m, HelloRole::producer, both).error(), Errc::protocol,
                     "the producer speaks frame protocol " + std::to_string(major) + ".4, this side 2.0");
    }
}

TEST(FrameHello, TheWrongRoleAndTrailingBytesAreRefused) {
    FrameMessage m = make_hello_message(HelloRole::producer, both);
    expect_error(check_hello(m, HelloRole::consumer, both).error(), Errc::protocol,
                 "hello from the consumer's end says role 1 (producer), not consumer");
    m.payload[sizeof(Hello)] = std::byte{9};
    expect_error(check_hello(m, HelloRole::producer, both).error(), Errc::protocol,
                 "hello from the producer: payload byte 16 is 9, not 0");
}

}  // namespace
}  // namespace texshare
