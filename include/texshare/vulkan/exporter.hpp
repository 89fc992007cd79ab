// texshare::vulkan::Exporter: VkImages this process renders into, out of the process as
// DmaBufImages.
//
// Use an Exporter in the process that renders with Vulkan and shares its images through the
// frame protocol: allocate() makes a VkImage bound to exportable memory and gives both the
// Vulkan objects (ExportedImage, which destroys them) and a DmaBufImage of the same memory
// (dma_buf, or opaque_fd where DMA-BUF export is impossible; FrameSender::add_image takes it). The application renders into the VkImage and,
// before each present, hands it to the consumer with a queue family release to
// VK_QUEUE_FAMILY_FOREIGN_EXT (VK_EXT_queue_family_foreign) or VK_QUEUE_FAMILY_EXTERNAL in
// VK_IMAGE_LAYOUT_GENERAL (spec, "Queue Family Ownership Transfer"), and acquires it back the
// same way before rendering again; fence.hpp makes the semaphores for both.
//
// How (Vulkan spec, VK_EXT_external_memory_dma_buf and VK_EXT_image_drm_format_modifier):
//   - with the modifier extension: VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT with the caller's
//     candidate modifiers (VkImageDrmFormatModifierListCreateInfoEXT) that the driver lists
//     for the format and can export as a DMA-BUF for the usage; the driver picks one, read
//     back with vkGetImageDrmFormatModifierPropertiesEXT, and each memory plane's offset and
//     stride with vkGetImageSubresourceLayout (VK_IMAGE_ASPECT_MEMORY_PLANE_i_BIT_EXT);
//   - without it: VK_IMAGE_TILING_LINEAR, only when LINEAR is a candidate, its layout from
//     vkGetImageSubresourceLayout (VK_IMAGE_ASPECT_COLOR_BIT).
// The memory is a dedicated allocation (VkMemoryDedicatedAllocateInfo) exported with
// VkExportMemoryAllocateInfo(DMA_BUF); vkGetMemoryFdKHR gives a new fd the DmaBufImage owns.
//
// Without VK_EXT_external_memory_dma_buf (NVIDIA's driver), or where the driver cannot export
// the format and usage as a DMA-BUF, the image is exported as OPAQUE_FD memory instead
// (Options::handle chooses; ExportHandle::automatic prefers DMA-BUF): VK_IMAGE_TILING_OPTIMAL,
// checked exportable with vkGetPhysicalDeviceImageFormatProperties2
// (VkPhysicalDeviceExternalImageFormatInfo OPAQUE_FD), a dedicated allocation where
// VkMemoryDedicatedRequirements requires or prefers one (or the handle type is
// dedicated-only), and an opaque_fd DmaBufImage carrying the identity an importer needs
// (OpaqueMemory: the device's UUIDs, allocationSize, memoryTypeIndex, dedication, usage).
// Its usage is Options::usage plus SAMPLED and TRANSFER_SRC, what an Importer asks for by
// default: the importer must create its image with the exporter's usage exactly, so it
// can only ask for usage the exporter chose.
// Only the same driver on the same device imports it (vulkan::Importer, which creates its
// image by the same rule: opaque_memory.hpp); it cannot be mapped, nor imported by EGL.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <vulkan/vulkan.h>

#include <cstdint>
#include <span>
#include <vector>

#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"
#include "texshare/vulkan/device.hpp"

namespace texshare::vulkan {

// The application's side of an exported image: the VkImage and its memory, destroyed with
// this object (the application must have finished using them on the GPU first). The
// DmaBufImage handed out with it keeps the memory alive for peers on its own: a DMA-BUF
// lives as long as any fd of it does.
class ExportedImage {
public:
    ExportedImage() = default;
    ExportedImage(ExportedImage&& other) noexcept { *this = std::move(other); }
    ExportedImage& operator=(ExportedImage&& other) noexcept;
    ExportedImage(const ExportedImage&) = delete;
    ExportedImage& operator=(const ExportedImage&) = delete;
    ~ExportedImage() { reset(); }

    void reset() noexcept;  // destroys the image and frees its memory now

    VkImage image() const noexcept { return image_; }
    VkDeviceMemory memory() const noexcept { return memory_; }
    VkFormat format() const noexcept { return format_; }
    VkExtent2D extent() const noexcept { return extent_; }
    VkImageTiling tiling() const noexcept { return tiling_; }
    // DRM_FORMAT_MOD_LINEAR without the extension; DRM_FORMAT_MOD_INVALID for OPAQUE_FD.
    std::uint64_t modifier() const noexcept { return modifier_; }
    // How the memory was exported: DMA_BUF_BIT_EXT or OPAQUE_FD_BIT.
    VkExternalMemoryHandleTypeFlagBits handle_type() const noexcept { return handle_type_; }

private:
    friend class Exporter;
    VkDevice device_ = VK_NULL_HANDLE;
    VkImage image_ = VK_NULL_HANDLE;
    VkDeviceMemory memory_ = VK_NULL_HANDLE;
    VkFormat format_ = VK_FORMAT_UNDEFINED;
    VkExtent2D extent_{};
    VkImageTiling tiling_ = VK_IMAGE_TILING_LINEAR;
    std::uint64_t modifier_ = 0;
    VkExternalMemoryHandleTypeFlagBits handle_type_ = VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT;
};

// Which external memory an Exporter makes.
enum class ExportHandle {
    // DMA_BUF where the device has it and can export the format and usage so (with any
    // modifier it lists), else OPAQUE_FD; candidates it merely cannot export are refused.
    automatic,
    dma_buf,    // DMA_BUF only (Errc::unsupported where the driver cannot)
    opaque_fd,  // OPAQUE_FD always (lavapipe has both: tests take this path there)
};

class Exporter {
public:
    struct Options {
        // What the application does with its images: render (attachment), clear or copy into
        // them, and copy out of them.
        VkImageUsageFlags usage = VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT |
                                  VK_IMAGE_USAGE_TRANSFER_SRC_BIT;
        ExportHandle handle = ExportHandle::automatic;
    };

    // Checks once what export needs, on the application's handles: what Device::create
    // checks (VK_KHR_external_memory_fd; its errors), VK_EXT_external_memory_dma_buf where
    // Options::handle is dma_buf (Errc::unsupported naming it), and loads vkGetMemoryFdKHR
    // (Errc::library where the loader does not give it). Errc::invalid_argument for a usage
    // of 0.
    static Result<Exporter> create(const DeviceHandles& handles, Options options);
    static Result<Exporter> create(const DeviceHandles& handles) { return create(handles, Options{}); }
    // The same over a Device the application already made (it has the extensions; `device`
    // is copied and its VkDevice must outlive the Exporter and every ExportedImage).
    static Result<Exporter> create(const Device& device, Options options);

    // A width x height image of `fourcc` (a single-plane RGB format whose bytes Vulkan
    // writes as the fourcc says: format.hpp's mappings without a channel swizzle). As a
    // DMA-BUF: with one of `modifiers` (without the modifier extension only LINEAR is
    // possible), a dma_buf DmaBufImage that owns its fds (one per memory plane; duplicates of
    // one fd where the modifier has several). As OPAQUE_FD (see the top of this file;
    // `modifiers` unused): an opaque_fd DmaBufImage owning the one fd. The image starts in
    // VK_IMAGE_LAYOUT_UNDEFINED.
    // Errors: Errc::invalid_argument for a zero or too large size (beyond the driver's
    // maxExtent) or no modifiers; Errc::unsupported for a format texshare cannot export,
    // candidates the driver cannot export as a DMA-BUF for the usage (naming the format,
    // each modifier and why), LINEAR missing without the modifier extension, OPAQUE_FD not
    // exportable for the format and usage, or a usage beyond Vulkan 1.0's eight bits for
    // OPAQUE_FD (ExportHandle::automatic names both refusals where neither works);
    // Errc::library naming the Vulkan call and VkResult otherwise; Errc::invalid_layout
    // where the driver's layout does not fit texshare's (offset or stride beyond 32 bits, a
    // DMA-BUF smaller than the layout needs). On error every object made is destroyed and
    // every fd closed.
    struct Exported {
        ExportedImage vulkan;
        DmaBufImage image;
    };
    Result<Exported> allocate(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc,
                              std::span<const std::uint64_t> modifiers) const;
    Result<Exported> allocate(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc) const;

    // The candidates among `modifiers` the driver can export for `fourcc` and the usage, in
    // the given order (without the modifier extension: LINEAR if it is one and LINEAR
    // tiling can be exported). Errc::unsupported as allocate() where none is.
    Result<std::vector<std::uint64_t>> exportable_modifiers(std::uint32_t fourcc,
                                                           std::span<const std::uint64_t> modifiers) const;

    const Device& device() const noexcept { return device_; }

private:
    Exporter(const Device& device, Options options) : device_(device), options_(options) {}
    Result<Exported> allocate_dma_buf(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc,
                                      std::vector<std::uint64_t> candidates) const;
    Result<Exported> allocate_opaque_fd(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc) const;
    bool dma_buf_exportable_at_all(std::uint32_t fourcc) const;  // with any modifier the driver lists

    Device device_;
    Options options_;
    PFN_vkGetMemoryFdKHR get_memory_fd_ = nullptr;
};

}  // namespace texshare::vulkan
