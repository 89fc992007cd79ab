// One DMA-BUF image imported into Vulkan, without the cache (Importer keeps these by id).
#pragma once

#include "texshare/vulkan/importer.hpp"

namespace texshare::vulkan::detail {

// See Importer::import(); the image has passed check_importable().
Result<ImportedImage> import_dma_buf(const Device& device, VkImageUsageFlags usage, const DmaBufImage& image);

// An opaque_fd image (vkCreateImage with the exporter's usage, OPTIMAL tiling, the memory
// imported with its OpaqueMemory size, type and dedication); it has passed check_importable()
// with the Device, UUIDs included. The fd is duplicated; the caller's stays its own.
Result<ImportedImage> import_opaque_fd(const Device& device, const DmaBufImage& image);

// Destroys the image and frees its memory; null handles are skipped.
void destroy_import(VkDevice device, const ImportedImage& imported) noexcept;

}  // namespace texshare::vulkan::detail
