// vulkan/importer.hpp: what is refused before and during an import, with nothing left behind.
// check_importable needs no driver. The Importer's refusals need a device with
// VK_EXT_external_memory_dma_buf but no real DMA-BUF: a memfd stands in for one, since each
// refusal here comes before the driver reads the fd (format, row pitch, size). On a host
// whose lavapipe lacks the extension (Debian 12's) those tests skip, saying so; the VM lane's
// backports guest (Mesa 25's lavapipe) runs this binary, and there they run.
#include "texshare/vulkan/importer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fcntl.h>

#include <functional>

#include "support/fd_count.hpp"
#include "support/vulkan_queue.hpp"
#include "support/vulkan_test_device.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/vulkan/exporter.hpp"

namespace texshare::vulkan {
namespace {

using testing::TestVulkan;

ImageLayout rgba_layout(std::uint32_t width, std::uint32_t height, std::uint32_t stride,
                        std::uint64_t modifier = DRM_FORMAT_MOD_LINEAR) {
    return ImageLayout{width, height, DRM_FORMAT_ABGR8888, modifier, 1, {{{0, stride}}}};
}

// A memfd of `bytes` declared a DMA-BUF (adopt() trusts the caller about fd kinds).
DmaBufImage fake_dma_buf(const ImageLayout& layout, off_t bytes) {
    UniqueFd fd(::memfd_create("texshare-fake-dma-buf", MFD_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(::ftruncate(fd.get(), bytes), 0);
    PlaneFds fds{};
    for (std::size_t i = 1; i < layout.plane_count; ++i) fds[i] = *fd.dup();
    fds[0] = std::move(fd);
    auto image = DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds));
    EXPECT_TRUE(image) << image.error().message;
    return image ? std::move(*image) : DmaBufImage{};
}

void expect_error(const Result<void>& result, Errc code, std::string_view text) {
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, code) << result.error().message;
    EXPECT_NE(result.error().message.find(text), std::string::npos) << result.error().message;
}

TEST(VulkanCheckImportableTest, OnlyDmaBufsImport) {
    auto memfd = MemfdAllocator{}.allocate(16, 16, DRM_FORMAT_ABGR8888);
    ASSERT_TRUE(memfd);
    expect_error(check_importable(7, *memfd, true), Errc::unsupported, "a shared_memory image cannot be imported");
    auto cpu = DmaBufImage::create_cpu_only(rgba_layout(16, 16, 64));
    ASSERT_TRUE(cpu);
    expect_error(check_importable(7, *cpu, true), Errc::unsupported, "a cpu_only image");
    EXPECT_TRUE(check_importable(7, fake_dma_buf(rgba_layout(16, 16, 64), 4096), false));
}

TEST(VulkanCheckImportableTest, TheImplicitModifierNeverImports) {
    const auto image = fake_dma_buf(rgba_layout(16, 16, 64, DRM_FORMAT_MOD_INVALID), 4096);
    expect_error(check_importable(3, image, true), Errc::unsupported, "modifier INVALID");
    expect_error(check_importable(3, image, false), Errc::unsupported, "modifier INVALID");
}

TEST(VulkanCheckImportableTest, WithoutTheModifierExtensionOnlySinglePlaneLinearImports) {
    const auto tiled = fake_dma_buf(rgba_layout(16, 16, 64, I915_FORMAT_MOD_X_TILED), 4096);
    expect_error(check_importable(1, tiled, false), Errc::unsupported, VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME);
    EXPECT_TRUE(check_importable(1, tiled, true));
    const ImageLayout nv12{16, 16, DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR, 2, {{{0, 16}, {256, 16}}}};
    const auto planar = fake_dma_buf(nv12, 4096);
    expect_error(check_importable(2, planar, false), Errc::unsupported, "has 2 planes");
    EXPECT_TRUE(check_importable(2, planar, true));
}

// A device as an application would make it, with DMA-BUF import and (where `modifiers`) the
// modifier extension enabled; skips where the driver lacks either.
class VulkanImporterTest : public ::testing::Test {
protected:
    void open(bool modifiers) {
        std::vector<std::string> wanted{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                        VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME};
        if (modifiers) wanted.emplace_back(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME);
        auto vk = TestVulkan::create(wanted);
        ASSERT_TRUE(vk) << vk.error().message;
        if (vk->enabled().size() != wanted.size()) {
            TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("the Vulkan driver lacks one of the extensions this test needs (host lavapipe); the VM "
                            "lane's backports guest runs it");
        }
        vk_.emplace(std::move(*vk));
        auto device = Device::create(vk_->handles());
        ASSERT_TRUE(device) << device.error().message;
        auto importer = Importer::create(*device);
        ASSERT_TRUE(importer) << importer.error().message;
        importer_.emplace(std::move(*importer));
    }
    // The row pitch the driver gives a LINEAR RGBA8 image of this width.
    std::uint32_t driver_row_pitch(std::uint32_t width, std::uint32_t height) const {
        const VkImageCreateInfo info{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO, nullptr, 0, VK_IMAGE_TYPE_2D,
                                     VK_FORMAT_R8G8B8A8_UNORM, {width, height, 1}, 1, 1, VK_SAMPLE_COUNT_1_BIT,
                                     VK_IMAGE_TILING_LINEAR, VK_IMAGE_USAGE_TRANSFER_SRC_BIT,
                                     VK_SHARING_MODE_EXCLUSIVE, 0, nullptr, VK_IMAGE_LAYOUT_UNDEFINED};
        const VkDevice device = importer_->device().device();
        VkImage image = VK_NULL_HANDLE;
        EXPECT_EQ(vkCreateImage(device, &info, nullptr, &image), VK_SUCCESS);
        const VkImageSubresource subresource{VK_IMAGE_ASPECT_COLOR_BIT, 0, 0};
        VkSubresourceLayout layout{};
        vkGetImageSubresourceLayout(device, image, &subresource, &layout);
        vkDestroyImage(device, image, nullptr);
        return static_cast<std::uint32_t>(layout.rowPitch);
    }
    // Imports `image` expecting a refusal: nothing kept, no fd opened or closed.
    void expect_refused(const DmaBufImage& image, Errc code, std::string_view text) {
        const int fds = testing::open_fd_count();
        auto imported = importer_->import(5, image);
        ASSERT_FALSE(imported);
        EXPECT_EQ(imported.error().code, code) << imported.error().message;
        EXPECT_NE(imported.error().message.find(text), std::string::npos) << imported.error().message;
        EXPECT_EQ(importer_->size(), 0U);
        EXPECT_EQ(importer_->find(5), nullptr);
        EXPECT_EQ(testing::open_fd_count(), fds) << "a refused import leaked or closed an fd";
    }

    std::optional<TestVulkan> vk_;
    std::optional<Importer> importer_;  // declared last: destroyed before the device
};

TEST_F(VulkanImporterTest, WithoutModifiersAStrideOtherThanTheDriversIsRefusedNamingBoth) {
    open(false);
    if (IsSkipped()) return;
    const std::uint32_t pitch = driver_row_pitch(64, 32);
    const std::uint32_t stride = pitch + 256;
    const auto image = fake_dma_buf(rgba_layout(64, 32, stride), 1 << 16);
    expect_refused(image, Errc::unsupported, fmt::format("row pitch {} and offset 0 there, the DMA-BUF has stride {}",
                                                         pitch, stride));
}

TEST_F(VulkanImporterTest, ADmaBufSmallerThanTheDriverNeedsIsRefusedBeforeImport) {
    open(false);
    if (IsSkipped()) return;
    const std::uint32_t pitch = driver_row_pitch(64, 64);
    // A layout that fits 4096 bytes is impossible for 64 rows, so the memfd is smaller than
    // the layout says: a peer's image would have failed receive validation; this tests the
    // importer's own check.
    const auto image = fake_dma_buf(rgba_layout(64, 64, pitch), 4096);
    expect_refused(image, Errc::unsupported, "the DMA-BUF has 4096");
}

TEST_F(VulkanImporterTest, AModifierTheDriverDoesNotListIsRefusedNamingIt) {
    open(true);
    if (IsSkipped()) return;
    const auto image = fake_dma_buf(rgba_layout(64, 64, 256, I915_FORMAT_MOD_X_TILED), 1 << 16);
    expect_refused(image, Errc::unsupported, "lists no modifier INTEL_X_TILED");
}

TEST_F(VulkanImporterTest, RefusalsOfCheckImportableComeFirst) {
    open(false);
    if (IsSkipped()) return;
    auto memfd = MemfdAllocator{}.allocate(16, 16, DRM_FORMAT_ABGR8888);
    ASSERT_TRUE(memfd);
    expect_refused(*memfd, Errc::unsupported, "image 5: a shared_memory image");
    const auto tiled = fake_dma_buf(rgba_layout(16, 16, 64, I915_FORMAT_MOD_X_TILED), 4096);
    expect_refused(tiled, Errc::unsupported, "which the device was not created with");
}

TEST_F(VulkanImporterTest, UnknownIdsAreRefused) {
    open(false);
    if (IsSkipped()) return;
    EXPECT_EQ(importer_->release(9).error().code, Errc::invalid_argument);
    EXPECT_EQ(importer_->rename(9, 10).error().code, Errc::invalid_argument);
    EXPECT_EQ(importer_->find(9), nullptr);
}

TEST_F(VulkanImporterTest, AnEmptyUsageIsRefused) {
    open(false);
    if (IsSkipped()) return;
    auto importer = Importer::create(importer_->device(), {.usage = 0});
    ASSERT_FALSE(importer);
    EXPECT_EQ(importer.error().code, Errc::invalid_argument);
}

// --- opaque_fd: OPAQUE_FD memory exported by one VkDevice, imported by another ---
// Every lavapipe has OPAQUE_FD image memory (Debian 12's Mesa 22.3 and Mesa 25's: measured,
// externalMemoryFeatures 0x6), so these run on the host and in the backports guest. The
// exporter and the importer are two VkInstances and VkDevices in one process; the
// two-process path is vulkan_opaque_vm_test's.

std::vector<std::uint8_t> opaque_pattern(std::uint32_t width, std::uint32_t height, std::uint8_t seed) {
    std::vector<std::uint8_t> pixels(std::size_t{width} * height * 4);
    for (std::size_t i = 0; i < pixels.size(); ++i) {
        pixels[i] = static_cast<std::uint8_t>(i * 7 + (i / 251) + seed);
    }
    return pixels;
}

const std::vector<std::string> opaque_extensions{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME};

class VulkanOpaqueImportTest : public testing::FdLeakTest {
protected:
    static constexpr std::uint32_t width = 64;
    static constexpr std::uint32_t height = 48;

    void SetUp() override {
        FdLeakTest::SetUp();
        auto producer = TestVulkan::create(opaque_extensions);
        auto consumer = TestVulkan::create(opaque_extensions);
        ASSERT_TRUE(producer && consumer) << "no Vulkan driver (Debian: mesa-vulkan-drivers)";
        producer_.emplace(std::move(*producer));
        consumer_.emplace(std::move(*consumer));
        Exporter::Options forced;
        forced.handle = ExportHandle::opaque_fd;
        auto exporter = Exporter::create(producer_->handles(), forced);
        ASSERT_TRUE(exporter) << exporter.error().message;
        exporter_.emplace(std::move(*exporter));
        auto device = Device::create(consumer_->handles());
        ASSERT_TRUE(device) << device.error().message;
        auto importer = Importer::create(*device);
        ASSERT_TRUE(importer) << importer.error().message;
        importer_.emplace(std::move(*importer));
    }
    void TearDown() override {
        importer_.reset();
        exporter_.reset();
        consumer_.reset();
        producer_.reset();
        FdLeakTest::TearDown();
    }

    // An OPAQUE_FD image holding `pixels`, written by the producer's queue and handed to
    // VK_QUEUE_FAMILY_EXTERNAL in GENERAL.
    Exporter::Exported export_with(const std::vector<std::uint8_t>& pixels) {
        auto exported = exporter_->allocate(width, height, DRM_FORMAT_ABGR8888);
        EXPECT_TRUE(exported) << exported.error().message;
        if (!exported) return {};
        auto queue = testing::TestQueue::create(*producer_);
        EXPECT_TRUE(queue) << queue.error().message;
        if (!queue) return {};
        EXPECT_TRUE(queue->upload(exported->vulkan.image(), {width, height}, pixels, true, {}, {}));
        EXPECT_TRUE(queue->wait_idle());
        return std::move(*exported);
    }
    // A copy of `image` with `edit` applied to its identity, as a peer could send it.
    static DmaBufImage with_identity(const DmaBufImage& image, const std::function<void(OpaqueMemory&)>& edit) {
        OpaqueMemory memory = image.opaque_memory();
        edit(memory);
        auto fd = UniqueFd::dup(image.plane_fd(0));
        EXPECT_TRUE(fd);
        auto copy = DmaBufImage::adopt_opaque_fd(image.width(), image.height(), image.fourcc(), memory,
                                                 std::move(*fd));
        EXPECT_TRUE(copy) << copy.error().message;
        return copy ? std::move(*copy) : DmaBufImage{};
    }
    void expect_import_refused(std::uint64_t id, const DmaBufImage& image, Errc code,
                               const std::vector<std::string>& needles) {
        auto imported = importer_->import(id, image);
        ASSERT_FALSE(imported) << "imported an opaque_fd image it must refuse";
        EXPECT_EQ(imported.error().code, code) << imported.error().message;
        for (const auto& needle : needles) {
            EXPECT_NE(imported.error().message.find(needle), std::string::npos) << imported.error().message;
        }
        EXPECT_EQ(importer_->find(id), nullptr);
    }

    std::optional<TestVulkan> producer_;
    std::optional<TestVulkan> consumer_;
    std::optional<Exporter> exporter_;
    std::optional<Importer> importer_;
};

TEST_F(VulkanOpaqueImportTest, EveryPixelReadsBackThroughTheImport) {
    const auto pixels = opaque_pattern(width, height, 3);
    Exporter::Exported exported = export_with(pixels);
    ASSERT_FALSE(exported.image.empty());
    auto imported = importer_->import(11, exported.image);
    ASSERT_TRUE(imported) << imported.error().message;
    EXPECT_EQ(imported->tiling, VK_IMAGE_TILING_OPTIMAL);
    EXPECT_EQ(imported->format, VK_FORMAT_R8G8B8A8_UNORM);
    EXPECT_EQ(imported->memory_count, 1U);
    auto read = consumer_->read_back(*imported, 4);
    ASSERT_TRUE(read) << read.error().message;
    ASSERT_EQ(read->size(), pixels.size());
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < pixels.size(); ++i) wrong += (*read)[i] != pixels[i] ? 1 : 0;
    EXPECT_EQ(wrong, 0U) << "bytes differing from what the producer wrote";
    EXPECT_TRUE(importer_->release(11));
}

// The UUID check: memory of another device or driver is refused before any Vulkan call,
// naming both sides' UUIDs in hex and which one differs.
TEST_F(VulkanOpaqueImportTest, AnotherDeviceOrDriversMemoryIsRefusedNamingBothUuids) {
    Exporter::Exported exported = export_with(opaque_pattern(width, height, 1));
    ASSERT_FALSE(exported.image.empty());
    const Device& own = importer_->device();
    const DmaBufImage other_device = with_identity(exported.image, [](OpaqueMemory& m) { m.device_uuid[0] ^= 0xff; });
    expect_import_refused(1, other_device, Errc::unsupported,
                          {"another device (the device UUID differs)", uuid_hex(other_device.opaque_memory().device_uuid),
                           uuid_hex(own.device_uuid()), uuid_hex(own.driver_uuid())});
    const DmaBufImage other_driver = with_identity(exported.image, [](OpaqueMemory& m) { m.driver_uuid[15] ^= 1; });
    expect_import_refused(2, other_driver, Errc::unsupported,
                          {"another driver (the driver UUID differs)", uuid_hex(other_driver.opaque_memory().driver_uuid),
                           uuid_hex(own.driver_uuid())});
    const DmaBufImage both = with_identity(exported.image, [](OpaqueMemory& m) {
        m.device_uuid[3] ^= 1;
        m.driver_uuid[3] ^= 1;
    });
    expect_import_refused(3, both, Errc::unsupported, {"another device and driver"});
}

// What the importer can check against its own image before the driver sees the fd.
TEST_F(VulkanOpaqueImportTest, AnIdentityThatDoesNotFitTheImageIsRefusedBeforeImport) {
    Exporter::Exported exported = export_with(opaque_pattern(width, height, 2));
    ASSERT_FALSE(exported.image.empty());
    const DmaBufImage small = with_identity(exported.image, [](OpaqueMemory& m) { m.allocation_size = 64; });
    expect_import_refused(1, small, Errc::unsupported, {"the exported OPAQUE_FD allocation has 64"});
    const DmaBufImage wrong_type = with_identity(exported.image, [](OpaqueMemory& m) { m.memory_type_index = 31; });
    expect_import_refused(2, wrong_type, Errc::unsupported, {"the exported memory type 31 is not one the image can use"});
    // The importer's usage must be among the exporter's: SAMPLED (the Importer's default) is
    // missing from an image exported for transfers only.
    const DmaBufImage narrow = with_identity(exported.image, [](OpaqueMemory& m) {
        m.image_usage = VK_IMAGE_USAGE_TRANSFER_SRC_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT;
    });
    expect_import_refused(3, narrow, Errc::unsupported, {"the import wants usage 0x5", "created with 0x3", "missing 0x4"});
}

TEST(VulkanCheckImportableTest, OpaqueFdImagesNeedAFormatAndAnFd) {
    OpaqueMemory memory;
    memory.allocation_size = 4096;
    memory.image_usage = VK_IMAGE_USAGE_SAMPLED_BIT;
    auto image = DmaBufImage::adopt_opaque_fd(16, 16, DRM_FORMAT_ABGR8888, memory,
                                              UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)));
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_TRUE(check_importable(1, *image, false)) << "no modifier extension is needed for OPAQUE_FD";
    EXPECT_TRUE(check_importable(1, *image, true));
}

}  // namespace
}  // namespace texshare::vulkan
