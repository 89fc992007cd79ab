// texshare::vulkan::Exporter: exportable VkImages and their memory as dma_buf DmaBufImages.
#include "texshare/vulkan/exporter.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "opaque_format.hpp"
#include "texshare/format.hpp"
#include "texshare/vulkan/format.hpp"

namespace texshare::vulkan {

namespace {

constexpr VkExternalMemoryHandleTypeFlagBits dma_buf_type = VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT;
constexpr std::uint64_t linear_candidate[] = {DRM_FORMAT_MOD_LINEAR};

// The formats whose bytes a Vulkan write lays down as the fourcc says: a single plane and no
// swizzle of the colour channels (an X format's alpha swizzle to ONE only affects sampling).
Result<const FormatMapping*> exportable_format(std::uint32_t fourcc) {
    const FormatMapping* mapping = find_mapping(fourcc);
    const FormatInfo* info = find_format(fourcc);
    if (mapping == nullptr || info == nullptr) {
        return make_error(Errc::unsupported, "format {} has no Vulkan format texshare knows", format_name(fourcc));
    }
    const VkComponentMapping& s = mapping->swizzle;
    const auto same = [](VkComponentSwizzle c) { return c == VK_COMPONENT_SWIZZLE_IDENTITY; };
    if (info->plane_count != 1 || !same(s.r) || !same(s.g) || !same(s.b) || mapping->swap_chroma_planes) {
        return make_error(Errc::unsupported,
                          "format {}: texshare exports single-plane formats whose bytes are a Vulkan format's as "
                          "they are ({} planes{})",
                          format_name(fourcc), info->plane_count,
                          same(s.r) && same(s.g) && same(s.b) ? "" : ", channels swizzled");
    }
    return mapping;
}

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

// Why `modifier` (or LINEAR tiling, without the extension) cannot be exported; "" if it can.
std::string export_refusal(const Device& device, VkFormat format, VkImageUsageFlags usage, bool with_modifier,
                           std::uint64_t modifier) {
    VkPhysicalDeviceImageDrmFormatModifierInfoEXT modifier_info{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_DRM_FORMAT_MODIFIER_INFO_EXT, nullptr, modifier,
        VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
    VkPhysicalDeviceExternalImageFormatInfo external_info{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_IMAGE_FORMAT_INFO, with_modifier ? &modifier_info : nullptr,
        dma_buf_type};
    const VkPhysicalDeviceImageFormatInfo2 info{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_FORMAT_INFO_2, &external_info, format, VK_IMAGE_TYPE_2D,
        with_modifier ? VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT : VK_IMAGE_TILING_LINEAR, usage, 0};
    VkExternalImageFormatProperties external{VK_STRUCTURE_TYPE_EXTERNAL_IMAGE_FORMAT_PROPERTIES, nullptr, {}};
    VkImageFormatProperties2 properties{VK_STRUCTURE_TYPE_IMAGE_FORMAT_PROPERTIES_2, &external, {}};
    const VkResult r = vkGetPhysicalDeviceImageFormatProperties2(device.physical_device(), &info, &properties);
    if (r != VK_SUCCESS) return fmt::format("vkGetPhysicalDeviceImageFormatProperties2 gives {}", result_name(r));
    if ((external.externalMemoryProperties.externalMemoryFeatures & VK_EXTERNAL_MEMORY_FEATURE_EXPORTABLE_BIT) == 0) {
        return fmt::format("DMA-BUF memory is not exportable (externalMemoryFeatures {:#x})",
                           external.externalMemoryProperties.externalMemoryFeatures);
    }
    return "";
}

Result<std::uint32_t> memory_type(VkPhysicalDevice physical, std::uint32_t type_bits) {
    VkPhysicalDeviceMemoryProperties types{};
    vkGetPhysicalDeviceMemoryProperties(physical, &types);
    std::uint32_t any = types.memoryTypeCount;
    for (std::uint32_t i = 0; i < types.memoryTypeCount; ++i) {
        if ((type_bits & (1U << i)) == 0) continue;
        if ((types.memoryTypes[i].propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) != 0) return i;
        if (any == types.memoryTypeCount) any = i;
    }
    if (any == types.memoryTypeCount) {
        return make_error(Errc::unsupported, "no memory type in the image's memoryTypeBits {:#x}", type_bits);
    }
    return any;
}

}  // namespace

ExportedImage& ExportedImage::operator=(ExportedImage&& other) noexcept {
    if (this != &other) {
        reset();
        device_ = std::exchange(other.device_, VK_NULL_HANDLE);
        image_ = std::exchange(other.image_, VK_NULL_HANDLE);
        memory_ = std::exchange(other.memory_, VK_NULL_HANDLE);
        format_ = other.format_;
        extent_ = other.extent_;
        tiling_ = other.tiling_;
        modifier_ = other.modifier_;
        handle_type_ = other.handle_type_;
    }
    return *this;
}

void ExportedImage::reset() noexcept {
    if (image_ != VK_NULL_HANDLE) vkDestroyImage(device_, image_, nullptr);
    if (memory_ != VK_NULL_HANDLE) vkFreeMemory(device_, memory_, nullptr);
    image_ = VK_NULL_HANDLE;
    memory_ = VK_NULL_HANDLE;
}

Result<Exporter> Exporter::create(const DeviceHandles& handles, Options options) {
    if (options.usage == 0) return make_error(Errc::invalid_argument, "Exporter: an image usage of 0");
    auto device = Device::create(handles);
    if (!device) return std::move(device).error();
    return create(*device, options);
}

Result<Exporter> Exporter::create(const Device& device, Options options) {
    if (options.usage == 0) return make_error(Errc::invalid_argument, "Exporter: an image usage of 0");
    if (options.handle == ExportHandle::dma_buf && !device.has_dma_buf()) {
        return make_error(Errc::unsupported, "{}: DMA-BUF export (ExportHandle::dma_buf) needs {}, which the device "
                          "was not created with", device.name(), VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME);
    }
    Exporter exporter(device, options);
    exporter.get_memory_fd_ =
        reinterpret_cast<PFN_vkGetMemoryFdKHR>(vkGetDeviceProcAddr(device.device(), "vkGetMemoryFdKHR"));
    if (exporter.get_memory_fd_ == nullptr) {
        return make_error(Errc::library, "{}: vkGetDeviceProcAddr gives no vkGetMemoryFdKHR", device.name());
    }
    return exporter;
}

Result<std::vector<std::uint64_t>> Exporter::exportable_modifiers(std::uint32_t fourcc,
                                                                  std::span<const std::uint64_t> modifiers) const {
    if (modifiers.empty()) return make_error(Errc::invalid_argument, "export: no candidate modifiers");
    if (!device_.has_dma_buf()) {
        return make_error(Errc::unsupported, "{}: no DMA-BUF export without {}", device_.name(),
                          VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME);
    }
    auto mapping = exportable_format(fourcc);
    if (!mapping) return std::move(mapping).error();
    const VkFormat format = (*mapping)->format;
    const bool with_modifiers = device_.has_drm_format_modifiers();
    const auto listed = with_modifiers ? listed_modifiers(device_.physical_device(), format)
                                       : std::vector<VkDrmFormatModifierPropertiesEXT>{};
    std::vector<std::uint64_t> exportable;
    std::string refusals;
    for (std::uint64_t modifier : modifiers) {
        std::string why;
        if (!with_modifiers && modifier != DRM_FORMAT_MOD_LINEAR) {
            why = "only LINEAR without " VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME;
        } else if (with_modifiers && std::ranges::none_of(listed, [&](const VkDrmFormatModifierPropertiesEXT& p) {
                       return p.drmFormatModifier == modifier;
                   })) {
            why = "the driver does not list it for the format";
        } else {
            why = export_refusal(device_, format, options_.usage, with_modifiers, modifier);
        }
        if (why.empty()) {
            exportable.push_back(modifier);
        } else {
            refusals += fmt::format("{}{}: {}", refusals.empty() ? "" : "; ", modifier_name(modifier), why);
        }
    }
    if (exportable.empty()) {
        return make_error(Errc::unsupported, "{} cannot export {} ({}) as a DMA-BUF for usage {:#x}: {}",
                          device_.name(), format_name(fourcc), static_cast<int>(format), options_.usage, refusals);
    }
    return exportable;
}

bool Exporter::dma_buf_exportable_at_all(std::uint32_t fourcc) const {
    if (!device_.has_dma_buf()) return false;
    const FormatMapping* mapping = find_mapping(fourcc);
    if (mapping == nullptr) return false;
    std::vector<std::uint64_t> every{DRM_FORMAT_MOD_LINEAR};
    if (device_.has_drm_format_modifiers()) {
        for (const auto& listed : listed_modifiers(device_.physical_device(), mapping->format)) {
            every.push_back(listed.drmFormatModifier);
        }
    }
    return exportable_modifiers(fourcc, every).has_value();
}

Result<Exporter::Exported> Exporter::allocate(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc) const {
    return allocate(width, height, fourcc, linear_candidate);
}

Result<Exporter::Exported> Exporter::allocate(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc,
                                              std::span<const std::uint64_t> modifiers) const {
    VkPhysicalDeviceProperties properties{};
    vkGetPhysicalDeviceProperties(device_.physical_device(), &properties);
    const std::uint32_t max_side = properties.limits.maxImageDimension2D;
    if (width == 0 || height == 0 || width > max_side || height > max_side) {
        return make_error(Errc::invalid_argument, "export of a {}x{} image: each side must be 1..{} (maxImageDimension2D)",
                          width, height, max_side);
    }
    if (options_.handle == ExportHandle::opaque_fd) return allocate_opaque_fd(width, height, fourcc);
    auto candidates = exportable_modifiers(fourcc, modifiers);
    if (!candidates) {
        if (options_.handle == ExportHandle::dma_buf || candidates.error().code != Errc::unsupported) {
            return std::move(candidates).error();
        }
        // ExportHandle::automatic falls back to OPAQUE_FD only where the driver exports no
        // DMA-BUF of this format and usage at all (no extension; Mesa 25's lavapipe without a
        // DRM device imports DMA-BUFs only), not where it merely lacks the caller's modifiers.
        if (dma_buf_exportable_at_all(fourcc)) return std::move(candidates).error();
        auto opaque = allocate_opaque_fd(width, height, fourcc);  // ExportHandle::automatic's fallback
        if (opaque || opaque.error().code != Errc::unsupported) return opaque;
        return make_error(Errc::unsupported, "neither DMA-BUF nor OPAQUE_FD export: {}; and {}",
                          candidates.error().message, opaque.error().message);
    }
    return allocate_dma_buf(width, height, fourcc, *candidates);
}

Result<Exporter::Exported> Exporter::allocate_dma_buf(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc,
                                                      std::vector<std::uint64_t> candidates) const {
    const VkFormat format = find_mapping(fourcc)->format;
    const bool with_modifiers = device_.has_drm_format_modifiers();
    const VkDevice vk = device_.device();

    Exported out;
    ExportedImage& made = out.vulkan;
    made.device_ = vk;
    made.format_ = format;
    made.extent_ = {width, height};
    made.tiling_ = with_modifiers ? VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT : VK_IMAGE_TILING_LINEAR;
    made.modifier_ = DRM_FORMAT_MOD_LINEAR;
    made.handle_type_ = dma_buf_type;
    VkImageDrmFormatModifierListCreateInfoEXT modifier_list{
        VK_STRUCTURE_TYPE_IMAGE_DRM_FORMAT_MODIFIER_LIST_CREATE_INFO_EXT, nullptr,
        static_cast<std::uint32_t>(candidates.size()), candidates.data()};
    const VkExternalMemoryImageCreateInfo external{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
                                                   with_modifiers ? &modifier_list : nullptr, dma_buf_type};
    const VkImageCreateInfo image_info{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                                       &external,
                                       0,
                                       VK_IMAGE_TYPE_2D,
                                       format,
                                       {width, height, 1},
                                       1,
                                       1,
                                       VK_SAMPLE_COUNT_1_BIT,
                                       made.tiling_,
                                       options_.usage,
                                       VK_SHARING_MODE_EXCLUSIVE,
                                       0,
                                       nullptr,
                                       VK_IMAGE_LAYOUT_UNDEFINED};
    if (VkResult r = vkCreateImage(vk, &image_info, nullptr, &made.image_); r != VK_SUCCESS) {
        made.image_ = VK_NULL_HANDLE;
        return make_error(Errc::library, "vkCreateImage ({}x{} {}): {}", width, height, format_name(fourcc),
                          result_name(r));
    }
    VkMemoryRequirements needs{};
    vkGetImageMemoryRequirements(vk, made.image_, &needs);
    auto type = memory_type(device_.physical_device(), needs.memoryTypeBits);
    if (!type) return std::move(type).error();
    const VkMemoryDedicatedAllocateInfo dedicated{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO, nullptr,
                                                  made.image_, VK_NULL_HANDLE};
    const VkExportMemoryAllocateInfo export_info{VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO, &dedicated,
                                                 dma_buf_type};
    const VkMemoryAllocateInfo allocate_info{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, &export_info, needs.size, *type};
    if (VkResult r = vkAllocateMemory(vk, &allocate_info, nullptr, &made.memory_); r != VK_SUCCESS) {
        made.memory_ = VK_NULL_HANDLE;
        return make_error(Errc::library, "vkAllocateMemory (exportable DMA-BUF, {} bytes, type {}): {}", needs.size,
                          *type, result_name(r));
    }
    if (VkResult r = vkBindImageMemory(vk, made.image_, made.memory_, 0); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkBindImageMemory: {}", result_name(r));
    }

    ImageLayout layout{width, height, fourcc, DRM_FORMAT_MOD_LINEAR, 1, {}};
    if (with_modifiers) {
        VkImageDrmFormatModifierPropertiesEXT chosen{VK_STRUCTURE_TYPE_IMAGE_DRM_FORMAT_MODIFIER_PROPERTIES_EXT,
                                                     nullptr, 0};
        if (VkResult r = device_.get_modifier_properties()(vk, made.image_, &chosen); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkGetImageDrmFormatModifierPropertiesEXT: {}", result_name(r));
        }
        layout.modifier = made.modifier_ = chosen.drmFormatModifier;
        const auto listed = listed_modifiers(device_.physical_device(), format);
        const auto entry = std::ranges::find_if(listed, [&](const VkDrmFormatModifierPropertiesEXT& p) {
            return p.drmFormatModifier == chosen.drmFormatModifier;
        });
        if (entry == listed.end() || entry->drmFormatModifierPlaneCount == 0 ||
            entry->drmFormatModifierPlaneCount > max_planes) {
            return make_error(Errc::library, "the driver chose modifier {}, which it does not list for {} with 1..{} "
                              "memory planes", modifier_name(chosen.drmFormatModifier), format_name(fourcc), max_planes);
        }
        layout.plane_count = entry->drmFormatModifierPlaneCount;
    }
    static constexpr VkImageAspectFlagBits plane_aspects[] = {
        VK_IMAGE_ASPECT_MEMORY_PLANE_0_BIT_EXT, VK_IMAGE_ASPECT_MEMORY_PLANE_1_BIT_EXT,
        VK_IMAGE_ASPECT_MEMORY_PLANE_2_BIT_EXT, VK_IMAGE_ASPECT_MEMORY_PLANE_3_BIT_EXT};
    for (std::uint32_t plane = 0; plane < layout.plane_count; ++plane) {
        const VkImageSubresource subresource{
            static_cast<VkImageAspectFlags>(with_modifiers ? plane_aspects[plane] : VK_IMAGE_ASPECT_COLOR_BIT), 0, 0};
        VkSubresourceLayout sub{};
        vkGetImageSubresourceLayout(vk, made.image_, &subresource, &sub);
        if (sub.rowPitch > std::numeric_limits<std::uint32_t>::max()) {
            return make_error(Errc::invalid_layout, "the driver's plane {} row pitch {} does not fit 32 bits", plane,
                              sub.rowPitch);
        }
        layout.planes[plane] = {sub.offset, static_cast<std::uint32_t>(sub.rowPitch)};
    }

    const VkMemoryGetFdInfoKHR fd_info{VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR, nullptr, made.memory_, dma_buf_type};
    int raw_fd = -1;
    if (VkResult r = get_memory_fd_(vk, &fd_info, &raw_fd); r != VK_SUCCESS || raw_fd < 0) {
        return make_error(Errc::library, "vkGetMemoryFdKHR (DMA_BUF): {}{}", result_name(r),
                          raw_fd < 0 ? " and no fd" : "");
    }
    PlaneFds fds{};
    fds[0] = UniqueFd(raw_fd);
    const off_t size = ::lseek(raw_fd, 0, SEEK_END);
    if (size < 0) return make_sys_error(errno, "lseek(SEEK_END) on the exported DMA-BUF (fd {})", raw_fd);
    const auto end = [&](std::uint32_t plane) {
        return layout.planes[plane].offset + std::uint64_t{layout.planes[plane].stride} * height;
    };
    for (std::uint32_t plane = 0; plane < layout.plane_count; ++plane) {
        if (layout.modifier == DRM_FORMAT_MOD_LINEAR && end(plane) > static_cast<std::uint64_t>(size)) {
            return make_error(Errc::invalid_layout,
                              "the exported DMA-BUF has {} bytes, plane {} (offset {}, stride {}) needs {}", size,
                              plane, layout.planes[plane].offset, layout.planes[plane].stride, end(plane));
        }
        if (plane > 0) {
            auto copy = UniqueFd::dup(fds[0].borrow());
            if (!copy) return std::move(copy).error();
            fds[plane] = std::move(*copy);
        }
    }
    auto image = DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds));
    if (!image) return std::move(image).error();
    out.image = std::move(*image);
    return out;
}

// OPAQUE_FD: optimal tiling by detail::opaque_image_info (the importer's rule too), the
// memory exported as OPAQUE_FD, dedicated where the driver requires or prefers it (or the
// handle type is dedicated-only), and the identity an importer needs in OpaqueMemory.
Result<Exporter::Exported> Exporter::allocate_opaque_fd(std::uint32_t width, std::uint32_t height,
                                                        std::uint32_t fourcc) const {
    // What a consumer's Importer asks for by default, added so that it can import the image
    // (the importer creates its image with exactly this usage: opaque_memory.hpp).
    const VkImageUsageFlags usage = options_.usage | VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT;
    if ((usage & ~opaque_memory_known_usage) != 0) {
        return make_error(Errc::unsupported, "OPAQUE_FD export: usage 0x{:x} has bits beyond Vulkan 1.0's 0x{:x}, "
                          "which OpaqueMemory::image_usage carries", usage, opaque_memory_known_usage);
    }
    auto mapping = exportable_format(fourcc);
    if (!mapping) return std::move(mapping).error();
    const VkFormat format = (*mapping)->format;
    const VkExtent2D extent{width, height};
    auto features = detail::opaque_fd_features(device_, fourcc, format, usage, extent);
    if (!features) return std::move(features).error();
    if ((*features & VK_EXTERNAL_MEMORY_FEATURE_EXPORTABLE_BIT) == 0) {
        return make_error(Errc::unsupported, "{}: OPAQUE_FD memory for a {} image of usage 0x{:x} is not exportable "
                          "(externalMemoryFeatures 0x{:x})", device_.name(), format_name(fourcc), usage,
                          *features);
    }
    const VkDevice vk = device_.device();
    Exported out;
    ExportedImage& made = out.vulkan;
    made.device_ = vk;
    made.format_ = format;
    made.extent_ = extent;
    made.tiling_ = VK_IMAGE_TILING_OPTIMAL;
    made.modifier_ = DRM_FORMAT_MOD_INVALID;
    made.handle_type_ = detail::opaque_fd_type;
    const VkExternalMemoryImageCreateInfo external{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO, nullptr,
                                                   detail::opaque_fd_type};
    const VkImageCreateInfo image_info = detail::opaque_image_info(external, format, extent, usage);
    if (VkResult r = vkCreateImage(vk, &image_info, nullptr, &made.image_); r != VK_SUCCESS) {
        made.image_ = VK_NULL_HANDLE;
        return make_error(Errc::library, "vkCreateImage ({}x{} {}, OPTIMAL, OPAQUE_FD): {}", width, height,
                          format_name(fourcc), result_name(r));
    }
    VkMemoryDedicatedRequirements dedicated_needs{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_REQUIREMENTS, nullptr, VK_FALSE,
                                                  VK_FALSE};
    VkMemoryRequirements2 requirements{VK_STRUCTURE_TYPE_MEMORY_REQUIREMENTS_2, &dedicated_needs, {}};
    const VkImageMemoryRequirementsInfo2 requirements_info{VK_STRUCTURE_TYPE_IMAGE_MEMORY_REQUIREMENTS_INFO_2, nullptr,
                                                           made.image_};
    vkGetImageMemoryRequirements2(vk, &requirements_info, &requirements);
    const VkMemoryRequirements& needs = requirements.memoryRequirements;
    auto type = memory_type(device_.physical_device(), needs.memoryTypeBits);
    if (!type) return std::move(type).error();
    const bool dedicated = dedicated_needs.requiresDedicatedAllocation == VK_TRUE ||
                           dedicated_needs.prefersDedicatedAllocation == VK_TRUE ||
                           (*features & VK_EXTERNAL_MEMORY_FEATURE_DEDICATED_ONLY_BIT) != 0;
    const VkMemoryDedicatedAllocateInfo dedicated_info{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO, nullptr,
                                                       made.image_, VK_NULL_HANDLE};
    const VkExportMemoryAllocateInfo export_info{VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO,
                                                 dedicated ? &dedicated_info : nullptr, detail::opaque_fd_type};
    const VkMemoryAllocateInfo allocate_info{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, &export_info, needs.size, *type};
    if (VkResult r = vkAllocateMemory(vk, &allocate_info, nullptr, &made.memory_); r != VK_SUCCESS) {
        made.memory_ = VK_NULL_HANDLE;
        return make_error(Errc::library, "vkAllocateMemory (exportable OPAQUE_FD, {} bytes, type {}): {}", needs.size,
                          *type, result_name(r));
    }
    if (VkResult r = vkBindImageMemory(vk, made.image_, made.memory_, 0); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkBindImageMemory: {}", result_name(r));
    }
    const VkMemoryGetFdInfoKHR fd_info{VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR, nullptr, made.memory_,
                                       detail::opaque_fd_type};
    int raw_fd = -1;
    if (VkResult r = get_memory_fd_(vk, &fd_info, &raw_fd); r != VK_SUCCESS || raw_fd < 0) {
        return make_error(Errc::library, "vkGetMemoryFdKHR (OPAQUE_FD): {}{}", result_name(r),
                          raw_fd < 0 ? " and no fd" : "");
    }
    OpaqueMemory memory;
    memory.device_uuid = device_.device_uuid();
    memory.driver_uuid = device_.driver_uuid();
    memory.allocation_size = needs.size;
    memory.memory_type_index = *type;
    memory.flags = dedicated ? opaque_memory_dedicated : 0;
    memory.image_usage = usage;
    auto image = DmaBufImage::adopt_opaque_fd(width, height, fourcc, memory, UniqueFd(raw_fd));
    if (!image) return std::move(image).error();
    out.image = std::move(*image);
    return out;
}

}  // namespace texshare::vulkan
