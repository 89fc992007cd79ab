// A throwaway Vulkan 1.1 instance, asked about each physical device and destroyed: no device
// is created, so this works on drivers without any extension texshare's import needs (NVIDIA
// has no VK_EXT_external_memory_dma_buf, and opaque memory is exactly its path).
#include "vulkan_devices.hpp"

#if TEXSHARE_INFO_HAVE_VULKAN
#include <vulkan/vulkan.h>

#include <algorithm>

#include <fmt/format.h>

#include "texshare/format_table.hpp"
#include "texshare/vulkan/device.hpp"
#include "texshare/vulkan/format_table.hpp"
#endif

namespace texshare::info {

#if TEXSHARE_INFO_HAVE_VULKAN
namespace {

Feature opaque_fd_support(VkPhysicalDevice physical) {
    std::uint32_t count = 0;
    if (VkResult r = vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, nullptr); r != VK_SUCCESS) {
        return {Outcome::failed, fmt::format("vkEnumerateDeviceExtensionProperties: {}", vulkan::result_name(r))};
    }
    std::vector<VkExtensionProperties> offered(count);
    vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, offered.data());
    const bool memory_fd = std::ranges::any_of(offered, [](const VkExtensionProperties& e) {
        return std::string_view(e.extensionName) == VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME;
    });
    if (!memory_fd) return {Outcome::unsupported, "no VK_KHR_external_memory_fd"};
    VkPhysicalDeviceExternalImageFormatInfo external_info{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_IMAGE_FORMAT_INFO,
                                                          nullptr, VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT};
    const VkPhysicalDeviceImageFormatInfo2 info{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_FORMAT_INFO_2,
                                                &external_info,
                                                VK_FORMAT_R8G8B8A8_UNORM,
                                                VK_IMAGE_TYPE_2D,
                                                VK_IMAGE_TILING_OPTIMAL,
                                                VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT,
                                                0};
    VkExternalImageFormatProperties external{VK_STRUCTURE_TYPE_EXTERNAL_IMAGE_FORMAT_PROPERTIES, nullptr, {}};
    VkImageFormatProperties2 properties{VK_STRUCTURE_TYPE_IMAGE_FORMAT_PROPERTIES_2, &external, {}};
    const VkResult r = vkGetPhysicalDeviceImageFormatProperties2(physical, &info, &properties);
    if (r == VK_ERROR_FORMAT_NOT_SUPPORTED) {
        return {Outcome::unsupported, fmt::format("no OPAQUE_FD RGBA8 optimal image ({})", vulkan::result_name(r))};
    }
    if (r != VK_SUCCESS) {
        return {Outcome::failed, fmt::format("vkGetPhysicalDeviceImageFormatProperties2: {}", vulkan::result_name(r))};
    }
    const VkExternalMemoryFeatureFlags features = external.externalMemoryProperties.externalMemoryFeatures;
    const bool exportable = (features & VK_EXTERNAL_MEMORY_FEATURE_EXPORTABLE_BIT) != 0;
    const bool importable = (features & VK_EXTERNAL_MEMORY_FEATURE_IMPORTABLE_BIT) != 0;
    if (!exportable || !importable) {
        return {Outcome::unsupported, fmt::format("OPAQUE_FD RGBA8 optimal images are {}exportable and {}importable",
                                                  exportable ? "" : "not ", importable ? "" : "not ")};
    }
    return {Outcome::works, "exportable and importable"};
}

}  // namespace

std::vector<VulkanOpaqueReport> probe_vulkan_devices(std::string& error) {
    const VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO, nullptr, "texshare-info", 1, "texshare", 1,
                                VK_API_VERSION_1_1};
    const VkInstanceCreateInfo instance_info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, nullptr, 0, &app, 0, nullptr, 0,
                                             nullptr};
    VkInstance instance = VK_NULL_HANDLE;
    if (VkResult r = vkCreateInstance(&instance_info, nullptr, &instance); r != VK_SUCCESS) {
        error = fmt::format("vkCreateInstance (Vulkan 1.1): {}", vulkan::result_name(r));
        return {};
    }
    std::uint32_t count = 0;
    vkEnumeratePhysicalDevices(instance, &count, nullptr);
    std::vector<VkPhysicalDevice> physicals(count);
    vkEnumeratePhysicalDevices(instance, &count, physicals.data());
    std::vector<VulkanOpaqueReport> devices;
    for (VkPhysicalDevice physical : physicals) {
        VkPhysicalDeviceProperties properties{};
        vkGetPhysicalDeviceProperties(physical, &properties);
        if (properties.apiVersion < VK_API_VERSION_1_1) continue;  // no VkPhysicalDeviceIDProperties
        const DeviceUuids uuids = vulkan::device_uuids(physical);
        devices.push_back({properties.deviceName, uuid_name(uuids.device), uuid_name(uuids.driver),
                           opaque_fd_support(physical)});
    }
    vkDestroyInstance(instance, nullptr);
    if (devices.empty()) error = fmt::format("none of the {} Vulkan devices has Vulkan 1.1", count);
    return devices;
}
#else
std::vector<VulkanOpaqueReport> probe_vulkan_devices(std::string& error) {
    error = "texshare-info was built without Vulkan (libvulkan-dev)";
    return {};
}
#endif

}  // namespace texshare::info
