// vulkan/device.hpp: the application's device is checked once, and every missing piece is
// named. Runs on any machine with a Vulkan driver: on the host (Debian 12's lavapipe, which
// has no DMA-BUF extension) a device with only VK_KHR_external_memory_fd (OPAQUE_FD memory);
// in the VM lane's backports guest (Mesa 25's lavapipe) the DMA-BUF extension too.
#include "texshare/vulkan/device.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>

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

TEST(VulkanDeviceTest, ADeviceWithoutExternalMemoryFdIsRefusedNamingIt) {
    auto vk = open({});
    ASSERT_TRUE(vk);
    auto device = Device::create(vk->handles());
    ASSERT_FALSE(device);
    EXPECT_EQ(device.error().code, Errc::unsupported);
    const std::string& message = device.error().message;
    EXPECT_NE(message.find(VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME), std::string::npos) << message;
    EXPECT_NE(message.find("offered by the device, not enabled"), std::string::npos) << message;
    EXPECT_EQ(message.find(VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME), std::string::npos)
        << "OPAQUE_FD memory needs no DMA-BUF extension (NVIDIA's driver has none): " << message;
}

// VK_KHR_external_memory_fd is the minimum (OPAQUE_FD memory; NVIDIA has no more): the
// device is accepted without VK_EXT_external_memory_dma_buf and has_dma_buf() says so. With
// it (Mesa 25's lavapipe; Debian 12's offers none) has_dma_buf() is true.
TEST(VulkanDeviceTest, ExternalMemoryFdIsEnoughAndHasDmaBufSaysWhetherDmaBufsWork) {
    auto without = open({VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME});
    ASSERT_TRUE(without);
    auto opaque_only = Device::create(without->handles());
    ASSERT_TRUE(opaque_only) << opaque_only.error().message;
    EXPECT_FALSE(opaque_only->has_dma_buf());
    EXPECT_NE(opaque_only->get_memory_fd_properties(), nullptr);
    auto vk = open(import_extensions);
    ASSERT_TRUE(vk);
    auto device = Device::create(vk->handles());
    ASSERT_TRUE(device) << device.error().message;
    EXPECT_EQ(device->has_dma_buf(), vk->has(VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME));
    EXPECT_FALSE(device->has_drm_format_modifiers()) << "not enabled, so not used";
    EXPECT_EQ(device->device(), vk->handles().device);
}

// The UUIDs are VkPhysicalDeviceIDProperties', read always.
TEST(VulkanDeviceTest, TheDeviceAndDriverUuidsAreTheDrivers) {
    auto vk = open({VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME});
    ASSERT_TRUE(vk);
    auto device = Device::create(vk->handles());
    ASSERT_TRUE(device) << device.error().message;
    VkPhysicalDeviceIDProperties ids{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES, nullptr, {}, {}, {}, 0, VK_FALSE};
    VkPhysicalDeviceProperties2 properties{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &ids, {}};
    vkGetPhysicalDeviceProperties2(vk->physical_device(), &properties);
    EXPECT_TRUE(std::equal(device->device_uuid().begin(), device->device_uuid().end(), ids.deviceUUID));
    EXPECT_TRUE(std::equal(device->driver_uuid().begin(), device->driver_uuid().end(), ids.driverUUID));
    EXPECT_NE(device->driver_uuid(), DeviceUuid{}) << "lavapipe's driver UUID is not zero";
    std::cout << "[measured] " << device->name() << ": device UUID " << uuid_hex(device->device_uuid())
              << ", driver UUID " << uuid_hex(device->driver_uuid()) << "\n";
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
