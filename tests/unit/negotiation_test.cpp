#include "texshare/negotiation.hpp"

#include <gtest/gtest.h>

namespace texshare {
namespace {

constexpr std::uint64_t gpu_a = 0xe280, gpu_b = 0xe281;
constexpr std::uint64_t tiled = I915_FORMAT_MOD_Y_TILED, x_tiled = I915_FORMAT_MOD_X_TILED;

FormatTable consumer_on(std::uint64_t device) {
    return FormatTable{device,
                       {{DRM_FORMAT_ARGB8888, format_scanout, tiled},
                        {DRM_FORMAT_ARGB8888, 0, x_tiled},
                        {DRM_FORMAT_ARGB8888, 0, DRM_FORMAT_MOD_LINEAR},
                        {DRM_FORMAT_XRGB8888, 0, DRM_FORMAT_MOD_LINEAR}}};
}

ProducerCapabilities producer_on(std::uint64_t device) {
    return ProducerCapabilities{device,
                                {{DRM_FORMAT_ARGB8888, {DRM_FORMAT_MOD_LINEAR, x_tiled, tiled}},
                                 {DRM_FORMAT_XRGB8888, {DRM_FORMAT_MOD_LINEAR}}}};
}

const std::uint32_t argb_then_xrgb[] = {DRM_FORMAT_ARGB8888, DRM_FORMAT_XRGB8888};

TEST(NegotiationTest, SameDeviceTakesEveryCommonModifierInTheConsumersOrder) {
    auto choice = negotiate(consumer_on(gpu_a), producer_on(gpu_a), argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::zero_copy);
    EXPECT_EQ(choice->fourcc, DRM_FORMAT_ARGB8888);
    EXPECT_EQ(choice->modifiers, (std::vector<std::uint64_t>{tiled, x_tiled, DRM_FORMAT_MOD_LINEAR}));
    EXPECT_NE(choice->reason.find("both sides on device 0xe280"), std::string::npos) << choice->reason;
}

TEST(NegotiationTest, DifferentDevicesFallBackToLinear) {
    auto choice = negotiate(consumer_on(gpu_b), producer_on(gpu_a), argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::linear_cross_device);
    EXPECT_EQ(choice->modifiers, (std::vector<std::uint64_t>{DRM_FORMAT_MOD_LINEAR}));
    EXPECT_NE(choice->reason.find("LINEAR only"), std::string::npos) << choice->reason;
}

TEST(NegotiationTest, AnUnknownConsumerDeviceIsTreatedAsAnotherDevice) {
    auto choice = negotiate(consumer_on(0), producer_on(0), argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::linear_cross_device);
}

TEST(NegotiationTest, NoCommonDmaBufFormatMeansSharedMemory) {
    FormatTable tiled_only{gpu_b, {{DRM_FORMAT_ARGB8888, 0, tiled}}};
    auto choice = negotiate(tiled_only, producer_on(gpu_a), argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::shared_memory);
    EXPECT_EQ(choice->fourcc, DRM_FORMAT_ARGB8888);
    EXPECT_TRUE(choice->modifiers.empty());
    EXPECT_NE(choice->reason.find("shared memory"), std::string::npos);
}

TEST(NegotiationTest, AFormatTheProducerCannotAllocateIsSkipped) {
    ProducerCapabilities xrgb_only{gpu_a, {{DRM_FORMAT_XRGB8888, {DRM_FORMAT_MOD_LINEAR}}}};
    auto choice = negotiate(consumer_on(gpu_a), xrgb_only, argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->fourcc, DRM_FORMAT_XRGB8888);
    EXPECT_EQ(choice->path, SharingPath::zero_copy);
}

TEST(NegotiationTest, ANoGpuProducerSharesMemory) {
    auto choice = negotiate(consumer_on(gpu_a), ProducerCapabilities{}, argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::shared_memory);
}

TEST(NegotiationTest, WantingNothingIsAnError) {
    auto choice = negotiate(consumer_on(gpu_a), producer_on(gpu_a), {});
    ASSERT_FALSE(choice);
    EXPECT_EQ(choice.error().code, Errc::unsupported);
}

}  // namespace
}  // namespace texshare
