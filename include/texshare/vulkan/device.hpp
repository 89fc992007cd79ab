// texshare::vulkan::Device: the application's Vulkan device, as texshare uses it.
//
// Use Device::create() once, after the application created its VkInstance and VkDevice, to
// tell texshare which handles to use and which device extensions the application enabled.
// texshare never owns these handles: it creates and destroys only its own objects (images,
// memory) on them, and the application keeps the instance and device alive until every
// texshare object made from this Device (Importer, ImportListener) is gone.
//
// What texshare needs from the application (Vulkan spec, "External Memory Handle Types"):
//   - an instance created with apiVersion 1.1 or newer (external memory, dedicated
//     allocations, vkGetPhysicalDeviceProperties2 and vkBindImageMemory2 are core there);
//   - VK_KHR_external_memory_fd enabled on the device: the minimum, enough for OPAQUE_FD
//     memory (texshare's opaque_fd backing: NVIDIA's driver has nothing more);
//   - for DMA-BUFs, VK_EXT_external_memory_dma_buf too (has_dma_buf());
//   - optionally VK_EXT_image_drm_format_modifier (it needs Vulkan 1.2 or
//     VK_KHR_image_format_list): with it any modifier the driver lists imports, with the
//     DMA-BUF's own plane layouts; without it only LINEAR single-plane images do, and only
//     where the driver's row pitch for the image equals the DMA-BUF's stride.
// The device's identity (VkPhysicalDeviceIDProperties deviceUUID and driverUUID) is read
// always: OPAQUE_FD memory imports only where both equal the exporter's.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <vulkan/vulkan.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "texshare/opaque_memory.hpp"
#include "texshare/result.hpp"

namespace texshare::vulkan {

// "VK_ERROR_INVALID_EXTERNAL_HANDLE (-1000072003)": a VkResult for messages.
std::string result_name(VkResult result);

struct DeviceHandles {
    VkInstance instance = VK_NULL_HANDLE;
    VkPhysicalDevice physical_device = VK_NULL_HANDLE;
    VkDevice device = VK_NULL_HANDLE;  // created from physical_device
    // VkApplicationInfo::apiVersion the instance was created with (VK_API_VERSION_1_1 or newer).
    std::uint32_t api_version = VK_API_VERSION_1_0;
    // The names in VkDeviceCreateInfo::ppEnabledExtensionNames, as the application passed them.
    std::span<const char* const> enabled_extensions;
};

class Device {
public:
    // Checks once what texshare needs: handles that are not null, api_version and the
    // physical device's apiVersion at least 1.1, VK_KHR_external_memory_fd in
    // enabled_extensions (Errc::unsupported naming it and whether the device offers it at
    // all), every name in enabled_extensions offered by the physical device
    // (Errc::invalid_argument naming the ones it does not offer: the application cannot
    // have enabled those), and loads the extension entry points (Errc::library naming one
    // the loader does not give). Reads the device's UUIDs.
    static Result<Device> create(const DeviceHandles& handles);

    VkInstance instance() const noexcept { return instance_; }
    VkPhysicalDevice physical_device() const noexcept { return physical_; }
    VkDevice device() const noexcept { return device_; }
    const std::string& name() const noexcept { return name_; }  // VkPhysicalDeviceProperties::deviceName
    // VK_EXT_image_drm_format_modifier was enabled (and its entry point loaded).
    bool has_drm_format_modifiers() const noexcept { return get_modifier_properties_ != nullptr; }
    // VK_EXT_external_memory_dma_buf was enabled: DMA-BUF import and export are possible.
    bool has_dma_buf() const noexcept { return has_dma_buf_; }
    // VkPhysicalDeviceIDProperties::deviceUUID and driverUUID (VK_UUID_SIZE bytes each).
    const DeviceUuid& device_uuid() const noexcept { return device_uuid_; }
    const DeviceUuid& driver_uuid() const noexcept { return driver_uuid_; }
    bool enabled(std::string_view extension) const noexcept;

    PFN_vkGetMemoryFdPropertiesKHR get_memory_fd_properties() const noexcept { return get_memory_fd_properties_; }
    // Null without VK_EXT_image_drm_format_modifier.
    PFN_vkGetImageDrmFormatModifierPropertiesEXT get_modifier_properties() const noexcept {
        return get_modifier_properties_;
    }

private:
    Device() = default;

    VkInstance instance_ = VK_NULL_HANDLE;
    VkPhysicalDevice physical_ = VK_NULL_HANDLE;
    VkDevice device_ = VK_NULL_HANDLE;
    std::string name_;
    std::vector<std::string> enabled_;
    bool has_dma_buf_ = false;
    DeviceUuid device_uuid_{};
    DeviceUuid driver_uuid_{};
    PFN_vkGetMemoryFdPropertiesKHR get_memory_fd_properties_ = nullptr;
    PFN_vkGetImageDrmFormatModifierPropertiesEXT get_modifier_properties_ = nullptr;
};

}  // namespace texshare::vulkan
