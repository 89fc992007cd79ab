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

#include "support/fd_count.hpp"
#include "support/vulkan_test_device.hpp"
#include "texshare/memfd_allocator.hpp"

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

}  // namespace
}  // namespace texshare::vulkan
