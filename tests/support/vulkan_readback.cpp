#include "support/vulkan_readback.hpp"

#include <drm_fourcc.h>

#include <cstring>
#include <utility>

#include "texshare/detail/fd_probe.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare::testing {
namespace {

Error vk_error(std::string_view call, VkResult result) {
    return make_error(Errc::library, "{} failed: {}", call, vk_result_name(result));
}

// What the image is created with: LINEAR through the modifier extension (explicit pitch) or plain LINEAR tiling.
struct ImageChain {
    VkSubresourceLayout plane{};
    VkImageDrmFormatModifierExplicitCreateInfoEXT explicit_modifier{};
    VkExternalMemoryImageCreateInfo external{};
    VkImageCreateInfo info{};
};

void fill_chain(ImageChain& chain, const ImageLayout& layout, VkFormat format, bool explicit_pitch) {
    chain.plane = VkSubresourceLayout{layout.planes[0].offset, 0, layout.planes[0].stride, 0, 0};
    chain.explicit_modifier = VkImageDrmFormatModifierExplicitCreateInfoEXT{
        VK_STRUCTURE_TYPE_IMAGE_DRM_FORMAT_MODIFIER_EXPLICIT_CREATE_INFO_EXT, nullptr, DRM_FORMAT_MOD_LINEAR, 1,
        &chain.plane};
    chain.external = VkExternalMemoryImageCreateInfo{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
                                                     explicit_pitch ? &chain.explicit_modifier : nullptr,
                                                     VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
    chain.info = VkImageCreateInfo{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                                   &chain.external,
                                   0,
                                   VK_IMAGE_TYPE_2D,
                                   format,
                                   {layout.width, layout.height, 1},
                                   1,
                                   1,
                                   VK_SAMPLE_COUNT_1_BIT,
                                   explicit_pitch ? VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT : VK_IMAGE_TILING_LINEAR,
                                   VK_IMAGE_USAGE_TRANSFER_SRC_BIT,
                                   VK_SHARING_MODE_EXCLUSIVE,
                                   0,
                                   nullptr,
                                   VK_IMAGE_LAYOUT_UNDEFINED};  // the spec's rule for imported images
}

// Whether the driver imports `format` from a DMA-BUF with this tiling and usage.
Result<void> check_importable(const VulkanContext& context, const ImageChain& chain) {
    VkPhysicalDeviceImageDrmFormatModifierInfoEXT modifier{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_DRM_FORMAT_MODIFIER_INFO_EXT, nullptr, DRM_FORMAT_MOD_LINEAR,
        VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
    const bool explicit_pitch = chain.info.tiling == VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT;
    VkPhysicalDeviceExternalImageFormatInfo external{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_IMAGE_FORMAT_INFO,
                                                     explicit_pitch ? &modifier : nullptr,
                                                     VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
    const VkPhysicalDeviceImageFormatInfo2 query{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_FORMAT_INFO_2, &external,
                                                 chain.info.format, chain.info.imageType, chain.info.tiling,
                                                 chain.info.usage, chain.info.flags};
    VkExternalImageFormatProperties external_properties{VK_STRUCTURE_TYPE_EXTERNAL_IMAGE_FORMAT_PROPERTIES, nullptr, {}};
    VkImageFormatProperties2 properties{VK_STRUCTURE_TYPE_IMAGE_FORMAT_PROPERTIES_2, &external_properties, {}};
    const VkResult r = vkGetPhysicalDeviceImageFormatProperties2(context.physical_device(), &query, &properties);
    if (r != VK_SUCCESS) {
        return make_error(Errc::unsupported, "{} does not import VkFormat {} as a {} DMA-BUF image: {}",
                          context.device_name(), static_cast<int>(chain.info.format),
                          explicit_pitch ? "DRM_FORMAT_MOD_LINEAR" : "TILING_LINEAR", vk_result_name(r));
    }
    if ((external_properties.externalMemoryProperties.externalMemoryFeatures &
         VK_EXTERNAL_MEMORY_FEATURE_IMPORTABLE_BIT) == 0) {
        return make_error(Errc::unsupported, "{}: VkFormat {} DMA-BUF images are not importable",
                          context.device_name(), static_cast<int>(chain.info.format));
    }
    return {};
}

}  // namespace

VkFormat vulkan_format_of(std::uint32_t fourcc) noexcept {
    switch (fourcc) {
        case DRM_FORMAT_ARGB8888:
        case DRM_FORMAT_XRGB8888:
            return VK_FORMAT_B8G8R8A8_UNORM;
        case DRM_FORMAT_ABGR8888:
        case DRM_FORMAT_XBGR8888:
            return VK_FORMAT_R8G8B8A8_UNORM;
        default:
            return VK_FORMAT_UNDEFINED;
    }
}

Result<VulkanImportedImage> VulkanImportedImage::import(const VulkanContext& context, const DmaBufImage& image) {
    const ImageLayout& layout = image.layout();
    const VkFormat format = vulkan_format_of(layout.fourcc);
    if (image.backing() != Backing::dma_buf || format == VK_FORMAT_UNDEFINED || layout.plane_count != 1 ||
        layout.modifier != DRM_FORMAT_MOD_LINEAR) {
        return make_error(Errc::unsupported,
                          "Vulkan readback imports LINEAR single-plane 32-bit DMA-BUF images, got a {} {} image "
                          "with modifier {}",
                          to_string(image.backing()), format_name(layout.fourcc), modifier_name(layout.modifier));
    }
    const VkDevice device = context.device();
    VulkanImportedImage imported(context);
    imported.width_ = layout.width;
    imported.height_ = layout.height;
    imported.explicit_row_pitch_ = context.has_drm_format_modifiers();
    ImageChain chain;
    fill_chain(chain, layout, format, imported.explicit_row_pitch_);
    if (auto ok = check_importable(context, chain); !ok) return std::move(ok).error();
    if (VkResult r = vkCreateImage(device, &chain.info, nullptr, &imported.image_); r != VK_SUCCESS) {
        imported.image_ = VK_NULL_HANDLE;
        return vk_error("vkCreateImage (DMA-BUF, LINEAR)", r);
    }
    if (!imported.explicit_row_pitch_) {
        const VkImageSubresource color{VK_IMAGE_ASPECT_COLOR_BIT, 0, 0};
        VkSubresourceLayout driver{};
        vkGetImageSubresourceLayout(device, imported.image_, &color, &driver);
        if (driver.rowPitch != layout.planes[0].stride || driver.offset != 0 || layout.planes[0].offset != 0) {
            return make_error(Errc::unsupported,
                              "{} lays out a {}-pixel LINEAR row in {} bytes at offset {}, the image has stride {} at "
                              "offset {}, and without VK_EXT_image_drm_format_modifier the pitch cannot be given",
                              context.device_name(), layout.width, driver.rowPitch, driver.offset,
                              layout.planes[0].stride, layout.planes[0].offset);
        }
    }
    VkMemoryRequirements requirements{};
    vkGetImageMemoryRequirements(device, imported.image_, &requirements);
    auto size = detail::dma_buf_size(image.plane_fd(0));
    if (!size) return std::move(size).error();
    if (*size < requirements.size) {
        return make_error(Errc::unsupported, "{} needs {} bytes for the image, the DMA-BUF holds {}",
                          context.device_name(), requirements.size, *size);
    }
    auto fd = UniqueFd::dup(image.plane_fd(0));
    if (!fd) return std::move(fd).error();
    VkMemoryFdPropertiesKHR fd_properties{VK_STRUCTURE_TYPE_MEMORY_FD_PROPERTIES_KHR, nullptr, 0};
    if (VkResult r = context.get_memory_fd_properties(device, VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT, fd->get(),
                                                      &fd_properties);
        r != VK_SUCCESS) {
        return vk_error("vkGetMemoryFdPropertiesKHR (DMA-BUF)", r);
    }
    auto type = context.memory_type(requirements.memoryTypeBits & fd_properties.memoryTypeBits, 0);
    if (!type) return std::move(type).error();
    const VkMemoryDedicatedAllocateInfo dedicated{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO, nullptr,
                                                  imported.image_, VK_NULL_HANDLE};
    const VkImportMemoryFdInfoKHR import_info{VK_STRUCTURE_TYPE_IMPORT_MEMORY_FD_INFO_KHR, &dedicated,
                                              VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT, fd->get()};
    const VkMemoryAllocateInfo allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, &import_info, requirements.size, *type};
    if (VkResult r = vkAllocateMemory(device, &allocate, nullptr, &imported.memory_); r != VK_SUCCESS) {
        imported.memory_ = VK_NULL_HANDLE;
        return vk_error("vkAllocateMemory (import of a DMA-BUF)", r);  // the fd stays ours: closed here
    }
    (void)fd->release();  // a successful import owns the fd (VkImportMemoryFdInfoKHR)
    if (VkResult r = vkBindImageMemory(device, imported.image_, imported.memory_, 0); r != VK_SUCCESS) {
        return vk_error("vkBindImageMemory", r);
    }
    return imported;
}

VulkanImportedImage::VulkanImportedImage(VulkanImportedImage&& other) noexcept { *this = std::move(other); }

VulkanImportedImage& VulkanImportedImage::operator=(VulkanImportedImage&& other) noexcept {
    if (this != &other) {
        destroy();
        context_ = other.context_;
        image_ = std::exchange(other.image_, VK_NULL_HANDLE);
        memory_ = std::exchange(other.memory_, VK_NULL_HANDLE);
        width_ = other.width_;
        height_ = other.height_;
        explicit_row_pitch_ = other.explicit_row_pitch_;
    }
    return *this;
}

VulkanImportedImage::~VulkanImportedImage() { destroy(); }

void VulkanImportedImage::destroy() noexcept {
    if (context_ == nullptr) return;
    if (image_ != VK_NULL_HANDLE) vkDestroyImage(context_->device(), image_, nullptr);
    if (memory_ != VK_NULL_HANDLE) vkFreeMemory(context_->device(), memory_, nullptr);  // closes the imported fd
    image_ = VK_NULL_HANDLE;
    memory_ = VK_NULL_HANDLE;
}

Result<std::vector<std::uint8_t>> VulkanImportedImage::read_pixels() const {
    const VkDevice device = context_->device();
    const VkDeviceSize bytes = VkDeviceSize{width_} * height_ * 4;
    const VkBufferCreateInfo buffer_info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, nullptr, 0, bytes,
                                         VK_BUFFER_USAGE_TRANSFER_DST_BIT, VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    const auto cleanup = [&] {
        if (buffer != VK_NULL_HANDLE) vkDestroyBuffer(device, buffer, nullptr);
        if (memory != VK_NULL_HANDLE) vkFreeMemory(device, memory, nullptr);
    };
    if (VkResult r = vkCreateBuffer(device, &buffer_info, nullptr, &buffer); r != VK_SUCCESS) {
        buffer = VK_NULL_HANDLE;
        return vk_error("vkCreateBuffer", r);
    }
    VkMemoryRequirements requirements{};
    vkGetBufferMemoryRequirements(device, buffer, &requirements);
    auto type = context_->memory_type(requirements.memoryTypeBits,
                                      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (!type) {
        cleanup();
        return std::move(type).error();
    }
    const VkMemoryAllocateInfo allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, requirements.size, *type};
    if (VkResult r = vkAllocateMemory(device, &allocate, nullptr, &memory); r != VK_SUCCESS) {
        memory = VK_NULL_HANDLE;
        cleanup();
        return vk_error("vkAllocateMemory (readback buffer)", r);
    }
    vkBindBufferMemory(device, buffer, memory, 0);
    const std::uint32_t producer = context_->producer_queue_family();
    const std::uint32_t ours = context_->queue_family();
    const VkImageSubresourceRange color{VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1};
    auto copied = context_->submit_and_wait([&](VkCommandBuffer commands) {
        // Acquire from the producer (a CPU or another device): its writes become visible here.
        const VkImageMemoryBarrier acquire{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, nullptr, 0,
                                           VK_ACCESS_TRANSFER_READ_BIT, VK_IMAGE_LAYOUT_GENERAL,
                                           VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, producer, ours, image_, color};
        vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 0,
                             nullptr, 0, nullptr, 1, &acquire);
        const VkBufferImageCopy region{0, 0, 0, {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1}, {0, 0, 0}, {width_, height_, 1}};
        vkCmdCopyImageToBuffer(commands, image_, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, buffer, 1, &region);
        // Give the image back to the producer for its next write, and make the copy host-readable.
        const VkImageMemoryBarrier release{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, nullptr,
                                           VK_ACCESS_TRANSFER_READ_BIT, 0, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
                                           VK_IMAGE_LAYOUT_GENERAL, ours, producer, image_, color};
        const VkBufferMemoryBarrier to_host{VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER, nullptr,
                                            VK_ACCESS_TRANSFER_WRITE_BIT, VK_ACCESS_HOST_READ_BIT,
                                            VK_QUEUE_FAMILY_IGNORED, VK_QUEUE_FAMILY_IGNORED, buffer, 0, bytes};
        vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_TRANSFER_BIT,
                             VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 0, nullptr, 1,
                             &to_host, 1, &release);
    });
    if (!copied) {
        cleanup();
        return std::move(copied).error();
    }
    void* mapped = nullptr;
    if (VkResult r = vkMapMemory(device, memory, 0, bytes, 0, &mapped); r != VK_SUCCESS) {
        cleanup();
        return vk_error("vkMapMemory (readback buffer)", r);
    }
    std::vector<std::uint8_t> pixels(bytes);
    std::memcpy(pixels.data(), mapped, bytes);
    vkUnmapMemory(device, memory);
    cleanup();
    return pixels;
}

}  // namespace texshare::testing
