// Test support: one Vulkan instance, device and queue that can import DMA-BUFs, for texshare's
// own tests, tools and benchmark (not part of texshare's API; texshare::vulkan will be).
//
// Use VulkanContext::create() in the process (a forked child in the VM lane) that imports
// images with Vulkan: it picks the first physical device that has
// VK_KHR_external_memory_fd and VK_EXT_external_memory_dma_buf (Mesa's lavapipe in the 6.12
// guest; on a machine without a DRM device Mesa 25's lavapipe lists these two and no more),
// and enables VK_EXT_image_drm_format_modifier and VK_EXT_queue_family_foreign where the
// device has them (lavapipe with a DRM device does). Vulkan 1.2 or newer is required: the
// modifier extension depends on what 1.2 made core (image format lists, sampler Y'CbCr).
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "texshare/result.hpp"

namespace texshare::testing {

// "VK_ERROR_OUT_OF_HOST_MEMORY (-1)": a VkResult for messages.
std::string vk_result_name(VkResult result);

class VulkanContext {
public:
    // Errc::unsupported naming what is missing: no Vulkan loader or ICD
    // (VK_ERROR_INCOMPATIBLE_DRIVER), an instance below 1.2, no device with DMA-BUF import
    // (the message lists each device and its version); Errc::library naming the call and
    // its VkResult for any other failure.
    static Result<VulkanContext> create();

    VulkanContext(VulkanContext&& other) noexcept;
    VulkanContext& operator=(VulkanContext&& other) noexcept;
    VulkanContext(const VulkanContext&) = delete;
    VulkanContext& operator=(const VulkanContext&) = delete;
    ~VulkanContext();

    VkInstance instance() const noexcept { return instance_; }
    VkPhysicalDevice physical_device() const noexcept { return physical_; }
    VkDevice device() const noexcept { return device_; }
    VkQueue queue() const noexcept { return queue_; }
    std::uint32_t queue_family() const noexcept { return queue_family_; }
    const std::string& device_name() const noexcept { return device_name_; }  // "llvmpipe (LLVM 15.0.6, 256 bits)"
    // Whether the device had this extension and it was enabled.
    bool enabled(std::string_view extension) const noexcept;
    bool has_drm_format_modifiers() const noexcept { return enabled(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME); }
    // The queue family an external producer's accesses come from: FOREIGN where the device
    // has VK_EXT_queue_family_foreign (a non-Vulkan producer), EXTERNAL otherwise.
    std::uint32_t producer_queue_family() const noexcept;

    // The index of a memory type in `type_bits` with every one of `properties`;
    // Errc::unsupported naming both where there is none.
    Result<std::uint32_t> memory_type(std::uint32_t type_bits, VkMemoryPropertyFlags properties) const;

    // Records `record` into a one-time command buffer, submits it and waits (with a fence,
    // at most 10 s: Errc::timed_out). Errc::library naming the call and VkResult otherwise.
    Result<void> submit_and_wait(const std::function<void(VkCommandBuffer)>& record) const;

    PFN_vkGetMemoryFdPropertiesKHR get_memory_fd_properties = nullptr;
    PFN_vkGetImageDrmFormatModifierPropertiesEXT get_image_drm_format_modifier_properties = nullptr;

private:
    VulkanContext() = default;
    void destroy() noexcept;

    VkInstance instance_ = VK_NULL_HANDLE;
    VkPhysicalDevice physical_ = VK_NULL_HANDLE;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    std::uint32_t queue_family_ = 0;
    std::string device_name_;
    std::vector<std::string> extensions_;
};

}  // namespace texshare::testing
