#include "texshare/negotiation.hpp"

#include <sys/sysmacros.h>

#include <gtest/gtest.h>

namespace texshare {
namespace {

const std::uint64_t gpu_a = makedev(14, 128), gpu_b = makedev(14, 129);
constexpr std::uint64_t tiled = I915_FORMAT_MOD_Y_TILED, x_tiled = I915_FORMAT_MOD_X_TILED;

FormatTable consumer_on(std::uint64_t device) {
    return FormatTable{device,
                       {{DRM_FORMAT_ARGB8888, tiled, format_scanout},
                        {DRM_FORMAT_ARGB8888, x_tiled},
                        {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR},
                        {DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR}}};
}

ProducerCapabilities producer_on(std::uint64_t device) {
    return ProducerCapabilities{device,
                                {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR},
                                 {DRM_FORMAT_ARGB8888, x_tiled},
                                 {DRM_FORMAT_ARGB8888, tiled},
                                 {DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR}}};
}

const std::uint32_t argb_then_xrgb[] = {DRM_FORMAT_ARGB8888, DRM_FORMAT_XRGB8888};

TEST(NegotiationTest, SameDeviceTakesEveryCommonModifierInTheConsumersOrder) {
    auto choice = negotiate(consumer_on(gpu_a), producer_on(gpu_a), argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::zero_copy);
    EXPECT_EQ(choice->fourcc, DRM_FORMAT_ARGB8888);
    EXPECT_EQ(choice->modifiers, (std::vector<std::uint64_t>{tiled, x_tiled, DRM_FORMAT_MOD_LINEAR}));
    EXPECT_NE(choice->reason.find("both sides on one device (consumer 14:128, producer 14:128)"),
              std::string::npos)
        << choice->reason;
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
    FormatTable tiled_only{gpu_b, {{DRM_FORMAT_ARGB8888, tiled}}};
    auto choice = negotiate(tiled_only, producer_on(gpu_a), argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::shared_memory);
    EXPECT_EQ(choice->fourcc, DRM_FORMAT_ARGB8888);
    EXPECT_TRUE(choice->modifiers.empty());
    EXPECT_NE(choice->reason.find("shared memory"), std::string::npos);
}

TEST(NegotiationTest, AFormatTheProducerCannotAllocateIsSkipped) {
    ProducerCapabilities xrgb_only{gpu_a, {{DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR}}};
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

// Issue 14 item 4: a consumer that converts shared memory (udmabuf) and imports LINEAR gets
// the memfds a producer without a GPU can make as DMA-BUFs, instead of a copy per frame.
FormatTable converting(FormatTable table) {
    table.capabilities = consumer_converts_shared_memory;
    return table;
}

TEST(NegotiationTest, ANoGpuProducerAndAConvertingConsumerShareMemoryThroughUdmabuf) {
    auto choice = negotiate(converting(consumer_on(gpu_a)), ProducerCapabilities{}, argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::shared_memory_udmabuf) << choice->reason;
    EXPECT_EQ(choice->fourcc, DRM_FORMAT_ARGB8888);
    EXPECT_TRUE(choice->modifiers.empty()) << "the producer allocates memfds, not GBM buffers";
    EXPECT_EQ(choice->stride_alignment, 256U) << "rows a GPU imports as they are";
    EXPECT_NE(choice->reason.find("shared memory, imported through udmabuf"), std::string::npos) << choice->reason;
    EXPECT_STREQ(to_string(choice->path), "shared memory, imported through udmabuf");
}

TEST(NegotiationTest, UdmabufNeedsAFormatTheConsumerImportsLinear) {
    // ARGB8888 only tiled: udmabuf gives LINEAR DMA-BUFs, so the producer's second choice it is.
    const FormatTable consumer = converting(
        FormatTable{gpu_a, {{DRM_FORMAT_ARGB8888, tiled}, {DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR}}});
    auto choice = negotiate(consumer, ProducerCapabilities{}, argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::shared_memory_udmabuf);
    EXPECT_EQ(choice->fourcc, DRM_FORMAT_XRGB8888);

    const FormatTable tiled_only = converting(FormatTable{gpu_a, {{DRM_FORMAT_ARGB8888, tiled}}});
    auto copy = negotiate(tiled_only, ProducerCapabilities{}, argb_then_xrgb);
    ASSERT_TRUE(copy);
    EXPECT_EQ(copy->path, SharingPath::shared_memory);
    EXPECT_NE(copy->reason.find("imports none of them LINEAR"), std::string::npos) << copy->reason;
}

TEST(NegotiationTest, UdmabufIsOnlyTheFallbackNeverInsteadOfADmaBufPath) {
    auto same = negotiate(converting(consumer_on(gpu_a)), producer_on(gpu_a), argb_then_xrgb);
    ASSERT_TRUE(same);
    EXPECT_EQ(same->path, SharingPath::zero_copy);
    auto across = negotiate(converting(consumer_on(gpu_b)), producer_on(gpu_a), argb_then_xrgb);
    ASSERT_TRUE(across);
    EXPECT_EQ(across->path, SharingPath::linear_cross_device);
}

TEST(NegotiationTest, EveryPathHasAName) {
    EXPECT_STREQ(to_string(SharingPath::zero_copy), "zero-copy");
    EXPECT_STREQ(to_string(SharingPath::linear_cross_device), "linear across devices");
    EXPECT_STREQ(to_string(SharingPath::shared_memory), "shared memory");
    EXPECT_STREQ(to_string(SharingPath::shared_memory_udmabuf), "shared memory, imported through udmabuf");
}

// Issue 12 item 4: a producer on the primary node (/dev/dri/card0, 226:0) and a consumer on
// the render node (/dev/dri/renderD128, 226:128) of one GPU are one device. negotiate() asks
// its device identity, not the raw numbers; here a stand-in for libdrm that knows them.
const std::uint64_t card0 = makedev(226, 0), render_d128 = makedev(226, 128), card1 = makedev(226, 1);
bool one_gpu_two_nodes(std::uint64_t a, std::uint64_t b) noexcept {
    auto gpu = [](std::uint64_t node) { return node == card0 || node == render_d128 ? 1 : node == card1 ? 2 : 0; };
    return gpu(a) != 0 && gpu(a) == gpu(b);
}

TEST(NegotiationTest, PrimaryAndRenderNodeOfOneGpuAreOneDevice) {
    const FormatTable consumer{render_d128, {{DRM_FORMAT_ARGB8888, tiled}, {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}}};
    const ProducerCapabilities producer{card0, {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}, {DRM_FORMAT_ARGB8888, tiled}}};
    const std::uint32_t argb[] = {DRM_FORMAT_ARGB8888};
    auto choice = negotiate(consumer, producer, argb, one_gpu_two_nodes);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::zero_copy) << choice->reason;
    EXPECT_EQ(choice->modifiers, (std::vector<std::uint64_t>{tiled, DRM_FORMAT_MOD_LINEAR}));
    EXPECT_NE(choice->reason.find("consumer 226:128, producer 226:0"), std::string::npos) << choice->reason;

    const ProducerCapabilities other_gpu{card1, producer.formats};
    auto across = negotiate(consumer, other_gpu, argb, one_gpu_two_nodes);
    ASSERT_TRUE(across);
    EXPECT_EQ(across->path, SharingPath::linear_cross_device) << across->reason;
    EXPECT_EQ(across->modifiers, (std::vector<std::uint64_t>{DRM_FORMAT_MOD_LINEAR}));
}

// The default identity is libdrm's. Nodes this machine does not have (the host lane has no
// DRM at all) cannot be described, so only equal numbers are one device; the VM lane checks
// real nodes (negotiation_vm_test).
TEST(NegotiationTest, DefaultIdentityMatchesEqualNumbersAndNothingUnknown) {
    EXPECT_TRUE(same_drm_device(gpu_a, gpu_a));
    EXPECT_FALSE(same_drm_device(0, 0)) << "no device is not one device";
    EXPECT_FALSE(same_drm_device(gpu_a, 0));
    EXPECT_FALSE(same_drm_device(makedev(3, 1), makedev(1, 3))) << "/dev/ttyp1 and /dev/null are no DRM device";
}

TEST(NegotiationTest, WantingNothingIsAnError) {
    auto choice = negotiate(consumer_on(gpu_a), producer_on(gpu_a), {});
    ASSERT_FALSE(choice);
    EXPECT_EQ(choice.error().code, Errc::unsupported);
}

}  // namespace
}  // namespace texshare
