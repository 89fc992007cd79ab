// vulkan/import_listener.hpp: what the listener does without a real DMA-BUF (the VM lane's
// vulkan_import_vm_test follows real images through add, retire and peer death, and
// vulkan_udmabuf_vm_test a peer's shared memory converted through udmabuf). Needs a device
// with VK_EXT_external_memory_dma_buf; skips, saying so, where the host's lavapipe lacks it
// (the VM lane's backports guest runs this binary).
#include "texshare/vulkan/import_listener.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "support/fd_count.hpp"
#include "support/vulkan_test_device.hpp"
#include "texshare/dma_heap_allocator.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare::vulkan {
namespace {

class VulkanImportListenerTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto vk = testing::TestVulkan::create(
            {VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME, VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME});
        ASSERT_TRUE(vk) << vk.error().message;
        if (vk->enabled().size() != 2) {
            TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("the Vulkan driver has no VK_EXT_external_memory_dma_buf (host lavapipe); the VM lane's "
                            "backports guest runs this");
        }
        vk_.emplace(std::move(*vk));
        auto device = Device::create(vk_->handles());
        ASSERT_TRUE(device) << device.error().message;
        auto importer = Importer::create(*device);
        ASSERT_TRUE(importer) << importer.error().message;
        importer_.emplace(std::move(*importer));
    }
    std::optional<testing::TestVulkan> vk_;
    std::optional<Importer> importer_;
};

TEST_F(VulkanImportListenerTest, SharedMemoryImagesAreLeftToTheCaller) {
    ImportListener listener(*importer_);
    auto memfd = MemfdAllocator{}.allocate(16, 16, DRM_FORMAT_ABGR8888);
    ASSERT_TRUE(memfd);
    EXPECT_TRUE(listener.image_added(1, *memfd, true));
    EXPECT_EQ(importer_->size(), 0U);
    EXPECT_EQ(listener.image(1), nullptr);
    EXPECT_EQ(listener.path(1), ImagePath::cpu);
    EXPECT_EQ(listener.cpu_reason(1), "") << "conversion is off: the CPU path is the plan, not a fallback";
    EXPECT_EQ(listener.conversions(), nullptr);
    listener.image_removed(1);  // nothing to release: no effect
    EXPECT_EQ(listener.path(1), ImagePath::unknown);
    listener.image_renamed(1, retained_image_id);
    EXPECT_EQ(importer_->size(), 0U);
}

// A DMA-BUF the device refuses is refused at add time (the endpoint then refuses the image),
// with the importer's reason and nothing kept.
TEST_F(VulkanImportListenerTest, ARefusedDmaBufFailsTheAddWithTheImportersReason) {
    ImportListener listener(*importer_);
    UniqueFd fd(::memfd_create("texshare-fake-dma-buf", MFD_CLOEXEC));
    ASSERT_EQ(::ftruncate(fd.get(), 4096), 0);
    PlaneFds fds{};
    fds[0] = std::move(fd);
    const ImageLayout tiled{16, 16, DRM_FORMAT_ABGR8888, I915_FORMAT_MOD_X_TILED, 1, {{{0, 64}}}};
    auto image = DmaBufImage::adopt(tiled, Backing::dma_buf, std::move(fds));
    ASSERT_TRUE(image);
    const int open_fds = testing::open_fd_count();
    auto added = listener.image_added(4, *image, true);
    ASSERT_FALSE(added);
    EXPECT_NE(added.error().message.find("image 4: modifier INTEL_X_TILED"), std::string::npos)
        << added.error().message;
    EXPECT_EQ(importer_->size(), 0U);
    EXPECT_EQ(testing::open_fd_count(), open_fds);
}

// Issue 15: a shared-memory image turned into a DMA-BUF once, imported, and closed with the
// image. A stand-in conversion (a copy into a DMA-BUF heap buffer) checks the bookkeeping
// without /dev/udmabuf; vulkan_udmabuf_vm_test runs the real one across two processes.
DmaBufImage shared_memory_filled(std::uint8_t red) {
    auto image = MemfdAllocator().allocate(16, 16, DRM_FORMAT_ABGR8888);
    EXPECT_TRUE(image) << image.error().message;
    if (!image) return DmaBufImage();
    auto mapping = image->map(Access::write);
    EXPECT_TRUE(mapping);
    if (!mapping) return DmaBufImage();
    for (std::uint32_t y = 0; y < 16; ++y) {
        for (std::uint32_t x = 0; x < 16; ++x) {
            const std::uint8_t rgba[4] = {red, static_cast<std::uint8_t>(x), static_cast<std::uint8_t>(y), 0xff};
            std::memcpy(mapping->plane(0).data() + std::size_t{y} * mapping->stride(0) + x * 4, rgba, 4);
        }
    }
    EXPECT_TRUE(mapping->finish());
    return std::move(*image);
}

void expect_pixels(const testing::TestVulkan& vk, const ImportedImage* imported, std::uint8_t red) {
    ASSERT_NE(imported, nullptr);
    auto pixels = vk.read_back(*imported, 4);
    ASSERT_TRUE(pixels) << pixels.error().message;
    for (std::uint32_t i = 0; i < 16 * 16; ++i) {
        const std::uint8_t want[4] = {red, static_cast<std::uint8_t>(i % 16), static_cast<std::uint8_t>(i / 16), 0xff};
        ASSERT_EQ(std::memcmp(pixels->data() + std::size_t{i} * 4, want, 4), 0) << "pixel " << i;
    }
}

TEST_F(VulkanImportListenerTest, AConvertedSharedMemoryImageIsImportedOnceAndClosedWithTheImage) {
    auto heap = DmaHeapAllocator::open();
    if (!heap) {
        TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("no DMA-BUF heap for the stand-in conversion: " << heap.error().message);
    }
    int conversions = 0;
    auto heap_copy = [&heap, &conversions](const DmaBufImage& shared) -> Result<DmaBufImage> {
        ++conversions;
        auto copy = heap->allocate(shared.layout());
        if (!copy) return copy;
        auto from = shared.map(Access::read);
        auto to = copy->map(Access::write);
        if (!from || !to) return make_error(Errc::unsupported, "stand-in conversion: map failed");
        std::memcpy(to->plane(0).data(), from->plane(0).data(), from->plane(0).size());
        if (auto done = to->finish(); !done) return std::move(done).error();
        return copy;
    };
    const DmaBufImage image = shared_memory_filled(0x66);
    const int fds_with_image = testing::open_fd_count();
    {
        ImportListener listener(*importer_, {.convert_shared_memory = true, .conversion = heap_copy});
        ASSERT_TRUE(listener.image_added(4, image, true));
        EXPECT_EQ(listener.path(4), ImagePath::udmabuf);
        EXPECT_EQ(listener.cpu_reason(4), "");
        expect_pixels(*vk_, listener.image(4), 0x66);
        auto again = listener.image_added(4, image, true);  // a second image under a live id
        ASSERT_FALSE(again);
        EXPECT_NE(again.error().message.find("image 4 is already imported (path udmabuf)"), std::string::npos)
            << again.error().message;
        EXPECT_EQ(listener.path(4), ImagePath::udmabuf) << "the first import stands";
        expect_pixels(*vk_, listener.image(4), 0x66);
        ASSERT_NE(listener.conversions(), nullptr);
        EXPECT_NE(listener.conversions()->find(4), nullptr) << "kept with the import";
        listener.image_renamed(4, retained_image_id);
        EXPECT_EQ(listener.path(retained_image_id), ImagePath::udmabuf);
        expect_pixels(*vk_, listener.image(retained_image_id), 0x66);
        EXPECT_NE(listener.conversions()->find(retained_image_id), nullptr);
        listener.image_removed(retained_image_id);
        EXPECT_EQ(listener.image(retained_image_id), nullptr);
        EXPECT_EQ(listener.path(retained_image_id), ImagePath::unknown);
        EXPECT_EQ(listener.conversions()->size(), 0U);
        EXPECT_EQ(importer_->size(), 0U);
        EXPECT_EQ(testing::open_fd_count(), fds_with_image) << "the conversion's DMA-BUF closed with the image";
        EXPECT_EQ(conversions, 1);
    }
}

// A conversion the device cannot import (here: a stand-in that hands back a layout with a
// modifier the device lacks) is closed at once and the image goes to the CPU path saying
// why, or, with require_conversion, is refused; so is a missing /dev/udmabuf.
TEST_F(VulkanImportListenerTest, AFailedConversionOrImportFallsBackToTheCpuOrIsRefusedAndSaysWhy) {
    const SharedMemoryConversion missing = udmabuf_conversion("/nonexistent/udmabuf");
    const DmaBufImage image = shared_memory_filled(0x77);
    const int fds_with_image = testing::open_fd_count();
    {
        ImportListener listener(*importer_, {.convert_shared_memory = true, .conversion = missing});
        ASSERT_TRUE(listener.image_added(2, image, true)) << "the CPU path still works: not refused";
        EXPECT_EQ(listener.path(2), ImagePath::cpu);
        EXPECT_EQ(listener.image(2), nullptr);
        EXPECT_NE(listener.cpu_reason(2).find("image 2: no DMA-BUF for this shared-memory image: "), std::string::npos)
            << listener.cpu_reason(2);
        EXPECT_NE(listener.cpu_reason(2).find("/nonexistent/udmabuf"), std::string::npos) << listener.cpu_reason(2);

        ImportListener strict(*importer_,
                              {.convert_shared_memory = true, .require_conversion = true, .conversion = missing});
        auto refused = strict.image_added(3, image, true);
        ASSERT_FALSE(refused);
        EXPECT_NE(refused.error().message.find("/nonexistent/udmabuf"), std::string::npos) << refused.error().message;
        EXPECT_EQ(strict.path(3), ImagePath::unknown);

        auto tiled = [](const DmaBufImage& shared) -> Result<DmaBufImage> {
            auto fd = UniqueFd::dup(shared.plane_fd(0));
            if (!fd) return std::move(fd).error();
            PlaneFds fds{};
            fds[0] = std::move(*fd);
            ImageLayout layout = shared.layout();
            layout.modifier = I915_FORMAT_MOD_X_TILED;
            return DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds));
        };
        ImportListener refusing(*importer_, {.convert_shared_memory = true, .conversion = tiled});
        ASSERT_TRUE(refusing.image_added(5, image, true));
        EXPECT_EQ(refusing.path(5), ImagePath::cpu);
        EXPECT_NE(refusing.cpu_reason(5).find("image 5: converted to a DMA-BUF, but the import failed: image 5: "
                                              "modifier INTEL_X_TILED"),
                  std::string::npos)
            << refusing.cpu_reason(5);
        EXPECT_EQ(refusing.conversions()->size(), 0U) << "a conversion the device refused is closed at once";
        EXPECT_EQ(importer_->size(), 0U);
    }
    EXPECT_EQ(testing::open_fd_count(), fds_with_image);
}

}  // namespace
}  // namespace texshare::vulkan
