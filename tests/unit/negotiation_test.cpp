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
    EXPECT_STREQ(to_string(SharingPath::opaque_fd), "Vulkan opaque memory, same device and driver");
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

// Issue 15: Vulkan OPAQUE_FD memory (NVIDIA's only GPU path: its driver exports no DMA-BUF)
// is offered only when both sides name the same device and driver and the consumer imports
// opaque memory; any difference falls to the DMA-BUF and shared-memory paths, saying why.
DeviceUuids uuids(std::uint8_t device, std::uint8_t driver) {
    DeviceUuids ids;
    ids.device.fill(device);
    ids.driver.fill(driver);
    return ids;
}

// An NVIDIA-like pair: no DRM device known, no DMA-BUF format, one Vulkan device and driver.
struct OpaquePair {
    FormatTable consumer{0, {}, consumer_imports_opaque_memory, uuids(0xd1, 0x5a)};
    ProducerCapabilities producer{0, {}, uuids(0xd1, 0x5a)};
};

TEST(NegotiationTest, OpaqueMemoryIsOfferedOnOneVulkanDeviceAndDriver) {
    const OpaquePair pair;
    auto choice = negotiate(pair.consumer, pair.producer, argb_then_xrgb);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::opaque_fd) << choice->reason;
    EXPECT_EQ(choice->fourcc, DRM_FORMAT_ARGB8888) << "the producer's first choice: its driver judges";
    EXPECT_TRUE(choice->modifiers.empty()) << "the driver's own layout";
    EXPECT_NE(choice->reason.find("device UUID d1d1d1d1-d1d1-d1d1-d1d1-d1d1d1d1d1d1, driver UUID "
                                  "5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a"),
              std::string::npos)
        << choice->reason;
    EXPECT_EQ(opaque_fd_refusal(pair.consumer, pair.producer), "");
}

TEST(NegotiationTest, OpaqueMemoryIsNeverOfferedAcrossDevicesOrDrivers) {
    struct Case {
        const char* what;
        DeviceUuids consumer, producer;
        std::uint16_t capabilities;
        const char* why;
    };
    const Case cases[] = {
        {"other device", uuids(0xd1, 0x5a), uuids(0xd2, 0x5a), consumer_imports_opaque_memory,
         "device UUIDs differ: consumer d1d1d1d1-d1d1-d1d1-d1d1-d1d1d1d1d1d1, producer "
         "d2d2d2d2-d2d2-d2d2-d2d2-d2d2d2d2d2d2"},
        {"other driver", uuids(0xd1, 0x5a), uuids(0xd1, 0x5b), consumer_imports_opaque_memory,
         "driver UUIDs differ: consumer 5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a, producer "
         "5b5b5b5b-5b5b-5b5b-5b5b-5b5b5b5b5b5b"},
        {"no capability", uuids(0xd1, 0x5a), uuids(0xd1, 0x5a), 0, "the consumer does not import opaque memory"},
        {"producer unknown", uuids(0xd1, 0x5a), DeviceUuids{}, consumer_imports_opaque_memory,
         "the producer names no Vulkan device and driver UUIDs"},
        {"consumer unknown", DeviceUuids{}, uuids(0xd1, 0x5a), consumer_imports_opaque_memory,
         "the consumer names no Vulkan device and driver UUIDs"},
        {"half a producer identity", uuids(0xd1, 0x5a), uuids(0xd1, 0), consumer_imports_opaque_memory,
         "the producer names no Vulkan device and driver UUIDs"},
        {"zero UUIDs on both sides", DeviceUuids{}, DeviceUuids{}, consumer_imports_opaque_memory,
         "the producer names no Vulkan device and driver UUIDs"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.what);
        const FormatTable consumer{0, {}, c.capabilities, c.consumer};
        const ProducerCapabilities producer{0, {}, c.producer};
        EXPECT_EQ(opaque_fd_refusal(consumer, producer), c.why);
        auto choice = negotiate(consumer, producer, argb_then_xrgb);
        ASSERT_TRUE(choice);
        EXPECT_EQ(choice->path, SharingPath::shared_memory) << choice->reason;
        // Told why only where the consumer asked for opaque memory.
        EXPECT_EQ(choice->reason.find(c.why) != std::string::npos, c.capabilities != 0) << choice->reason;
    }
}

// Ordering: a common DMA-BUF format on one DRM device stays first (the kernel checks a
// DMA-BUF, no one can check opaque memory); opaque memory comes before LINEAR across devices
// (the driver's tiled layout on the one GPU) and before the udmabuf path.
TEST(NegotiationTest, OpaqueMemoryComesAfterZeroCopyAndBeforeTheOtherPaths) {
    FormatTable consumer = consumer_on(gpu_a);
    consumer.capabilities = consumer_imports_opaque_memory | consumer_converts_shared_memory;
    consumer.uuids = uuids(0xd1, 0x5a);
    ProducerCapabilities producer = producer_on(gpu_a);
    producer.uuids = uuids(0xd1, 0x5a);
    auto same = negotiate(consumer, producer, argb_then_xrgb);
    ASSERT_TRUE(same);
    EXPECT_EQ(same->path, SharingPath::zero_copy) << same->reason;
    producer.device = gpu_b;
    auto across = negotiate(consumer, producer, argb_then_xrgb);
    ASSERT_TRUE(across);
    EXPECT_EQ(across->path, SharingPath::opaque_fd) << across->reason;
    producer.formats = {};
    auto no_gpu_formats = negotiate(consumer, producer, argb_then_xrgb);
    ASSERT_TRUE(no_gpu_formats);
    EXPECT_EQ(no_gpu_formats->path, SharingPath::opaque_fd) << "before udmabuf: " << no_gpu_formats->reason;
    producer.uuids.driver[15] ^= 1;
    auto linear = negotiate(consumer, producer_on(gpu_b), argb_then_xrgb);
    ASSERT_TRUE(linear);
    EXPECT_EQ(linear->path, SharingPath::linear_cross_device) << linear->reason;
    EXPECT_NE(linear->reason.find("; not Vulkan opaque memory: the producer names no Vulkan device"), std::string::npos)
        << linear->reason;
    auto udmabuf = negotiate(consumer, producer, argb_then_xrgb);
    ASSERT_TRUE(udmabuf);
    EXPECT_EQ(udmabuf->path, SharingPath::shared_memory_udmabuf) << udmabuf->reason;
    EXPECT_NE(udmabuf->reason.find("; not Vulkan opaque memory: driver UUIDs differ"), std::string::npos)
        << udmabuf->reason;
}

TEST(NegotiationTest, WantingNothingIsAnError) {
    auto choice = negotiate(consumer_on(gpu_a), producer_on(gpu_a), {});
    ASSERT_FALSE(choice);
    EXPECT_EQ(choice.error().code, Errc::unsupported);
}

}  // namespace
}  // namespace texshare
