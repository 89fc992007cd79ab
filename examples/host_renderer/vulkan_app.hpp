// The example's Vulkan side (--api=vulkan), made the way an application makes it: its own
// instance, device and queue, which texshare::vulkan only borrows (DeviceHandles), with
// command buffers and host-visible buffers from them.
//
// Both processes use it: the renderer exports images (vulkan::Exporter) and draws into them
// with a compute shader (tests/support/vulkan_pattern.hpp); the host imports them
// (vulkan::ImportListener) and copies each frame into a host-visible buffer to check it. Both
// pick the same device the same way: the first Vulkan 1.2 device with a compute queue, GPUs
// before CPU implementations. It enables the external memory and semaphore extensions the
// device offers and asks for none that only one driver has: whether images travel as
// DMA-BUFs or OPAQUE_FD memory is texshare's choice (Exporter), not the example's.
#pragma once

#include <drm_fourcc.h>
#include <vulkan/vulkan.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"
#include "texshare/vulkan/device.hpp"

namespace host_renderer {

// What both processes give their images: stored into by the renderer's compute shader,
// copied out by the host. One set for export and import, since an OPAQUE_FD import must
// describe the image as it was exported (Vulkan spec, "External Memory Handle Types":
// the same creation parameters).
constexpr VkImageUsageFlags shared_image_usage = VK_IMAGE_USAGE_STORAGE_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT;
// How long either process waits for the other (a message, a fence, the GPU) before calling
// it stuck: generous, since the lanes run lavapipe under qemu's TCG, sometimes with ASan,
// where the renderer's first frame (instance, device, shader compile) alone took over 10 s.
constexpr std::chrono::seconds vulkan_patience{30};
// VK_FORMAT_R8G8B8A8_UNORM, the pattern renderer's format: R, G, B, A in memory.
constexpr std::uint32_t shared_image_fourcc = DRM_FORMAT_ABGR8888;

class VulkanApp {
public:
    // Errc::unsupported naming what is missing: no Vulkan loader or driver, no Vulkan 1.2
    // device with a compute queue (the message lists each device); Errc::library naming
    // the call and VkResult otherwise.
    static texshare::Result<VulkanApp> create();

    VulkanApp(VulkanApp&& other) noexcept { *this = std::move(other); }
    VulkanApp& operator=(VulkanApp&& other) noexcept;
    VulkanApp(const VulkanApp&) = delete;
    VulkanApp& operator=(const VulkanApp&) = delete;
    ~VulkanApp();  // waits for the device to go idle first

    texshare::vulkan::DeviceHandles handles() const noexcept;
    VkDevice device() const noexcept { return device_; }
    VkPhysicalDevice physical_device() const noexcept { return physical_; }
    VkQueue queue() const noexcept { return queue_; }
    std::uint32_t queue_family() const noexcept { return family_; }
    const std::string& name() const noexcept { return name_; }  // deviceName
    bool enabled(std::string_view extension) const noexcept;
    // The queue family an image of `backing` is handed to and taken from (spec, "Queue Family
    // Ownership Transfer"): a DMA-BUF may be used by any driver or API, so FOREIGN where
    // VK_EXT_queue_family_foreign is enabled; other memory (OPAQUE_FD) only by this device
    // and driver in another process, which is what EXTERNAL means.
    std::uint32_t peer_queue_family(texshare::Backing backing) const noexcept;

    // A primary command buffer from this app's pool; free it with free_commands().
    texshare::Result<VkCommandBuffer> allocate_commands() const;
    void free_commands(VkCommandBuffer commands) const noexcept;

    // A host-visible, coherent buffer of `bytes` that copies land in, mapped.
    struct HostBuffer {
        VkBuffer buffer = VK_NULL_HANDLE;
        VkDeviceMemory memory = VK_NULL_HANDLE;
        const std::uint8_t* mapped = nullptr;
        VkDeviceSize size = 0;
    };
    texshare::Result<HostBuffer> make_host_buffer(VkDeviceSize bytes) const;
    void destroy(HostBuffer& buffer) const noexcept;

private:
    VulkanApp() = default;
    void reset() noexcept;

    VkInstance instance_ = VK_NULL_HANDLE;
    VkPhysicalDevice physical_ = VK_NULL_HANDLE;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    std::uint32_t family_ = 0;
    std::string name_;
    std::vector<std::string> extensions_;
    std::vector<const char*> names_;  // extensions_ as DeviceHandles wants them
};

// "VK_ERROR_..." for messages, from texshare::vulkan.
texshare::Error vk_error(std::string_view call, VkResult result);

}  // namespace host_renderer
