// The guest section's Vulkan objects beyond tests/support's VulkanContext (the device that
// imports DMA-BUFs) and VulkanImportedImage (the LINEAR import): a host-visible buffer, an
// OPTIMAL image, and a command buffer recorded once and submitted every frame, so that a
// frame's time holds no allocation or recording. Any Vulkan failure here fails the run.
#pragma once

#include <vulkan/vulkan.h>

#include <cstddef>
#include <cstdint>

#include "support/vulkan_context.hpp"

namespace bench {

using texshare::testing::VulkanContext;

// A VkResult that is not VK_SUCCESS fails the run, naming the call.
void vk_check(VkResult result, const char* call);

// A buffer with its own host-visible, host-coherent memory, mapped for its whole life.
struct HostBuffer {
    HostBuffer(const VulkanContext& gpu, VkDeviceSize size, VkBufferUsageFlags usage);
    HostBuffer(const HostBuffer&) = delete;
    HostBuffer& operator=(const HostBuffer&) = delete;
    ~HostBuffer();
    VkDevice device = VK_NULL_HANDLE;
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    std::byte* data = nullptr;
};

// A 2D single-mip OPTIMAL image in device-local memory of its own.
struct OptimalImage {
    OptimalImage(const VulkanContext& gpu, std::uint32_t width, std::uint32_t height, VkFormat format,
                 VkImageUsageFlags usage);
    OptimalImage(const OptimalImage&) = delete;
    OptimalImage& operator=(const OptimalImage&) = delete;
    ~OptimalImage();
    VkDevice device = VK_NULL_HANDLE;
    VkImage image = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
};

// One primary command buffer (its own pool) and a fence: recorded once, then submitted and
// waited for as often as wanted.
class Submission {
public:
    explicit Submission(const VulkanContext& gpu);
    Submission(const Submission&) = delete;
    Submission& operator=(const Submission&) = delete;
    ~Submission();
    VkCommandBuffer begin();
    void end();
    // Submits the recorded commands and waits for the fence (without a timeout: lavapipe
    // either finishes or reports an error, which fails the run).
    void submit_and_wait();

private:
    const VulkanContext* gpu_;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkCommandBuffer commands_ = VK_NULL_HANDLE;
    VkFence fence_ = VK_NULL_HANDLE;
};

// A whole-image barrier on the colour aspect (a queue family ownership transfer where the
// families differ).
void image_barrier(VkCommandBuffer commands, VkImage image, VkImageLayout from, VkImageLayout to,
                   VkAccessFlags src_access, VkAccessFlags dst_access, VkPipelineStageFlags src_stage,
                   VkPipelineStageFlags dst_stage, std::uint32_t src_family = VK_QUEUE_FAMILY_IGNORED,
                   std::uint32_t dst_family = VK_QUEUE_FAMILY_IGNORED);

}  // namespace bench
