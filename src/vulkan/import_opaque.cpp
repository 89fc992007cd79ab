// One opaque_fd image into Vulkan: the image created as the exporter created it, its memory
// imported from a duplicate of the OPAQUE_FD fd with the exported allocation's size, type and
// dedication. check_importable() (with the Device) has compared the UUIDs and the usage.
#include <bit>

#include "import_image.hpp"
#include "opaque_format.hpp"
#include "texshare/detail/fd_closer.hpp"
#include "texshare/vulkan/format.hpp"

namespace texshare::vulkan::detail {

Result<ImportedImage> import_opaque_fd(const Device& device, const DmaBufImage& image) {
    const ImageLayout& layout = image.layout();
    const OpaqueMemory& memory = image.opaque_memory();
    const FormatMapping& mapping = *find_mapping(layout.fourcc);  // check_importable() made sure
    const VkExtent2D extent{layout.width, layout.height};
    const VkImageUsageFlags usage = memory.image_usage;
    auto features = opaque_fd_features(device, layout.fourcc, mapping.format, usage, extent);
    if (!features) return std::move(features).error();
    if ((*features & VK_EXTERNAL_MEMORY_FEATURE_IMPORTABLE_BIT) == 0) {
        return make_error(Errc::unsupported,
                          "{}: the driver cannot import OPAQUE_FD memory for a {} image of usage "
                          "0x{:x} (externalMemoryFeatures 0x{:x})",
                          device.name(), format_name(layout.fourcc), usage, *features);
    }
    if ((*features & VK_EXTERNAL_MEMORY_FEATURE_DEDICATED_ONLY_BIT) != 0 && !memory.dedicated()) {
        return make_error(Errc::unsupported,
                          "{}: OPAQUE_FD memory for {} is dedicated-only there, but the exported "
                          "memory was not a dedicated allocation",
                          device.name(), format_name(layout.fourcc));
    }

    const VkExternalMemoryImageCreateInfo external{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
                                                   nullptr, opaque_fd_type};
    const VkImageCreateInfo info = opaque_image_info(external, mapping.format, extent, usage);
    ImportedImage imported{
        VK_NULL_HANDLE, mapping.format, mapping.swizzle, VK_IMAGE_TILING_OPTIMAL, extent, false, {}, 0};
    struct Guard {
        VkDevice device;
        ImportedImage& imported;
        bool handed_out = false;
        ~Guard() {
            if (!handed_out) destroy_import(device, imported);
        }
    } guard{device.device(), imported};
    if (VkResult r = vkCreateImage(device.device(), &info, nullptr, &imported.image); r != VK_SUCCESS) {
        imported.image = VK_NULL_HANDLE;
        return make_error(Errc::library, "vkCreateImage ({} {}x{}, OPTIMAL, OPAQUE_FD) failed: {}",
                          format_name(layout.fourcc), layout.width, layout.height, result_name(r));
    }
    VkMemoryDedicatedRequirements dedicated_needs{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_REQUIREMENTS, nullptr,
                                                  VK_FALSE, VK_FALSE};
    VkMemoryRequirements2 requirements{VK_STRUCTURE_TYPE_MEMORY_REQUIREMENTS_2, &dedicated_needs, {}};
    const VkImageMemoryRequirementsInfo2 requirements_info{VK_STRUCTURE_TYPE_IMAGE_MEMORY_REQUIREMENTS_INFO_2,
                                                           nullptr, imported.image};
    vkGetImageMemoryRequirements2(device.device(), &requirements_info, &requirements);
    const VkMemoryRequirements& needs = requirements.memoryRequirements;
    if (needs.size > memory.allocation_size) {
        return make_error(
            Errc::unsupported,
            "{}: the {}x{} {} image needs {} bytes, the exported OPAQUE_FD allocation has {} (an image "
            "created with other parameters than the exporter's?)",
            device.name(), layout.width, layout.height, format_name(layout.fourcc), needs.size,
            memory.allocation_size);
    }
    VkPhysicalDeviceMemoryProperties types{};
    vkGetPhysicalDeviceMemoryProperties(device.physical_device(), &types);
    if (memory.memory_type_index >= types.memoryTypeCount ||
        (needs.memoryTypeBits & (1U << memory.memory_type_index)) == 0) {
        return make_error(
            Errc::unsupported,
            "{}: the exported memory type {} is not one the image can use (memoryTypeBits 0x{:x}, {} "
            "types)",
            device.name(), memory.memory_type_index, needs.memoryTypeBits, types.memoryTypeCount);
    }
    if (dedicated_needs.requiresDedicatedAllocation == VK_TRUE && !memory.dedicated()) {
        return make_error(Errc::unsupported,
                          "{}: the image requires a dedicated allocation, the exported memory is "
                          "not one",
                          device.name());
    }

    auto copy = UniqueFd::dup(image.plane_fd(0));
    if (!copy) return std::move(copy).error();
    const VkMemoryDedicatedAllocateInfo dedicated{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO, nullptr,
                                                  imported.image, VK_NULL_HANDLE};
    const VkImportMemoryFdInfoKHR import_info{VK_STRUCTURE_TYPE_IMPORT_MEMORY_FD_INFO_KHR,
                                              memory.dedicated() ? &dedicated : nullptr, opaque_fd_type,
                                              copy->get()};
    // VUID-VkMemoryAllocateInfo-allocationSize-01742: the exported size and type, exactly.
    const VkMemoryAllocateInfo allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, &import_info,
                                        memory.allocation_size, memory.memory_type_index};
    VkDeviceMemory imported_memory = VK_NULL_HANDLE;
    if (VkResult r = vkAllocateMemory(device.device(), &allocate, nullptr, &imported_memory);
        r != VK_SUCCESS) {
        // The duplicate stays ours; a peer's character device may block in close: the closer thread.
        texshare::detail::close_peer_fd(*copy);
        return make_error(
            r == VK_ERROR_INVALID_EXTERNAL_HANDLE ? Errc::rejected : Errc::library,
            "vkAllocateMemory (OPAQUE_FD import of {} bytes, type {}{}) failed: {}{}", memory.allocation_size,
            memory.memory_type_index, memory.dedicated() ? ", dedicated" : "", result_name(r),
            r == VK_ERROR_INVALID_EXTERNAL_HANDLE ? " (the driver says the fd is not its memory)" : "");
    }
    (void)copy->release();  // VkImportMemoryFdInfoKHR: a successful import owns the fd
    imported.memory[0] = imported_memory;
    imported.memory_count = 1;
    if (VkResult r = vkBindImageMemory(device.device(), imported.image, imported_memory, 0);
        r != VK_SUCCESS) {
        return make_error(Errc::library, "vkBindImageMemory (OPAQUE_FD import) failed: {}", result_name(r));
    }
    guard.handed_out = true;
    return imported;
}

}  // namespace texshare::vulkan::detail
