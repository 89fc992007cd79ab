// texshare::vulkan::Importer: DMA-BUF images in, VkImage + VkDeviceMemory out.
//
// Use an Importer in the process that samples or copies, with Vulkan, images another process
// allocated: it turns each received DmaBufImage into a VkImage bound to imported memory once,
// keeps it by the image's id, and destroys both when the image is released. To keep it in
// step with a frame endpoint, use ImportListener (import_listener.hpp).
//
// How an image is imported (Vulkan spec, VK_EXT_external_memory_dma_buf and
// VK_EXT_image_drm_format_modifier):
//   - with the modifier extension: VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT with the image's
//     modifier and every plane's offset and stride given explicitly
//     (VkImageDrmFormatModifierExplicitCreateInfoEXT); where the planes sit in distinct
//     buffers (different DMA-BUFs, told apart by their inodes), the image is created
//     VK_IMAGE_CREATE_DISJOINT_BIT and each plane gets the memory of its own buffer;
//   - without it: LINEAR single-plane images only, VK_IMAGE_TILING_LINEAR, and the driver's
//     row pitch and offset for that image (vkGetImageSubresourceLayout) must equal the
//     DMA-BUF's: otherwise the import is refused, naming both, since the pixels would be
//     read with the wrong stride.
// An opaque_fd image (a driver's OPAQUE_FD memory, opaque_memory.hpp) imports only on the
// device and driver that exported it (check_importable compares the UUIDs first): the image is
// created exactly as the exporter created it (VK_IMAGE_TILING_OPTIMAL, the exporter's usage
// from OpaqueMemory::image_usage, flags 0; VUID-VkMemoryDedicatedAllocateInfo-image-01878),
// vkGetPhysicalDeviceImageFormatProperties2 must say OPAQUE_FD import works for it, the
// image's memory requirements must fit the exported allocation (size, memory type), and the
// memory is imported with the exported allocationSize and memoryTypeIndex
// (VUID-VkMemoryAllocateInfo-allocationSize-01742), dedicated where it was exported so.
// Options::usage must be within the exporter's usage.
// Memory types come from vkGetMemoryFdPropertiesKHR; each import takes a duplicate of the
// plane's fd (a successful vkAllocateMemory owns it and closes it at vkFreeMemory), so the
// DmaBufImage's fds stay the caller's and the image may be dropped once imported.
//
// The image is created with initialLayout UNDEFINED. Memory another process writes is
// owned by VK_QUEUE_FAMILY_FOREIGN_EXT (VK_EXT_queue_family_foreign) or
// VK_QUEUE_FAMILY_EXTERNAL: acquire the image from it with a barrier before each read (spec,
// "Queue Family Ownership Transfer"); texshare's tests do so from VK_IMAGE_LAYOUT_GENERAL,
// which keeps the contents, and see every later write of the producer without re-import.
// An Importer is used from one thread at a time (like the VkDevice's own objects it makes).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <vulkan/vulkan.h>

#include <array>
#include <cstdint>
#include <map>

#include "texshare/color_info.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"
#include "texshare/vulkan/device.hpp"

namespace texshare::vulkan {

struct ImportedImage {
    VkImage image = VK_NULL_HANDLE;
    VkFormat format = VK_FORMAT_UNDEFINED;
    VkComponentMapping swizzle{};  // for image views: format.hpp's mapping of the fourcc
    VkImageTiling tiling = VK_IMAGE_TILING_LINEAR;  // or VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT
    VkExtent2D extent{};
    bool disjoint = false;
    // One imported memory per buffer (per plane where disjoint); the rest VK_NULL_HANDLE.
    std::array<VkDeviceMemory, max_planes> memory{};
    std::uint32_t memory_count = 0;
    // The image's colour as its producer sent it (DmaBufImage::color()); for a YUV image,
    // ycbcr_conversion_info(color, fourcc) (vulkan/ycbcr.hpp) gives the sampler's conversion.
    ColorInfo color{};
};

// The checks import() makes before any Vulkan call (for `has_drm_format_modifiers`, i.e. a
// Device with VK_EXT_image_drm_format_modifier): a dma_buf or opaque_fd image
// (Errc::unsupported for cpu_only and shared_memory), an fd in every plane
// (Errc::invalid_argument), a format with a Vulkan mapping (Errc::unsupported). For dma_buf:
// an explicit modifier (INVALID is refused: Errc::unsupported, Vulkan imports only explicit
// ones); without the extension, LINEAR and a single plane (Errc::unsupported naming the
// modifier or plane count and the extension). For opaque_fd: check_opaque_layout's.
Result<void> check_importable(std::uint64_t image_id, const DmaBufImage& image, bool has_drm_format_modifiers);

// The same, and what `device` tells, for an import with `usage`: a dma_buf image needs
// has_dma_buf() (Errc::unsupported naming VK_EXT_external_memory_dma_buf); an opaque_fd
// image needs the device's deviceUUID and driverUUID to equal its OpaqueMemory's
// (Errc::unsupported naming all four in hex and which differs) and `usage` within the
// exporter's image_usage (Errc::unsupported naming both).
Result<void> check_importable(std::uint64_t image_id, const DmaBufImage& image, const Device& device,
                              VkImageUsageFlags usage);

class Importer {
public:
    struct Options {
        // What the application does with imported images. TRANSFER_SRC lets it copy them.
        VkImageUsageFlags usage = VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT;
    };

    // `device` is copied; its VkDevice must outlive the Importer. Errc::invalid_argument for
    // a usage of 0.
    static Result<Importer> create(const Device& device, Options options);
    static Result<Importer> create(const Device& device) { return create(device, Options{}); }

    Importer(Importer&& other) noexcept;
    Importer& operator=(Importer&& other) noexcept;
    Importer(const Importer&) = delete;
    Importer& operator=(const Importer&) = delete;
    ~Importer();  // releases every import

    const Device& device() const noexcept { return device_; }

    // The image imported and kept under image_id until release(). Errors: check_importable's;
    // Errc::invalid_argument for an id already in use; Errc::unsupported where the driver
    // cannot import the format and modifier as a DMA-BUF for Options::usage (naming the
    // VkResult), lists another plane count for the modifier, gives a row pitch or offset
    // other than the image's (without the modifier extension), needs more bytes than the
    // DMA-BUF has, or has no memory type for the fd; Errc::system for fstat/lseek/dup
    // failures; Errc::library naming the Vulkan call and VkResult otherwise. On error
    // nothing is kept: every object made is destroyed and every duplicated fd closed.
    Result<ImportedImage> import(std::uint64_t image_id, const DmaBufImage& image);
    // Destroys the image and frees its memory (which closes the imported fds);
    // Errc::invalid_argument for an unknown id. The application must have finished using it
    // on the GPU (vkQueueWaitIdle or a fence).
    Result<void> release(std::uint64_t image_id);
    void release_all() noexcept;
    // Moves an import to another id (FrameReceiver keeps a dead producer's last frame under
    // retained_image_id). Errc::invalid_argument if `from` is unknown or `to` is taken.
    Result<void> rename(std::uint64_t from, std::uint64_t to);

    const ImportedImage* find(std::uint64_t image_id) const;
    std::size_t size() const noexcept { return imports_.size(); }

private:
    Importer(const Device& device, Options options) : device_(device), options_(options) {}
    void destroy(const ImportedImage& imported) const noexcept;

    Device device_;
    Options options_;
    std::map<std::uint64_t, ImportedImage> imports_;
};

}  // namespace texshare::vulkan
