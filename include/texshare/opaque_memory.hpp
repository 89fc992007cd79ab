// OpaqueMemory: what makes a driver's opaque external memory importable, and the checks of it.
//
// Use it with Backing::opaque_fd images (dma_buf_image.hpp): Vulkan (or CUDA) memory exported
// as VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT, which only the same driver on the same
// physical device can import, and only with the allocation's own parameters. Such an fd says
// nothing about itself (NVIDIA's is an fd of /dev/nvidiactl; lavapipe's a memfd), so the
// identity travels next to it:
//   device_uuid, driver_uuid  VkPhysicalDeviceIDProperties of the exporting device. The spec
//                             ("External Memory Handle Types", compatibility table) allows
//                             OPAQUE_FD import only where both UUIDs equal the importer's.
//   allocation_size,          VkMemoryAllocateInfo::allocationSize and memoryTypeIndex of the
//   memory_type_index         exported memory: VUID-VkMemoryAllocateInfo-allocationSize-01742
//                             (an OPAQUE_FD import "must match those specified when the payload
//                             being imported was created"). vkGetMemoryFdPropertiesKHR cannot
//                             tell the type for OPAQUE_FD (VUID-vkGetMemoryFdPropertiesKHR-
//                             handleType-00674), so the exporter's index travels.
//   flags bit 0 (dedicated)   the memory was allocated with VkMemoryDedicatedAllocateInfo for
//                             its image; a dedicated OPAQUE_FD import needs memory that was
//                             "also a dedicated image allocation" with an identical image
//                             (VUID-VkMemoryDedicatedAllocateInfo-image-01878).
//   image_usage               the VkImageUsageFlags the exporting image was created with: the
//                             importer creates its image with exactly these (a driver may lay
//                             out an optimal-tiling image differently per usage, e.g. with
//                             compression for a colour attachment), and refuses an import
//                             whose wanted usage is not among them.
// Both sides must create the VkImage with the same parameters (format, extent, tiling
// OPTIMAL, usage, flags 0): the spec's rule that an image bound to imported OPAQUE_FD memory is
// identical to the exporting one (VUID-VkMemoryDedicatedAllocateInfo-image-01878; the spec's
// "External Memory Handle Types" compatibility table also requires equal deviceUUID and
// driverUUID for OPAQUE_FD). texshare::vulkan's Exporter and Importer create both images by
// one rule (vulkan/exporter.hpp), so two processes using texshare agree.
//
// On the wire (image_wire.hpp) these 56 bytes follow the descriptor's planes, in this order,
// host byte order (both ends are one machine).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <type_traits>

#include "texshare/image_layout.hpp"
#include "texshare/result.hpp"

namespace texshare {

using DeviceUuid = std::array<std::uint8_t, 16>;  // VK_UUID_SIZE bytes

inline constexpr std::uint32_t opaque_memory_dedicated = 1U << 0;
inline constexpr std::uint32_t opaque_memory_known_flags = opaque_memory_dedicated;
// Vulkan has at most VK_MAX_MEMORY_TYPES (32) memory types.
inline constexpr std::uint32_t opaque_memory_max_types = 32;
// No GPU memory is this large (an H200 has 141 GB); a bigger claim is a hostile or broken peer.
inline constexpr std::uint64_t opaque_memory_max_size = std::uint64_t{1} << 40;
// VK_IMAGE_USAGE_TRANSFER_SRC_BIT .. VK_IMAGE_USAGE_INPUT_ATTACHMENT_BIT, Vulkan 1.0's eight
// usages (this header needs no vulkan.h): what texshare exports and imports with.
inline constexpr std::uint32_t opaque_memory_known_usage = 0xff;

struct OpaqueMemory {
    DeviceUuid device_uuid{};
    DeviceUuid driver_uuid{};
    std::uint64_t allocation_size = 0;
    std::uint32_t memory_type_index = 0;
    std::uint32_t flags = 0;        // opaque_memory_dedicated
    std::uint32_t image_usage = 0;  // VkImageUsageFlags of the exporting image
    std::uint32_t reserved = 0;     // must be zero
    bool dedicated() const noexcept { return (flags & opaque_memory_dedicated) != 0; }
    friend bool operator==(const OpaqueMemory&, const OpaqueMemory&) = default;
};
static_assert(sizeof(OpaqueMemory) == 56 && std::has_unique_object_representations_v<OpaqueMemory>,
              "OpaqueMemory is sent as it is: no padding");

// "6d65736132352e302e372d327e627000": a UUID as 32 lowercase hex digits, for messages.
inline std::string uuid_hex(const DeviceUuid& uuid) {
    std::string hex;
    hex.reserve(32);
    for (std::uint8_t byte : uuid) hex += fmt::format("{:02x}", byte);
    return hex;
}

// The checks that need no driver: a nonzero allocation size up to opaque_memory_max_size, a
// memory type index below 32, no flag bits other than opaque_memory_dedicated, a nonzero
// image usage of opaque_memory_known_usage's bits only, reserved zero. Errc::rejected
// naming the field and its value. Whether the size and type fit the device only the driver's
// import can tell (VK_ERROR_INVALID_EXTERNAL_HANDLE), and whether the UUIDs are this
// device's only the importer can (vulkan::Importer).
inline Result<void> check_opaque_memory(const OpaqueMemory& memory) {
    if (memory.allocation_size == 0 || memory.allocation_size > opaque_memory_max_size) {
        return make_error(Errc::rejected, "opaque memory allocation size {} is outside 1..{} bytes",
                          memory.allocation_size, opaque_memory_max_size);
    }
    if (memory.memory_type_index >= opaque_memory_max_types) {
        return make_error(Errc::rejected, "opaque memory type index {} is not below {} (VK_MAX_MEMORY_TYPES)",
                          memory.memory_type_index, opaque_memory_max_types);
    }
    if ((memory.flags & ~opaque_memory_known_flags) != 0) {
        return make_error(Errc::rejected, "opaque memory flags 0x{:x} have unknown bits 0x{:x}", memory.flags,
                          memory.flags & ~opaque_memory_known_flags);
    }
    if (memory.image_usage == 0 || (memory.image_usage & ~opaque_memory_known_usage) != 0) {
        return make_error(Errc::rejected,
                          "opaque memory image usage 0x{:x} is empty or has bits beyond 0x{:x}",
                          memory.image_usage, opaque_memory_known_usage);
    }
    if (memory.reserved != 0) {
        return make_error(Errc::rejected, "opaque memory reserved field is {}, not 0", memory.reserved);
    }
    return {};
}

// The layout of an opaque_fd image: width, height and a single-plane format texshare knows,
// modifier DRM_FORMAT_MOD_INVALID (the driver's private tiling, VK_IMAGE_TILING_OPTIMAL),
// one plane whose offset and stride are 0 (they mean nothing: only the driver knows where
// the pixels are), the other planes zero. Errc::unsupported for an unknown or multi-plane
// format, Errc::invalid_layout otherwise, naming what is wrong.
inline ImageLayout opaque_layout(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc) noexcept {
    return ImageLayout{width, height, fourcc, DRM_FORMAT_MOD_INVALID, 1, {}};
}
inline Result<void> check_opaque_layout(const ImageLayout& layout) {
    const FormatInfo* info = find_format(layout.fourcc);
    if (info == nullptr) {
        return make_error(Errc::unsupported, "format {} is not one texshare knows",
                          format_name(layout.fourcc));
    }
    if (info->plane_count != 1) {
        return make_error(Errc::unsupported, "an opaque_fd image is single-plane, {} has {} planes",
                          format_name(layout.fourcc), info->plane_count);
    }
    if (auto size = check_image_size(layout.width, layout.height); !size) return size;
    if (layout.modifier != DRM_FORMAT_MOD_INVALID) {
        return make_error(Errc::invalid_layout,
                          "an opaque_fd image has the driver's private tiling (modifier INVALID), not {}",
                          modifier_name(layout.modifier));
    }
    if (layout.plane_count != 1) {
        return make_error(Errc::invalid_layout, "an opaque_fd image has 1 plane, the layout declares {}",
                          layout.plane_count);
    }
    for (std::size_t i = 0; i < max_planes; ++i) {
        if (layout.planes[i] != PlaneLayout{}) {
            return make_error(
                Errc::invalid_layout,
                "an opaque_fd image's plane {} has offset {} stride {}: they must be 0 (only the "
                "driver knows its layout)",
                i, layout.planes[i].offset, layout.planes[i].stride);
        }
    }
    return {};
}

}  // namespace texshare
