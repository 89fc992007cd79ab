// Test support: a DMA-BUF imported into Vulkan as a LINEAR VkImage and read back to the CPU,
// the proof that a GPU API sees exactly the pixels a DMA-BUF holds (a successful import
// proves nothing: read back). For texshare's tests, tools and benchmark; texshare::vulkan
// will do the import for real.
//
// The import follows the Vulkan spec's external-memory rules (chapter "Memory Allocation",
// VK_EXT_external_memory_dma_buf): the image is created with VkExternalMemoryImageCreateInfo
// (DMA_BUF), the memory imported with VkImportMemoryFdInfoKHR from a duplicate of the plane's
// fd (a successful import owns the fd it was given), dedicated to the image, its type one of
// vkGetMemoryFdPropertiesKHR's. With VK_EXT_image_drm_format_modifier the image is
// DRM_FORMAT_MOD_LINEAR with an explicit row pitch and offset (the DMA-BUF's own); without
// it, VK_IMAGE_TILING_LINEAR, and the driver's row pitch must equal the image's stride.
// Each read_pixels() acquires the image from the producer's queue family (FOREIGN or
// EXTERNAL), so later CPU writes the producer ended with DMA_BUF_IOCTL_SYNC are seen
// without a new import.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <vector>

#include "support/vulkan_context.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"

namespace texshare::testing {

// The Vulkan format of a single-plane 32-bit DRM format whose bytes Vulkan copies as they
// are: ARGB8888/XRGB8888 -> B8G8R8A8_UNORM, ABGR8888/XBGR8888 -> R8G8B8A8_UNORM;
// VK_FORMAT_UNDEFINED for any other.
VkFormat vulkan_format_of(std::uint32_t fourcc) noexcept;

class VulkanImportedImage {
public:
    // Imports plane 0 of `image` (a dma_buf image of a format vulkan_format_of() knows; the
    // image's fds stay the caller's). Errc::unsupported for another backing or format, a
    // driver that refuses the format for DMA-BUF import, or (without the modifier
    // extension) a driver row pitch other than the image's stride; Errc::library naming
    // the Vulkan call and its VkResult otherwise.
    static Result<VulkanImportedImage> import(const VulkanContext& context, const DmaBufImage& image);

    VulkanImportedImage(VulkanImportedImage&& other) noexcept;
    VulkanImportedImage& operator=(VulkanImportedImage&& other) noexcept;
    VulkanImportedImage(const VulkanImportedImage&) = delete;
    VulkanImportedImage& operator=(const VulkanImportedImage&) = delete;
    ~VulkanImportedImage();

    // Every pixel, copied by the device into a host-visible buffer now: width * 4 bytes per
    // row, rows top to bottom, the bytes as memory holds them.
    Result<std::vector<std::uint8_t>> read_pixels() const;

    // Whether the import gave the row pitch explicitly (VK_EXT_image_drm_format_modifier).
    bool explicit_row_pitch() const noexcept { return explicit_row_pitch_; }
    VkImage image() const noexcept { return image_; }

private:
    explicit VulkanImportedImage(const VulkanContext& context) : context_(&context) {}
    void destroy() noexcept;

    const VulkanContext* context_ = nullptr;
    VkImage image_ = VK_NULL_HANDLE;
    VkDeviceMemory memory_ = VK_NULL_HANDLE;
    std::uint32_t width_ = 0;
    std::uint32_t height_ = 0;
    bool explicit_row_pitch_ = false;
};

}  // namespace texshare::testing
