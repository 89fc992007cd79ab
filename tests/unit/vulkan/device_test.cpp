// vulkan/device.hpp: the application's device is checked once, and every missing piece is
// named. Runs on any machine with a Vulkan driver: on the host (Debian 12's lavapipe, which
// has no DMA-BUF extension) the refusal is what is tested; in the VM lane's backports guest
// (Mesa 25's lavapipe) the acceptance too.
#include "texshare/vulkan/device.hpp"

#include <gtest/gtest.h>

#include "support/vulkan_test_device.hpp"

namespace texshare::vulkan {
namespace {

using testing::TestVulkan;

const std::vector<std::string> import_extensions{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                                 VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME};

// An application's device; a machine without any Vulkan driver fails the test, naming the
// package that brings lavapipe (scripts/common.sh installs it).
std::optional<TestVulkan> open(const std::vector<std::string>& wanted) {
    auto vk = TestVulkan::create(wanted);
    if (!vk) {
        ADD_FAILURE() << "no Vulkan driver (Debian: mesa-vulkan-drivers, for lavapipe): " << vk.error().message;
        return std::nullopt;
    }
    return std::move(*vk);
}

TEST(VulkanDeviceTest, NullHandlesAreRefusedNamingWhichOne) {
    auto device = Device::create({});
    ASSERT_FALSE(device);
    EXPECT_EQ(device.error().code, Errc::invalid_argument);
    EXPECT_NE(device.error().message.find("instance null"), std::string::npos) << device.error().message;
}

TEST(VulkanDeviceTest, ADeviceWithoutTheImportExtensionsIsRefusedNamingEachMissingOne) {
    auto vk = open({});
    ASSERT_TRUE(vk);
    auto device = Device::create(vk->handles());
    ASSERT_FALSE(device);
    EXPECT_EQ(device.error().code, Errc::unsupported);
    const std::string& message = device.error().message;
    EXPECT_NE(message.find(VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME), std::string::npos) << message;
    EXPECT_NE(message.find(VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME), std::string::npos) << message;
}

// Debian 12's lavapipe (Mesa 22.3) offers no VK_EXT_external_memory_dma_buf: the error says
// the device does not offer it, not merely that it was not enabled. Where the driver has it
// (Mesa 25's lavapipe), enabling both extensions is enough.
TEST(VulkanDeviceTest, TheDmaBufExtensionIsRequiredAndItsAbsenceNamed) {
    auto vk = open(import_extensions);
    ASSERT_TRUE(vk);
    auto device = Device::create(vk->handles());
    if (vk->has(VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME) && vk->has(VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME)) {
        ASSERT_TRUE(device) << device.error().message;
        EXPECT_FALSE(device->has_drm_format_modifiers()) << "not enabled, so not used";
        EXPECT_NE(device->get_memory_fd_properties(), nullptr);
        EXPECT_EQ(device->device(), vk->handles().device);
        return;
    }
    ASSERT_FALSE(device);
    EXPECT_EQ(device.error().code, Errc::unsupported);
    EXPECT_NE(device.error().message.find("VK_EXT_external_memory_dma_buf (the device does not offer it)"),
              std::string::npos)
        << device.error().message;
}

TEST(VulkanDeviceTest, AnExtensionTheDeviceDoesNotOfferCannotHaveBeenEnabled) {
    auto vk = open({});
    ASSERT_TRUE(vk);
    const std::array<const char*, 1> claimed{"VK_EXT_texshare_imaginary"};
    DeviceHandles handles = vk->handles();
    handles.enabled_extensions = claimed;
    auto device = Device::create(handles);
    ASSERT_FALSE(device);
    EXPECT_EQ(device.error().code, Errc::invalid_argument);
    EXPECT_NE(device.error().message.find("does not offer VK_EXT_texshare_imaginary"), std::string::npos)
        << device.error().message;
}

TEST(VulkanDeviceTest, AnInstanceBelowVulkan11IsRefusedNamingItsVersion) {
    auto vk = open({});
    ASSERT_TRUE(vk);
    DeviceHandles handles = vk->handles();
    handles.api_version = VK_API_VERSION_1_0;
    auto device = Device::create(handles);
    ASSERT_FALSE(device);
    EXPECT_EQ(device.error().code, Errc::unsupported);
    EXPECT_NE(device.error().message.find("created for 1.0"), std::string::npos) << device.error().message;
}

TEST(VulkanDeviceTest, TheModifierExtensionIsUsedWhereEnabled) {
    std::vector<std::string> wanted = import_extensions;
    wanted.emplace_back(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME);
    auto vk = open(wanted);
    ASSERT_TRUE(vk);
    if (!vk->has(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME) || !vk->has(VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME)) {
        TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("the driver offers no VK_EXT_image_drm_format_modifier with DMA-BUF import (Debian 12's "
                        "lavapipe; Mesa 25's without a DRM device); the VM lane's backports guest runs this");
    }
    auto device = Device::create(vk->handles());
    ASSERT_TRUE(device) << device.error().message;
    EXPECT_TRUE(device->has_drm_format_modifiers());
    EXPECT_TRUE(device->enabled(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME));
}

}  // namespace
}  // namespace texshare::vulkan
