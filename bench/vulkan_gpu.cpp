#include "vulkan_gpu.hpp"

#include "harness.hpp"

namespace bench {

void vk_check(VkResult result, const char* call) {
    if (result != VK_SUCCESS) fail(fmt::format("{} failed: VkResult {}", call, static_cast<int>(result)));
}

namespace {
std::uint32_t memory_type(const VulkanContext& gpu, std::uint32_t allowed, VkMemoryPropertyFlags wanted) {
    return must(gpu.memory_type(allowed, wanted), "a Vulkan memory type");
}
}  // namespace

HostBuffer::HostBuffer(const VulkanContext& gpu, VkDeviceSize size, VkBufferUsageFlags usage) : device(gpu.device()) {
    const VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, nullptr, 0, size, usage,
                                  VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
    vk_check(vkCreateBuffer(device, &info, nullptr, &buffer), "vkCreateBuffer");
    VkMemoryRequirements requirements{};
    vkGetBufferMemoryRequirements(device, buffer, &requirements);
    const VkMemoryAllocateInfo allocate{
        VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, requirements.size,
        memory_type(gpu, requirements.memoryTypeBits,
                    VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)};
    vk_check(vkAllocateMemory(device, &allocate, nullptr, &memory), "vkAllocateMemory (host buffer)");
    vk_check(vkBindBufferMemory(device, buffer, memory, 0), "vkBindBufferMemory");
    void* mapped = nullptr;
    vk_check(vkMapMemory(device, memory, 0, VK_WHOLE_SIZE, 0, &mapped), "vkMapMemory");
    data = static_cast<std::byte*>(mapped);
}

HostBuffer::~HostBuffer() {
    vkDestroyBuffer(device, buffer, nullptr);
    vkFreeMemory(device, memory, nullptr);  // unmaps it too
}

OptimalImage::OptimalImage(const VulkanContext& gpu, std::uint32_t width, std::uint32_t height, VkFormat format,
                           VkImageUsageFlags usage)
    : device(gpu.device()) {
    const VkImageCreateInfo info{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                                 nullptr,
                                 0,
                                 VK_IMAGE_TYPE_2D,
                                 format,
                                 {width, height, 1},
                                 1,
                                 1,
                                 VK_SAMPLE_COUNT_1_BIT,
                                 VK_IMAGE_TILING_OPTIMAL,
                                 usage,
                                 VK_SHARING_MODE_EXCLUSIVE,
                                 0,
                                 nullptr,
                                 VK_IMAGE_LAYOUT_UNDEFINED};
    vk_check(vkCreateImage(device, &info, nullptr, &image), "vkCreateImage (OPTIMAL)");
    VkMemoryRequirements requirements{};
    vkGetImageMemoryRequirements(device, image, &requirements);
    const VkMemoryDedicatedAllocateInfo dedicated{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO, nullptr, image,
                                                  VK_NULL_HANDLE};
    const VkMemoryAllocateInfo allocate{
        VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, &dedicated, requirements.size,
        memory_type(gpu, requirements.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)};
    vk_check(vkAllocateMemory(device, &allocate, nullptr, &memory), "vkAllocateMemory (image)");
    vk_check(vkBindImageMemory(device, image, memory, 0), "vkBindImageMemory");
}

OptimalImage::~OptimalImage() {
    vkDestroyImage(device, image, nullptr);
    vkFreeMemory(device, memory, nullptr);
}

Submission::Submission(const VulkanContext& gpu) : gpu_(&gpu) {
    const VkCommandPoolCreateInfo pool{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, nullptr, 0, gpu.queue_family()};
    vk_check(vkCreateCommandPool(gpu.device(), &pool, nullptr, &pool_), "vkCreateCommandPool");
    const VkCommandBufferAllocateInfo allocate{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, nullptr, pool_,
                                               VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
    vk_check(vkAllocateCommandBuffers(gpu.device(), &allocate, &commands_), "vkAllocateCommandBuffers");
    const VkFenceCreateInfo fence{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO, nullptr, 0};
    vk_check(vkCreateFence(gpu.device(), &fence, nullptr, &fence_), "vkCreateFence");
}

Submission::~Submission() {
    vkDestroyFence(gpu_->device(), fence_, nullptr);
    vkDestroyCommandPool(gpu_->device(), pool_, nullptr);  // frees the command buffer
}

VkCommandBuffer Submission::begin() {
    const VkCommandBufferBeginInfo info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, nullptr, 0, nullptr};
    vk_check(vkBeginCommandBuffer(commands_, &info), "vkBeginCommandBuffer");
    return commands_;
}

void Submission::end() { vk_check(vkEndCommandBuffer(commands_), "vkEndCommandBuffer"); }

void Submission::submit_and_wait() {
    const VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO, nullptr, 0, nullptr, nullptr, 1, &commands_, 0, nullptr};
    vk_check(vkQueueSubmit(gpu_->queue(), 1, &submit, fence_), "vkQueueSubmit");
    vk_check(vkWaitForFences(gpu_->device(), 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
    vk_check(vkResetFences(gpu_->device(), 1, &fence_), "vkResetFences");
}

void image_barrier(VkCommandBuffer commands, VkImage image, VkImageLayout from, VkImageLayout to,
                   VkAccessFlags src_access, VkAccessFlags dst_access, VkPipelineStageFlags src_stage,
                   VkPipelineStageFlags dst_stage, std::uint32_t src_family, std::uint32_t dst_family) {
    const VkImageMemoryBarrier barrier{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER,
                                       nullptr,
                                       src_access,
                                       dst_access,
                                       from,
                                       to,
                                       src_family,
                                       dst_family,
                                       image,
                                       {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
    vkCmdPipelineBarrier(commands, src_stage, dst_stage, 0, 0, nullptr, 0, nullptr, 1, &barrier);
}

}  // namespace bench
