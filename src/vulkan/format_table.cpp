// texshare::vulkan::format_table: what the device imports, asked the way the Importer will
// import (same tiling, usage, handle type and modifier), so a listed pair is one the Importer
// accepts, and the device's identity (DRM node, UUIDs).
#include "texshare/vulkan/format_table.hpp"

#include <sys/sysmacros.h>

#include <algorithm>
#include <string>
#include <vector>

#include "texshare/vulkan/format.hpp"

namespace texshare::vulkan {

namespace {

// The format features an image needs for each usage bit (Vulkan spec, "Valid usage" of
// VkImageCreateInfo: usage needs the matching VK_FORMAT_FEATURE_*). Usage bits without a
// feature here are left to vkGetPhysicalDeviceImageFormatProperties2.
VkFormatFeatureFlags features_for(VkImageUsageFlags usage) {
    VkFormatFeatureFlags features = 0;
    if ((usage & VK_IMAGE_USAGE_SAMPLED_BIT) != 0) features |= VK_FORMAT_FEATURE_SAMPLED_IMAGE_BIT;
    if ((usage & VK_IMAGE_USAGE_STORAGE_BIT) != 0) features |= VK_FORMAT_FEATURE_STORAGE_IMAGE_BIT;
    if ((usage & VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT) != 0) features |= VK_FORMAT_FEATURE_COLOR_ATTACHMENT_BIT;
    if ((usage & VK_IMAGE_USAGE_TRANSFER_SRC_BIT) != 0) features |= VK_FORMAT_FEATURE_TRANSFER_SRC_BIT;
    if ((usage & VK_IMAGE_USAGE_TRANSFER_DST_BIT) != 0) features |= VK_FORMAT_FEATURE_TRANSFER_DST_BIT;
    return features;
}

// Whether the driver imports an image of `format` from `handle` for `usage` with `tiling`
// (and `modifier` where tiling is DRM_FORMAT_MODIFIER_EXT): IMPORTABLE in its
// VkExternalImageFormatProperties. A format the driver refuses answers
// VK_ERROR_FORMAT_NOT_SUPPORTED, which is "no"; any other failure is the caller's error.
Result<bool> importable(VkPhysicalDevice physical, VkFormat format, VkImageTiling tiling, std::uint64_t modifier,
                        VkImageUsageFlags usage, VkExternalMemoryHandleTypeFlagBits handle) {
    VkPhysicalDeviceImageDrmFormatModifierInfoEXT modifier_info{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_DRM_FORMAT_MODIFIER_INFO_EXT, nullptr, modifier,
        VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
    VkPhysicalDeviceExternalImageFormatInfo external_info{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_IMAGE_FORMAT_INFO,
        tiling == VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT ? &modifier_info : nullptr, handle};
    const VkPhysicalDeviceImageFormatInfo2 info{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_FORMAT_INFO_2,
                                                &external_info, format, VK_IMAGE_TYPE_2D, tiling, usage, 0};
    VkExternalImageFormatProperties external{VK_STRUCTURE_TYPE_EXTERNAL_IMAGE_FORMAT_PROPERTIES, nullptr, {}};
    VkImageFormatProperties2 properties{VK_STRUCTURE_TYPE_IMAGE_FORMAT_PROPERTIES_2, &external, {}};
    const VkResult r = vkGetPhysicalDeviceImageFormatProperties2(physical, &info, &properties);
    if (r == VK_ERROR_FORMAT_NOT_SUPPORTED) return false;
    if (r != VK_SUCCESS) {
        return make_error(Errc::library, "vkGetPhysicalDeviceImageFormatProperties2 (VkFormat {}, handle 0x{:x}): {}",
                          static_cast<int>(format), static_cast<unsigned>(handle), result_name(r));
    }
    return (external.externalMemoryProperties.externalMemoryFeatures & VK_EXTERNAL_MEMORY_FEATURE_IMPORTABLE_BIT) != 0;
}

// The driver's modifiers for `format` (VkDrmFormatModifierPropertiesListEXT, asked twice:
// the count, then the entries).
std::vector<VkDrmFormatModifierPropertiesEXT> listed_modifiers(VkPhysicalDevice physical, VkFormat format) {
    VkDrmFormatModifierPropertiesListEXT list{VK_STRUCTURE_TYPE_DRM_FORMAT_MODIFIER_PROPERTIES_LIST_EXT, nullptr, 0,
                                              nullptr};
    VkFormatProperties2 properties{VK_STRUCTURE_TYPE_FORMAT_PROPERTIES_2, &list, {}};
    vkGetPhysicalDeviceFormatProperties2(physical, format, &properties);
    std::vector<VkDrmFormatModifierPropertiesEXT> modifiers(list.drmFormatModifierCount);
    list.pDrmFormatModifierProperties = modifiers.data();
    vkGetPhysicalDeviceFormatProperties2(physical, format, &properties);
    modifiers.resize(list.drmFormatModifierCount);
    return modifiers;
}

// The DMA-BUF pairs of one mapped format.
Result<void> add_dma_buf_pairs(const Device& device, const FormatMapping& mapping, VkImageUsageFlags usage,
                               FormatTable& table) {
    const VkPhysicalDevice physical = device.physical_device();
    const VkFormatFeatureFlags needed = features_for(usage);
    if (!device.has_drm_format_modifiers()) {
        // The Importer takes only single-plane LINEAR images without the extension.
        if (find_format(mapping.fourcc)->plane_count != 1) return {};  // format.hpp maps known formats only
        auto linear = importable(physical, mapping.format, VK_IMAGE_TILING_LINEAR, DRM_FORMAT_MOD_LINEAR, usage,
                                 VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT);
        if (!linear) return std::move(linear).error();
        if (*linear) table.formats.add(mapping.fourcc, DRM_FORMAT_MOD_LINEAR);
        return {};
    }
    for (const VkDrmFormatModifierPropertiesEXT& entry : listed_modifiers(physical, mapping.format)) {
        if ((entry.drmFormatModifierTilingFeatures & needed) != needed) continue;
        auto ok = importable(physical, mapping.format, VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT, entry.drmFormatModifier,
                             usage, VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT);
        if (!ok) return std::move(ok).error();
        if (*ok) table.formats.add(mapping.fourcc, entry.drmFormatModifier);
    }
    return {};
}

}  // namespace

DeviceUuids device_uuids(VkPhysicalDevice physical) {
    VkPhysicalDeviceIDProperties id{};
    id.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES;
    VkPhysicalDeviceProperties2 properties{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &id, {}};
    vkGetPhysicalDeviceProperties2(physical, &properties);
    DeviceUuids uuids;
    static_assert(VK_UUID_SIZE == sizeof uuids.device && VK_UUID_SIZE == sizeof uuids.driver);
    std::copy_n(id.deviceUUID, VK_UUID_SIZE, uuids.device.begin());
    std::copy_n(id.driverUUID, VK_UUID_SIZE, uuids.driver.begin());
    return uuids;
}

Result<std::uint64_t> drm_device_number(VkPhysicalDevice physical) {
    std::uint32_t count = 0;
    if (VkResult r = vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, nullptr); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkEnumerateDeviceExtensionProperties failed: {}", result_name(r));
    }
    std::vector<VkExtensionProperties> offered(count);
    if (VkResult r = vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, offered.data());
        r != VK_SUCCESS && r != VK_INCOMPLETE) {
        return make_error(Errc::library, "vkEnumerateDeviceExtensionProperties failed: {}", result_name(r));
    }
    offered.resize(count);
    const bool has_drm = std::ranges::any_of(offered, [](const VkExtensionProperties& e) {
        return std::string_view(e.extensionName) == VK_EXT_PHYSICAL_DEVICE_DRM_EXTENSION_NAME;
    });
    if (!has_drm) return std::uint64_t{0};
    VkPhysicalDeviceDrmPropertiesEXT drm{};
    drm.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRM_PROPERTIES_EXT;
    VkPhysicalDeviceProperties2 properties{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &drm, {}};
    vkGetPhysicalDeviceProperties2(physical, &properties);
    // Render node first: that is what FormatTable::device names (format_table.hpp).
    if (drm.hasRender == VK_TRUE) {
        return std::uint64_t{makedev(static_cast<unsigned>(drm.renderMajor), static_cast<unsigned>(drm.renderMinor))};
    }
    if (drm.hasPrimary == VK_TRUE) {
        return std::uint64_t{makedev(static_cast<unsigned>(drm.primaryMajor), static_cast<unsigned>(drm.primaryMinor))};
    }
    return std::uint64_t{0};
}

Result<FormatTable> format_table(const Device& device, const FormatTableOptions& options) {
    if (options.usage == 0) return make_error(Errc::invalid_argument, "FormatTableOptions::usage is 0");
    FormatTable table;
    auto node = drm_device_number(device.physical_device());
    if (!node) return std::move(node).error();
    table.device = *node;
    table.uuids = device_uuids(device.physical_device());
    if (options.converts_shared_memory) table.capabilities |= consumer_converts_shared_memory;
    const bool dma_buf = device.enabled(VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME);
    bool opaque = false;
    for (const FormatMapping& mapping : format_mappings()) {
        if (dma_buf) {
            if (auto added = add_dma_buf_pairs(device, mapping, options.usage, table); !added) {
                return std::move(added).error();
            }
        }
        if (options.opaque_memory && !opaque && table.uuids.known() &&
            device.enabled(VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME)) {
            auto ok = importable(device.physical_device(), mapping.format, VK_IMAGE_TILING_OPTIMAL, 0, options.usage,
                                 VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT);
            if (!ok) return std::move(ok).error();
            opaque = *ok;
        }
    }
    if (opaque) table.capabilities |= consumer_imports_opaque_memory;
    if (table.formats.pair_count() > max_format_table_entries) {
        return make_error(Errc::unsupported, "{} imports {} format/modifier pairs; a format table carries at most {}",
                          device.name(), table.formats.pair_count(), max_format_table_entries);
    }
    return table;
}

}  // namespace texshare::vulkan
