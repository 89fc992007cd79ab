// vulkan/import_listener.hpp: what the listener does without a real DMA-BUF (the VM lane's
// vulkan_import_vm_test follows real images through add, retire and peer death). Needs a
// device with VK_EXT_external_memory_dma_buf; skips, saying so, where the host's lavapipe
// lacks it (the VM lane's backports guest runs this binary).
#include "texshare/vulkan/import_listener.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "support/fd_count.hpp"
#include "support/vulkan_test_device.hpp"
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
    listener.image_removed(1);  // nothing to release: no effect
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

}  // namespace
}  // namespace texshare::vulkan
