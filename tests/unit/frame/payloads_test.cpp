// The per-kind payloads (frame/payloads.hpp): their wire layout, field by field, as a
// compatible peer written in another language would lay them out.
#include "texshare/frame/payloads.hpp"

#include <gtest/gtest.h>

#include <cstddef>

namespace texshare {
namespace {

static_assert(sizeof(Hello) == 16 && offsetof(Hello, major) == 0 && offsetof(Hello, minor) == 2 &&
              offsetof(Hello, role) == 4 && offsetof(Hello, features) == 8);
static_assert(sizeof(BeginFrame) == 24 && offsetof(BeginFrame, sequence) == 0 &&
              offsetof(BeginFrame, target_time_ns) == 8 && offsetof(BeginFrame, interval_ns) == 16);
static_assert(sizeof(DamageRect) == 16);
static_assert(offsetof(PresentMetadata, begin_frame_sequence) == 0 &&
              offsetof(PresentMetadata, content_time_ns) == 8 && offsetof(PresentMetadata, flags) == 16 &&
              offsetof(PresentMetadata, damage_count) == 20 && offsetof(PresentMetadata, damage) == 24);
static_assert(sizeof(PresentationFeedback) == 24 && offsetof(PresentationFeedback, time_ns) == 0 &&
              offsetof(PresentationFeedback, begin_frame_sequence) == 8 &&
              offsetof(PresentationFeedback, flags) == 16 && offsetof(PresentationFeedback, reserved) == 20);

TEST(FramePayloads, DefaultsAreAllZeroSoAnEmptyPresentMeansWholeImageDamage) {
    const PresentMetadata metadata;
    EXPECT_EQ(metadata.damage_count, 0U);
    EXPECT_EQ(metadata.begin_frame_sequence, 0U);
    for (const DamageRect& r : metadata.damage) EXPECT_EQ(r, DamageRect{});
    const PresentationFeedback feedback;
    EXPECT_EQ(feedback.time_ns, 0);
    EXPECT_EQ(feedback.flags, 0U);
}

TEST(FramePayloads, KnownBitsAreExactlyTheNamedOnes) {
    EXPECT_EQ(known_present_flags, 0x1U);
    EXPECT_EQ(known_presented_flags, 0x3U);
    EXPECT_EQ(known_hello_features, 0x3U);
}

}  // namespace
}  // namespace texshare
