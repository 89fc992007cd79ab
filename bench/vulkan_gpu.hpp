// The guest section's Vulkan: one device that can import DMA-BUFs
// (VK_EXT_external_memory_dma_buf), one queue, and the few objects the section needs
// (buffers and images with their memory, one-shot command buffers). Written against Vulkan
// 1.1 core plus that extension, since lavapipe is what runs it (Mesa 25 in the 6.12 guest).
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <string>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace bench {

// A VkResult that is not VK_SUCCESS fails the run, naming the call.
void vk_check(VkResult result, const char* call);

class VulkanGpu {
public:
    // The first physical device with VK_EXT_external_memory_dma_buf (and the
    // VK_KHR_external_memory_fd it needs) and a queue with transfer work. Errc::unsupported
    // naming what is missing (no loader/ICD, no device, no extension): the section then says
    // why it skipped.
    static texshare::Result<VulkanGpu> open();

    VulkanGpu(VulkanGpu&& other) noexcept;
    VulkanGpu& operator=(VulkanGpu&&) = delete;
    VulkanGpu(const VulkanGpu&) = delete;
    VulkanGpu& operator=(const VulkanGpu&) = delete;
    ~VulkanGpu();

    VkDevice device() const noexcept { return device_; }
    VkQueue queue() const noexcept { return queue_; }
    std::uint32_t queue_family() const noexcept { return family_; }
    VkCommandPool command_pool() const noexcept { return pool_; }
    // "llvmpipe (LLVM 15.0.6, 256 bits), driver Mesa 25.0.7..." for the table's title.
    const std::string& name() const noexcept { return name_; }
    // Which queue family a foreign owner (the CPU through the DMA-BUF) has:
    // VK_QUEUE_FAMILY_FOREIGN_EXT when VK_EXT_queue_family_foreign is enabled, else EXTERNAL.
    std::uint32_t foreign_family() const noexcept { return foreign_family_; }

    // A memory type index among `allowed` with all of `wanted`; fails the run when none has.
    std::uint32_t memory_type(std::uint32_t allowed, VkMemoryPropertyFlags wanted) const;
    // The memory types a DMA-BUF fd can be imported into (vkGetMemoryFdPropertiesKHR).
    std::uint32_t dma_buf_memory_types(int fd) const;

private:
    VulkanGpu() = default;
    VkInstance instance_ = VK_NULL_HANDLE;
    VkPhysicalDevice physical_ = VK_NULL_HANDLE;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    std::uint32_t family_ = 0;
    std::uint32_t foreign_family_ = VK_QUEUE_FAMILY_EXTERNAL;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkPhysicalDeviceMemoryProperties memory_{};
    PFN_vkGetMemoryFdPropertiesKHR get_memory_fd_properties_ = nullptr;
    std::string name_;
};

// A buffer with its own host-visible, host-coherent memory, mapped for its whole life.
struct HostBuffer {
    HostBuffer(const VulkanGpu& gpu, VkDeviceSize size, VkBufferUsageFlags usage);
    HostBuffer(const HostBuffer&) = delete;
    HostBuffer& operator=(const HostBuffer&) = delete;
    ~HostBuffer();
    VkDevice device = VK_NULL_HANDLE;
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    std::byte* data = nullptr;
    VkDeviceSize size = 0;
};

// A 2D single-mip image with dedicated memory: either allocated (OPTIMAL tiling,
// device-local) or imported from a DMA-BUF (LINEAR, row pitch checked against `stride`).
struct Image {
    Image(const VulkanGpu& gpu, std::uint32_t width, std::uint32_t height, VkFormat format, VkImageUsageFlags usage);
    // Imports a dup of `dma_buf` (Vulkan owns the dup on success; the caller keeps its fd).
    // Fails the run when the driver's LINEAR row pitch is not `stride` or its offset is not 0.
    Image(const VulkanGpu& gpu, std::uint32_t width, std::uint32_t height, VkFormat format, VkImageUsageFlags usage,
          texshare::BorrowedFd dma_buf, std::uint32_t stride);
    Image(const Image&) = delete;
    Image& operator=(const Image&) = delete;
    ~Image();
    VkDevice device = VK_NULL_HANDLE;
    VkImage image = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
};

// One primary command buffer and a fence: record once, submit and wait as often as wanted.
class Submission {
public:
    explicit Submission(const VulkanGpu& gpu);
    Submission(const Submission&) = delete;
    Submission& operator=(const Submission&) = delete;
    ~Submission();
    // Begins recording (the buffer may be submitted any number of times).
    VkCommandBuffer begin();
    void end();
    // Submits the recorded commands and waits for the fence (no timeout: the run fails if
    // the driver reports an error).
    void submit_and_wait();

private:
    const VulkanGpu* gpu_;
    VkCommandBuffer commands_ = VK_NULL_HANDLE;
    VkFence fence_ = VK_NULL_HANDLE;
};

// A whole-image barrier on the colour aspect.
void image_barrier(VkCommandBuffer commands, VkImage image, VkImageLayout from, VkImageLayout to,
                   VkAccessFlags src_access, VkAccessFlags dst_access, VkPipelineStageFlags src_stage,
                   VkPipelineStageFlags dst_stage, std::uint32_t src_family = VK_QUEUE_FAMILY_IGNORED,
                   std::uint32_t dst_family = VK_QUEUE_FAMILY_IGNORED);

}  // namespace bench
