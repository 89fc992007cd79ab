// The FormatTable of a Vulkan device: what a consumer importing with vulkan::Importer
// advertises to its producer (FrameReceiver::advertise), so negotiate() (negotiation.hpp)
// picks what this device imports before the first allocation.
//
// Use format_table() once after vulkan::Device::create(), with the usage the Importer was
// created with, and advertise the result; build it again when the device changes. It lists,
// for every DRM format texshare maps to Vulkan (vulkan/format.hpp), the modifiers the driver
// can import from a DMA-BUF for that usage: with VK_EXT_image_drm_format_modifier enabled,
// each modifier of vkGetPhysicalDeviceFormatProperties2's VkDrmFormatModifierPropertiesListEXT
// whose tiling features cover the usage, confirmed by vkGetPhysicalDeviceImageFormatProperties2
// (VkPhysicalDeviceImageDrmFormatModifierInfoEXT, external handle type DMA_BUF, IMPORTABLE);
// without it, LINEAR alone, for single-plane formats the driver imports with
// VK_IMAGE_TILING_LINEAR (the import still checks the DMA-BUF's stride against the driver's
// row pitch: a listed LINEAR pair is no promise for every stride). A device without
// VK_EXT_external_memory_dma_buf enabled lists no pair. The table also names the device:
// its DRM node (VK_EXT_physical_device_drm, where the device offers it) and always its
// device and driver UUIDs (VkPhysicalDeviceIDProperties, core in Vulkan 1.1), which decide
// the opaque_fd path.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <vulkan/vulkan.h>

#include <cstdint>

#include "texshare/format_table.hpp"
#include "texshare/result.hpp"
#include "texshare/vulkan/device.hpp"

namespace texshare::vulkan {

struct FormatTableOptions {
    // What the application does with imported images: Importer::Options::usage, as given.
    VkImageUsageFlags usage = VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT;
    // Claim consumer_converts_shared_memory: set it where the consumer's ImportListener has
    // Options::convert_shared_memory on (and /dev/udmabuf is there).
    bool converts_shared_memory = false;
    // Claim consumer_imports_opaque_memory where the driver imports OPAQUE_FD memory for an
    // optimal-tiling image of a mapped format with `usage`: set it off where the application
    // will not import Backing::opaque_fd images.
    bool opaque_memory = true;
};

// The physical device's deviceUUID and driverUUID (VkPhysicalDeviceIDProperties; the
// instance must be Vulkan 1.1 or newer, as vulkan::Device checks). Both zero only where the
// driver reports zeros, which negotiate() treats as no identity.
DeviceUuids device_uuids(VkPhysicalDevice physical);

// st_rdev of the device's DRM render node, else of its primary node
// (VkPhysicalDeviceDrmPropertiesEXT, asked only where the physical device offers
// VK_EXT_physical_device_drm); 0 where it offers neither (lavapipe, NVIDIA without
// nvidia-drm). Errc::library where vkEnumerateDeviceExtensionProperties fails.
Result<std::uint64_t> drm_device_number(VkPhysicalDevice physical);

// The table described at the top. Errc::invalid_argument for a usage of 0; Errc::library
// where a Vulkan query fails (naming it and its VkResult). Errc::unsupported where the driver
// lists more than max_format_table_entries pairs (the wire's limit).
Result<FormatTable> format_table(const Device& device, const FormatTableOptions& options);
inline Result<FormatTable> format_table(const Device& device) { return format_table(device, FormatTableOptions{}); }

}  // namespace texshare::vulkan
