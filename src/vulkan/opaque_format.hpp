// What the driver says about OPAQUE_FD memory for an optimal-tiling 2D image, asked the same
// way by the exporter and the importer (they must create the image identically).
#pragma once

#include <vulkan/vulkan.h>

#include "texshare/format.hpp"
#include "texshare/vulkan/device.hpp"

namespace texshare::vulkan::detail {

inline constexpr VkExternalMemoryHandleTypeFlagBits opaque_fd_type =
    VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT;

// The one rule both sides create an opaque_fd VkImage by: 2D, one mip level and layer, one
// sample, OPTIMAL tiling, exclusive, flags 0, external memory OPAQUE_FD.
inline VkImageCreateInfo opaque_image_info(const VkExternalMemoryImageCreateInfo& external, VkFormat format,
                                           VkExtent2D extent, VkImageUsageFlags usage) {
    return VkImageCreateInfo{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                             &external,
                             0,
                             VK_IMAGE_TYPE_2D,
                             format,
                             {extent.width, extent.height, 1},
                             1,
                             1,
                             VK_SAMPLE_COUNT_1_BIT,
                             VK_IMAGE_TILING_OPTIMAL,
                             usage,
                             VK_SHARING_MODE_EXCLUSIVE,
                             0,
                             nullptr,
                             VK_IMAGE_LAYOUT_UNDEFINED};
}

// The external memory features (EXPORTABLE, IMPORTABLE, DEDICATED_ONLY) of OPAQUE_FD memory for
// such an image of `format` and `usage` up to `extent`, from
// vkGetPhysicalDeviceImageFormatProperties2 with VkPhysicalDeviceExternalImageFormatInfo.
// Errc::unsupported naming the format, usage and why (the VkResult, or an extent beyond the
// driver's maxExtent).
inline Result<VkExternalMemoryFeatureFlags> opaque_fd_features(const Device& device, std::uint32_t fourcc,
                                                               VkFormat format, VkImageUsageFlags usage,
                                                               VkExtent2D extent) {
    const VkPhysicalDeviceExternalImageFormatInfo external_info{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_IMAGE_FORMAT_INFO, nullptr, opaque_fd_type};
    const VkPhysicalDeviceImageFormatInfo2 info{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_FORMAT_INFO_2,
                                                &external_info,
                                                format,
                                                VK_IMAGE_TYPE_2D,
                                                VK_IMAGE_TILING_OPTIMAL,
                                                usage,
                                                0};
    VkExternalImageFormatProperties external{VK_STRUCTURE_TYPE_EXTERNAL_IMAGE_FORMAT_PROPERTIES, nullptr, {}};
    VkImageFormatProperties2 properties{VK_STRUCTURE_TYPE_IMAGE_FORMAT_PROPERTIES_2, &external, {}};
    const VkResult r =
        vkGetPhysicalDeviceImageFormatProperties2(device.physical_device(), &info, &properties);
    if (r != VK_SUCCESS) {
        return make_error(
            Errc::unsupported,
            "{}: no OPAQUE_FD memory for an optimal-tiling {} image (VkFormat {}, usage 0x{:x}): "
            "vkGetPhysicalDeviceImageFormatProperties2 gives {}",
            device.name(), format_name(fourcc), static_cast<int>(format), usage, result_name(r));
    }
    const VkExtent3D max = properties.imageFormatProperties.maxExtent;
    if (extent.width > max.width || extent.height > max.height) {
        return make_error(
            Errc::unsupported, "{}: a {}x{} {} image exceeds the driver's {}x{} for OPAQUE_FD memory",
            device.name(), extent.width, extent.height, format_name(fourcc), max.width, max.height);
    }
    return external.externalMemoryProperties.externalMemoryFeatures;
}

}  // namespace texshare::vulkan::detail
