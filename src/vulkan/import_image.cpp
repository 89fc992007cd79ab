// One DMA-BUF image into Vulkan. The order follows what the spec lets an application learn
// before committing: format support for this modifier and usage
// (vkGetPhysicalDeviceImageFormatProperties2), then the image, its layout check (LINEAR
// without the modifier extension), then per buffer the memory requirements, the DMA-BUF's
// size, its memory types (vkGetMemoryFdPropertiesKHR) and the import of a duplicated fd, and
// last the binding. An ImportGuard owns everything made so far, so every early return
// destroys it; a duplicated fd lives in a UniqueFd until vkAllocateMemory has taken it.
#include "import_image.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <vector>

#include "texshare/vulkan/format.hpp"

namespace texshare::vulkan::detail {

namespace {

Error vk_error(std::string_view call, VkResult result) {
    return make_error(Errc::library, "{} failed: {}", call, result_name(result));
}

class ImportGuard {
public:
    explicit ImportGuard(VkDevice device) noexcept : device_(device) {}
    ImportGuard(const ImportGuard&) = delete;
    ImportGuard& operator=(const ImportGuard&) = delete;
    ~ImportGuard() {
        if (!handed_out_) destroy_import(device_, imported);
    }
    ImportedImage hand_out() noexcept {
        handed_out_ = true;
        return imported;
    }
    ImportedImage imported;

private:
    VkDevice device_;
    bool handed_out_ = false;
};

// The DRM plane that feeds Vulkan's plane `plane` (format.hpp: YVU420 swaps the chroma planes).
std::size_t drm_plane(const FormatMapping& mapping, std::size_t plane) {
    return mapping.swap_chroma_planes && (plane == 1 || plane == 2) ? 3 - plane : plane;
}

VkImageAspectFlagBits memory_plane_aspect(std::size_t plane) {
    constexpr std::array<VkImageAspectFlagBits, max_planes> aspects{
        VK_IMAGE_ASPECT_MEMORY_PLANE_0_BIT_EXT, VK_IMAGE_ASPECT_MEMORY_PLANE_1_BIT_EXT,
        VK_IMAGE_ASPECT_MEMORY_PLANE_2_BIT_EXT, VK_IMAGE_ASPECT_MEMORY_PLANE_3_BIT_EXT};
    return aspects[plane];
}

// Whether the planes sit in more than one buffer. Every fd of one DMA-BUF refers to the
// buffer's one file (dma_buf_fd() installs dmabuf->file), so equal inodes mean one buffer.
Result<bool> planes_in_distinct_buffers(const DmaBufImage& image) {
    struct stat first {};
    if (::fstat(image.plane_fd(0).get(), &first) != 0) return make_sys_error(errno, "fstat of plane 0's fd");
    for (std::size_t i = 1; i < image.layout().plane_count; ++i) {
        struct stat other {};
        if (::fstat(image.plane_fd(i).get(), &other) != 0) return make_sys_error(errno, "fstat of plane {}'s fd", i);
        if (other.st_dev != first.st_dev || other.st_ino != first.st_ino) return true;
    }
    return false;
}

// The driver lists the modifier for the format, with as many memory planes as the image has.
Result<void> check_modifier(const Device& device, const ImageLayout& layout, VkFormat format) {
    VkDrmFormatModifierPropertiesListEXT list{VK_STRUCTURE_TYPE_DRM_FORMAT_MODIFIER_PROPERTIES_LIST_EXT, nullptr, 0,
                                              nullptr};
    VkFormatProperties2 properties{VK_STRUCTURE_TYPE_FORMAT_PROPERTIES_2, &list, {}};
    vkGetPhysicalDeviceFormatProperties2(device.physical_device(), format, &properties);
    std::vector<VkDrmFormatModifierPropertiesEXT> modifiers(list.drmFormatModifierCount);
    list.pDrmFormatModifierProperties = modifiers.data();
    vkGetPhysicalDeviceFormatProperties2(device.physical_device(), format, &properties);
    modifiers.resize(list.drmFormatModifierCount);
    for (const auto& entry : modifiers) {
        if (entry.drmFormatModifier != layout.modifier) continue;
        if (entry.drmFormatModifierPlaneCount != layout.plane_count) {
            return make_error(Errc::unsupported, "{}: {} with modifier {} has {} memory planes there, the image {}",
                              device.name(), format_name(layout.fourcc), modifier_name(layout.modifier),
                              entry.drmFormatModifierPlaneCount, layout.plane_count);
        }
        return {};
    }
    return make_error(Errc::unsupported, "{} lists no modifier {} for {} (VkFormat {}; it lists {})", device.name(),
                      modifier_name(layout.modifier), format_name(layout.fourcc), static_cast<int>(format),
                      modifiers.size());
}

// The driver can import this format, tiling and modifier from a DMA-BUF for `usage`.
Result<void> check_format(const Device& device, const ImageLayout& layout, VkFormat format, VkImageTiling tiling,
                          VkImageUsageFlags usage, VkImageCreateFlags flags) {
    VkPhysicalDeviceImageDrmFormatModifierInfoEXT modifier_info{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_DRM_FORMAT_MODIFIER_INFO_EXT, nullptr, layout.modifier,
        VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
    const bool explicit_modifier = tiling == VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT;
    VkPhysicalDeviceExternalImageFormatInfo external_info{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_IMAGE_FORMAT_INFO, explicit_modifier ? &modifier_info : nullptr,
        VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
    const VkPhysicalDeviceImageFormatInfo2 info{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_FORMAT_INFO_2,
                                                &external_info, format, VK_IMAGE_TYPE_2D, tiling, usage, flags};
    VkExternalImageFormatProperties external{VK_STRUCTURE_TYPE_EXTERNAL_IMAGE_FORMAT_PROPERTIES, nullptr, {}};
    VkImageFormatProperties2 properties{VK_STRUCTURE_TYPE_IMAGE_FORMAT_PROPERTIES_2, &external, {}};
    const std::string what = fmt::format("{} {} with modifier {} (VkFormat {}, usage 0x{:x})", device.name(),
                                         format_name(layout.fourcc), modifier_name(layout.modifier),
                                         static_cast<int>(format), usage);
    if (VkResult r = vkGetPhysicalDeviceImageFormatProperties2(device.physical_device(), &info, &properties);
        r != VK_SUCCESS) {
        return make_error(Errc::unsupported, "{}: no DMA-BUF import (vkGetPhysicalDeviceImageFormatProperties2: {})",
                          what, result_name(r));
    }
    if ((external.externalMemoryProperties.externalMemoryFeatures & VK_EXTERNAL_MEMORY_FEATURE_IMPORTABLE_BIT) == 0) {
        return make_error(Errc::unsupported, "{}: the driver cannot import it from a DMA-BUF", what);
    }
    const VkExtent3D max = properties.imageFormatProperties.maxExtent;
    if (layout.width > max.width || layout.height > max.height) {
        return make_error(Errc::unsupported, "{}: {}x{} exceeds the driver's {}x{}", what, layout.width,
                          layout.height, max.width, max.height);
    }
    return {};
}

// Without the modifier extension the driver chooses the LINEAR image's row pitch: the
// DMA-BUF's stride and offset must be exactly it, or every row after the first is misread.
Result<void> check_linear_layout(const Device& device, VkImage image, const ImageLayout& layout) {
    const VkImageSubresource subresource{VK_IMAGE_ASPECT_COLOR_BIT, 0, 0};
    VkSubresourceLayout driver{};
    vkGetImageSubresourceLayout(device.device(), image, &subresource, &driver);
    if (driver.rowPitch != layout.planes[0].stride || driver.offset != layout.planes[0].offset) {
        return make_error(Errc::unsupported,
                          "{}: a {}x{} {} LINEAR image has row pitch {} and offset {} there, the DMA-BUF has stride "
                          "{} and offset {}; importing it without VK_EXT_image_drm_format_modifier would read wrong "
                          "pixels",
                          device.name(), layout.width, layout.height, format_name(layout.fourcc), driver.rowPitch,
                          driver.offset, layout.planes[0].stride, layout.planes[0].offset);
    }
    return {};
}

// Imports the buffer behind `fd` as the memory of memory plane `plane` (or of the whole image).
Result<VkDeviceMemory> import_memory(const Device& device, VkImage image, BorrowedFd fd, bool disjoint,
                                     std::size_t plane) {
    const VkImagePlaneMemoryRequirementsInfo plane_info{VK_STRUCTURE_TYPE_IMAGE_PLANE_MEMORY_REQUIREMENTS_INFO,
                                                        nullptr, memory_plane_aspect(plane)};
    const VkImageMemoryRequirementsInfo2 requirements_info{VK_STRUCTURE_TYPE_IMAGE_MEMORY_REQUIREMENTS_INFO_2,
                                                           disjoint ? &plane_info : nullptr, image};
    VkMemoryRequirements2 requirements{VK_STRUCTURE_TYPE_MEMORY_REQUIREMENTS_2, nullptr, {}};
    vkGetImageMemoryRequirements2(device.device(), &requirements_info, &requirements);
    const VkMemoryRequirements& needs = requirements.memoryRequirements;
    const off_t size = ::lseek(fd.get(), 0, SEEK_END);  // a DMA-BUF's size (dma-buf.rst: "llseek")
    if (size < 0) return make_sys_error(errno, "lseek(SEEK_END) of plane {}'s fd {}", plane, fd.get());
    if (static_cast<VkDeviceSize>(size) < needs.size) {
        return make_error(Errc::unsupported, "{} needs {} bytes for memory plane {}, the DMA-BUF has {}", device.name(),
                          needs.size, plane, size);
    }
    VkMemoryFdPropertiesKHR fd_properties{VK_STRUCTURE_TYPE_MEMORY_FD_PROPERTIES_KHR, nullptr, 0};
    if (VkResult r = device.get_memory_fd_properties()(device.device(), VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT,
                                                       fd.get(), &fd_properties);
        r != VK_SUCCESS) {
        return vk_error(fmt::format("vkGetMemoryFdPropertiesKHR of plane {}'s fd {}", plane, fd.get()), r);
    }
    const std::uint32_t types = fd_properties.memoryTypeBits & needs.memoryTypeBits;
    if (types == 0) {
        return make_error(Errc::unsupported,
                          "{}: no memory type fits both the DMA-BUF (types 0x{:x}) and the image (types 0x{:x})",
                          device.name(), fd_properties.memoryTypeBits, needs.memoryTypeBits);
    }
    auto copy = UniqueFd::dup(fd);
    if (!copy) return std::move(copy).error();
    const VkMemoryDedicatedAllocateInfo dedicated{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO, nullptr, image,
                                                  VK_NULL_HANDLE};
    const VkImportMemoryFdInfoKHR import_info{VK_STRUCTURE_TYPE_IMPORT_MEMORY_FD_INFO_KHR,
                                              disjoint ? nullptr : &dedicated,
                                              VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT, copy->get()};
    const VkMemoryAllocateInfo allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, &import_info, needs.size,
                                        static_cast<std::uint32_t>(std::countr_zero(types))};
    VkDeviceMemory memory = VK_NULL_HANDLE;
    if (VkResult r = vkAllocateMemory(device.device(), &allocate, nullptr, &memory); r != VK_SUCCESS) {
        return vk_error("vkAllocateMemory (DMA-BUF import)", r);  // the duplicate stays ours: closed here
    }
    (void)copy->release();  // VkImportMemoryFdInfoKHR: a successful import owns the fd
    return memory;
}

}  // namespace

void destroy_import(VkDevice device, const ImportedImage& imported) noexcept {
    if (imported.image != VK_NULL_HANDLE) vkDestroyImage(device, imported.image, nullptr);
    for (VkDeviceMemory memory : imported.memory) {
        if (memory != VK_NULL_HANDLE) vkFreeMemory(device, memory, nullptr);  // closes the imported fd
    }
}

Result<ImportedImage> import_dma_buf(const Device& device, VkImageUsageFlags usage, const DmaBufImage& image) {
    const ImageLayout& layout = image.layout();
    const FormatMapping& mapping = *find_mapping(layout.fourcc);  // check_importable() made sure
    const bool explicit_modifier = device.has_drm_format_modifiers();
    auto distinct = planes_in_distinct_buffers(image);
    if (!distinct) return std::move(distinct).error();
    const bool disjoint = *distinct;
    const VkImageTiling tiling = explicit_modifier ? VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT : VK_IMAGE_TILING_LINEAR;
    const VkImageCreateFlags flags = disjoint ? VK_IMAGE_CREATE_DISJOINT_BIT : 0;
    if (explicit_modifier) {
        if (auto listed = check_modifier(device, layout, mapping.format); !listed) return std::move(listed).error();
    }
    if (auto supported = check_format(device, layout, mapping.format, tiling, usage, flags); !supported) {
        return std::move(supported).error();
    }

    std::array<VkSubresourceLayout, max_planes> planes{};
    for (std::size_t i = 0; i < layout.plane_count; ++i) {
        const PlaneLayout& plane = layout.planes[drm_plane(mapping, i)];
        planes[i] = VkSubresourceLayout{plane.offset, 0, plane.stride, 0, 0};  // size 0: VUID-...-size-02267
    }
    const VkImageDrmFormatModifierExplicitCreateInfoEXT modifier_info{
        VK_STRUCTURE_TYPE_IMAGE_DRM_FORMAT_MODIFIER_EXPLICIT_CREATE_INFO_EXT, nullptr, layout.modifier,
        layout.plane_count, planes.data()};
    const VkExternalMemoryImageCreateInfo external{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
                                                   explicit_modifier ? &modifier_info : nullptr,
                                                   VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
    const VkImageCreateInfo info{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                                 &external,
                                 flags,
                                 VK_IMAGE_TYPE_2D,
                                 mapping.format,
                                 {layout.width, layout.height, 1},
                                 1,
                                 1,
                                 VK_SAMPLE_COUNT_1_BIT,
                                 tiling,
                                 usage,
                                 VK_SHARING_MODE_EXCLUSIVE,
                                 0,
                                 nullptr,
                                 VK_IMAGE_LAYOUT_UNDEFINED};
    ImportGuard guard(device.device());
    guard.imported = ImportedImage{VK_NULL_HANDLE, mapping.format, mapping.swizzle, tiling,
                                   {layout.width, layout.height}, disjoint, {}, 0};
    if (VkResult r = vkCreateImage(device.device(), &info, nullptr, &guard.imported.image); r != VK_SUCCESS) {
        guard.imported.image = VK_NULL_HANDLE;
        return vk_error(fmt::format("vkCreateImage ({} {}x{}, modifier {})", format_name(layout.fourcc), layout.width,
                                    layout.height, modifier_name(layout.modifier)),
                        r);
    }
    if (!explicit_modifier) {
        if (auto matches = check_linear_layout(device, guard.imported.image, layout); !matches) {
            return std::move(matches).error();
        }
    }

    const std::uint32_t memory_count = disjoint ? layout.plane_count : 1;
    std::array<VkBindImagePlaneMemoryInfo, max_planes> plane_binds{};
    std::array<VkBindImageMemoryInfo, max_planes> binds{};
    for (std::uint32_t i = 0; i < memory_count; ++i) {
        auto memory = import_memory(device, guard.imported.image, image.plane_fd(drm_plane(mapping, i)), disjoint, i);
        if (!memory) return std::move(memory).error();
        guard.imported.memory[i] = *memory;
        guard.imported.memory_count = i + 1;
        plane_binds[i] = {VK_STRUCTURE_TYPE_BIND_IMAGE_PLANE_MEMORY_INFO, nullptr, memory_plane_aspect(i)};
        binds[i] = {VK_STRUCTURE_TYPE_BIND_IMAGE_MEMORY_INFO, disjoint ? &plane_binds[i] : nullptr,
                    guard.imported.image, *memory, 0};
    }
    if (VkResult r = vkBindImageMemory2(device.device(), memory_count, binds.data()); r != VK_SUCCESS) {
        return vk_error("vkBindImageMemory2", r);
    }
    return guard.hand_out();
}

}  // namespace texshare::vulkan::detail
