// texshare::vulkan::Device: the application's handles, checked once for what import needs.
#include "texshare/vulkan/device.hpp"

#include <algorithm>
#include <array>

namespace texshare::vulkan {

namespace {

constexpr std::uint32_t required_api = VK_API_VERSION_1_1;
// OPAQUE_FD memory needs no more; DMA-BUFs need VK_EXT_external_memory_dma_buf too (has_dma_buf).
constexpr std::array<const char*, 1> required_extensions{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME};

std::string version_name(std::uint32_t version) {
    return fmt::format("{}.{}", VK_API_VERSION_MAJOR(version), VK_API_VERSION_MINOR(version));
}

Result<std::vector<std::string>> offered_extensions(VkPhysicalDevice physical) {
    std::uint32_t count = 0;
    if (VkResult r = vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, nullptr); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkEnumerateDeviceExtensionProperties failed: {}", result_name(r));
    }
    std::vector<VkExtensionProperties> properties(count);
    if (VkResult r = vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, properties.data());
        r != VK_SUCCESS && r != VK_INCOMPLETE) {
        return make_error(Errc::library, "vkEnumerateDeviceExtensionProperties failed: {}", result_name(r));
    }
    std::vector<std::string> names;
    for (std::uint32_t i = 0; i < count; ++i) names.emplace_back(properties[i].extensionName);
    return names;
}

bool contains(const std::vector<std::string>& names, std::string_view name) {
    return std::ranges::find(names, name) != names.end();
}

}  // namespace

std::string result_name(VkResult result) {
    switch (result) {
#define TEXSHARE_VK_CASE(name) \
    case name:                 \
        return fmt::format("{} ({})", #name, static_cast<int>(name));
        TEXSHARE_VK_CASE(VK_SUCCESS)
        TEXSHARE_VK_CASE(VK_NOT_READY)
        TEXSHARE_VK_CASE(VK_TIMEOUT)
        TEXSHARE_VK_CASE(VK_INCOMPLETE)
        TEXSHARE_VK_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
        TEXSHARE_VK_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        TEXSHARE_VK_CASE(VK_ERROR_INITIALIZATION_FAILED)
        TEXSHARE_VK_CASE(VK_ERROR_DEVICE_LOST)
        TEXSHARE_VK_CASE(VK_ERROR_MEMORY_MAP_FAILED)
        TEXSHARE_VK_CASE(VK_ERROR_LAYER_NOT_PRESENT)
        TEXSHARE_VK_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
        TEXSHARE_VK_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
        TEXSHARE_VK_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
        TEXSHARE_VK_CASE(VK_ERROR_TOO_MANY_OBJECTS)
        TEXSHARE_VK_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
        TEXSHARE_VK_CASE(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        TEXSHARE_VK_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
        TEXSHARE_VK_CASE(VK_ERROR_INVALID_DRM_FORMAT_MODIFIER_PLANE_LAYOUT_EXT)
        TEXSHARE_VK_CASE(VK_ERROR_UNKNOWN)
#undef TEXSHARE_VK_CASE
        default:
            return fmt::format("VkResult {}", static_cast<int>(result));
    }
}

Result<Device> Device::create(const DeviceHandles& handles) {
    if (handles.instance == VK_NULL_HANDLE || handles.physical_device == VK_NULL_HANDLE ||
        handles.device == VK_NULL_HANDLE) {
        return make_error(Errc::invalid_argument, "a null handle: instance {}, physical device {}, device {}",
                          handles.instance == VK_NULL_HANDLE ? "null" : "set",
                          handles.physical_device == VK_NULL_HANDLE ? "null" : "set",
                          handles.device == VK_NULL_HANDLE ? "null" : "set");
    }
    VkPhysicalDeviceProperties properties{};
    vkGetPhysicalDeviceProperties(handles.physical_device, &properties);
    Device device;
    device.instance_ = handles.instance;
    device.physical_ = handles.physical_device;
    device.device_ = handles.device;
    device.name_ = properties.deviceName;
    if (handles.api_version < required_api || properties.apiVersion < required_api) {
        return make_error(Errc::unsupported,
                          "{}: external memory needs Vulkan 1.1, the instance was created for {} and the device "
                          "has {}",
                          device.name_, version_name(handles.api_version), version_name(properties.apiVersion));
    }
    auto offered = offered_extensions(handles.physical_device);
    if (!offered) return std::move(offered).error();
    std::string not_offered;
    for (const char* name : handles.enabled_extensions) {
        if (name == nullptr) return make_error(Errc::invalid_argument, "a null extension name in enabled_extensions");
        if (!contains(*offered, name)) not_offered += fmt::format("{}{}", not_offered.empty() ? "" : ", ", name);
        device.enabled_.emplace_back(name);
    }
    if (!not_offered.empty()) {
        return make_error(Errc::invalid_argument, "{} does not offer {}, which enabled_extensions lists", device.name_,
                          not_offered);
    }
    std::string missing;
    for (const char* name : required_extensions) {
        if (device.enabled(name)) continue;
        missing += fmt::format("{}{} ({})", missing.empty() ? "" : ", ", name,
                               contains(*offered, name) ? "offered by the device, not enabled"
                                                        : "the device does not offer it");
    }
    if (!missing.empty()) {
        return make_error(Errc::unsupported, "{}: external memory needs {}", device.name_, missing);
    }
    device.has_dma_buf_ = device.enabled(VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME);
    // Core in 1.1 (checked above), so no extension entry point is needed.
    VkPhysicalDeviceIDProperties ids{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES, nullptr, {}, {}, {}, 0, VK_FALSE};
    VkPhysicalDeviceProperties2 properties2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &ids, {}};
    vkGetPhysicalDeviceProperties2(handles.physical_device, &properties2);
    static_assert(VK_UUID_SIZE == std::tuple_size_v<DeviceUuid>);
    std::copy_n(ids.deviceUUID, VK_UUID_SIZE, device.device_uuid_.begin());
    std::copy_n(ids.driverUUID, VK_UUID_SIZE, device.driver_uuid_.begin());
    device.get_memory_fd_properties_ = reinterpret_cast<PFN_vkGetMemoryFdPropertiesKHR>(
        vkGetDeviceProcAddr(handles.device, "vkGetMemoryFdPropertiesKHR"));
    if (device.get_memory_fd_properties_ == nullptr) {
        return make_error(Errc::library, "{}: vkGetDeviceProcAddr gives no vkGetMemoryFdPropertiesKHR", device.name_);
    }
    if (device.enabled(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME)) {
        device.get_modifier_properties_ = reinterpret_cast<PFN_vkGetImageDrmFormatModifierPropertiesEXT>(
            vkGetDeviceProcAddr(handles.device, "vkGetImageDrmFormatModifierPropertiesEXT"));
        if (device.get_modifier_properties_ == nullptr) {
            return make_error(Errc::library, "{}: vkGetDeviceProcAddr gives no vkGetImageDrmFormatModifierPropertiesEXT",
                              device.name_);
        }
    }
    return device;
}

bool Device::enabled(std::string_view extension) const noexcept { return contains(enabled_, extension); }

}  // namespace texshare::vulkan
