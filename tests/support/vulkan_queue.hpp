// Test support: an application's queue work on shared images, the way a renderer and a
// compositor do it, for the export and fence tests (texshare::vulkan makes no submits).
//
// Use TestQueue::create() after TestVulkan::create(): it takes the same queue family
// TestVulkan's device was created with, and records one-time command buffers that copy a
// packed RGBA pattern into an image (a producer's "render") or out of one (a consumer's
// readback), each in one submit with the caller's wait and signal semaphores, so a fence
// imported as a semaphore orders exactly that copy (Vulkan spec: a semaphore wait orders
// the commands of its own batch). Images shared with another process are handed over with
// a queue family ownership transfer to/from FOREIGN (VK_EXT_queue_family_foreign) or
// EXTERNAL, in VK_IMAGE_LAYOUT_GENERAL.
#pragma once

#include <vulkan/vulkan.h>

#include <cstring>
#include <vector>

#include "support/vulkan_test_device.hpp"
#include "texshare/vulkan/fence.hpp"

namespace texshare::testing {

class TestQueue {
public:
    static constexpr VkDeviceSize capacity = VkDeviceSize{1024} * 1024 * 4;  // bytes of staging: 1024x1024 RGBA

    static Result<TestQueue> create(const TestVulkan& vk) {
        TestQueue q;
        q.device_ = vk.handles().device;
        q.physical_ = vk.physical_device();
        q.foreign_ = vk.has(VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME) ? VK_QUEUE_FAMILY_FOREIGN_EXT
                                                                        : VK_QUEUE_FAMILY_EXTERNAL;
        std::uint32_t count = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(q.physical_, &count, nullptr);
        std::vector<VkQueueFamilyProperties> families(count);
        vkGetPhysicalDeviceQueueFamilyProperties(q.physical_, &count, families.data());
        while (q.family_ < count && (families[q.family_].queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) == 0) {
            ++q.family_;  // TestVulkan's choice, so the queue exists
        }
        if (q.family_ == count) return make_error(Errc::unsupported, "no queue family that copies");
        vkGetDeviceQueue(q.device_, q.family_, 0, &q.queue_);
        const VkCommandPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, nullptr, 0, q.family_};
        if (VkResult r = vkCreateCommandPool(q.device_, &pool_info, nullptr, &q.pool_); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkCreateCommandPool: {}", vulkan::result_name(r));
        }
        const VkDeviceSize bytes = capacity;
        const VkBufferCreateInfo buffer_info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, nullptr, 0, bytes,
                                             VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
                                             VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
        if (VkResult r = vkCreateBuffer(q.device_, &buffer_info, nullptr, &q.buffer_); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkCreateBuffer: {}", vulkan::result_name(r));
        }
        VkMemoryRequirements needs{};
        vkGetBufferMemoryRequirements(q.device_, q.buffer_, &needs);
        VkPhysicalDeviceMemoryProperties types{};
        vkGetPhysicalDeviceMemoryProperties(q.physical_, &types);
        constexpr VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        std::uint32_t type = 0;
        while (type < types.memoryTypeCount &&
               ((needs.memoryTypeBits & (1U << type)) == 0 || (types.memoryTypes[type].propertyFlags & host) != host)) {
            ++type;
        }
        if (type == types.memoryTypeCount) return make_error(Errc::unsupported, "no host-visible memory type");
        const VkMemoryAllocateInfo allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, needs.size, type};
        if (VkResult r = vkAllocateMemory(q.device_, &allocate, nullptr, &q.memory_); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkAllocateMemory: {}", vulkan::result_name(r));
        }
        vkBindBufferMemory(q.device_, q.buffer_, q.memory_, 0);
        if (VkResult r = vkMapMemory(q.device_, q.memory_, 0, bytes, 0, &q.mapped_); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkMapMemory: {}", vulkan::result_name(r));
        }
        return q;
    }

    TestQueue(TestQueue&& other) noexcept { *this = std::move(other); }
    TestQueue& operator=(TestQueue&& other) noexcept {
        if (this != &other) {
            destroy();
            device_ = std::exchange(other.device_, VK_NULL_HANDLE);
            physical_ = other.physical_;
            queue_ = other.queue_;
            family_ = other.family_;
            foreign_ = other.foreign_;
            pool_ = std::exchange(other.pool_, VK_NULL_HANDLE);
            buffer_ = std::exchange(other.buffer_, VK_NULL_HANDLE);
            memory_ = std::exchange(other.memory_, VK_NULL_HANDLE);
            mapped_ = std::exchange(other.mapped_, nullptr);
            pending_ = std::move(other.pending_);
        }
        return *this;
    }
    ~TestQueue() { destroy(); }

    VkQueue queue() const noexcept { return queue_; }
    std::uint32_t family() const noexcept { return family_; }

    // "Renders" `pixels` (width * 4 bytes per row, packed) into `image` with a buffer copy and
    // hands it to the other process (release to FOREIGN/EXTERNAL, GENERAL). `first_use`: the
    // image's contents are undefined (just allocated); otherwise it is acquired back from the
    // other process first. Waits on `wait` and signals `signal` (either may be empty).
    Result<void> upload(VkImage image, VkExtent2D e, const std::vector<std::uint8_t>& pixels, bool first_use,
                        const vulkan::Semaphore& wait, const vulkan::Semaphore& signal) {
        if (pixels.size() > capacity) return make_error(Errc::invalid_argument, "upload: more than {} bytes", capacity);
        std::memcpy(mapped_, pixels.data(), pixels.size());
        return submit(wait, signal, [&](VkCommandBuffer c) {
            barrier(c, image, first_use ? VK_IMAGE_LAYOUT_UNDEFINED : VK_IMAGE_LAYOUT_GENERAL,
                    VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, first_use ? VK_QUEUE_FAMILY_IGNORED : foreign_,
                    first_use ? VK_QUEUE_FAMILY_IGNORED : family_, 0, VK_ACCESS_TRANSFER_WRITE_BIT);
            const VkBufferImageCopy region{0, 0, 0, {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1}, {0, 0, 0}, {e.width, e.height, 1}};
            vkCmdCopyBufferToImage(c, buffer_, image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &region);
            barrier(c, image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_IMAGE_LAYOUT_GENERAL, family_, foreign_,
                    VK_ACCESS_TRANSFER_WRITE_BIT, 0);
        });
    }

    // Every pixel of an imported image (acquired from, and given back to, the other process),
    // copied after `wait` and followed by `signal`; waits for the queue before reading.
    Result<std::vector<std::uint8_t>> download(VkImage image, VkExtent2D e, const vulkan::Semaphore& wait,
                                               const vulkan::Semaphore& signal) {
        if (VkDeviceSize{e.width} * e.height * 4 > capacity) return make_error(Errc::invalid_argument, "download: too big");
        auto done = submit(wait, signal, [&](VkCommandBuffer c) {
            barrier(c, image, VK_IMAGE_LAYOUT_GENERAL, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, foreign_, family_, 0,
                    VK_ACCESS_TRANSFER_READ_BIT);
            const VkBufferImageCopy region{0, 0, 0, {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1}, {0, 0, 0}, {e.width, e.height, 1}};
            vkCmdCopyImageToBuffer(c, image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, buffer_, 1, &region);
            barrier(c, image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, VK_IMAGE_LAYOUT_GENERAL, family_, foreign_,
                    VK_ACCESS_TRANSFER_READ_BIT, 0);
            const VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_TRANSFER_WRITE_BIT,
                                          VK_ACCESS_HOST_READ_BIT};
            vkCmdPipelineBarrier(c, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                                 nullptr, 0, nullptr);
        });
        if (!done) return std::move(done).error();
        if (auto idle = wait_idle(); !idle) return std::move(idle).error();
        const auto* bytes = static_cast<const std::uint8_t*>(mapped_);
        return std::vector<std::uint8_t>(bytes, bytes + std::size_t{e.width} * e.height * 4);
    }

    // vkQueueWaitIdle, then frees the command buffers of finished submits.
    Result<void> wait_idle() {
        if (VkResult r = vkQueueWaitIdle(queue_); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkQueueWaitIdle: {}", vulkan::result_name(r));
        }
        if (!pending_.empty()) {
            vkFreeCommandBuffers(device_, pool_, static_cast<std::uint32_t>(pending_.size()), pending_.data());
        }
        pending_.clear();
        return {};
    }

    template <typename Record>
    Result<void> submit(const vulkan::Semaphore& wait, const vulkan::Semaphore& signal, Record&& record) {
        const VkCommandBufferAllocateInfo info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, nullptr, pool_,
                                               VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
        VkCommandBuffer c = VK_NULL_HANDLE;
        if (VkResult r = vkAllocateCommandBuffers(device_, &info, &c); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkAllocateCommandBuffers: {}", vulkan::result_name(r));
        }
        pending_.push_back(c);
        const VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, nullptr,
                                             VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, nullptr};
        vkBeginCommandBuffer(c, &begin);
        record(c);
        vkEndCommandBuffer(c);
        const VkPipelineStageFlags stage = VK_PIPELINE_STAGE_ALL_COMMANDS_BIT;
        const VkSubmitInfo submit_info{VK_STRUCTURE_TYPE_SUBMIT_INFO, nullptr, wait.count(), wait.data(), &stage,
                                       1, &c, signal.count(), signal.data()};
        if (VkResult r = vkQueueSubmit(queue_, 1, &submit_info, VK_NULL_HANDLE); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkQueueSubmit: {}", vulkan::result_name(r));
        }
        return {};
    }

private:
    TestQueue() = default;
    static void barrier(VkCommandBuffer c, VkImage image, VkImageLayout from, VkImageLayout to, std::uint32_t src_family,
                        std::uint32_t dst_family, VkAccessFlags src_access, VkAccessFlags dst_access) {
        const VkImageMemoryBarrier b{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, nullptr, src_access, dst_access, from, to,
                                     src_family, dst_family, image, {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
        vkCmdPipelineBarrier(c, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 0, nullptr,
                             0, nullptr, 1, &b);
    }
    void destroy() noexcept {
        if (device_ == VK_NULL_HANDLE) return;
        (void)wait_idle();
        if (pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(device_, pool_, nullptr);
        if (buffer_ != VK_NULL_HANDLE) vkDestroyBuffer(device_, buffer_, nullptr);
        if (memory_ != VK_NULL_HANDLE) vkFreeMemory(device_, memory_, nullptr);
        device_ = VK_NULL_HANDLE;
    }

    VkDevice device_ = VK_NULL_HANDLE;
    VkPhysicalDevice physical_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    std::uint32_t family_ = 0;
    std::uint32_t foreign_ = VK_QUEUE_FAMILY_EXTERNAL;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkBuffer buffer_ = VK_NULL_HANDLE;
    VkDeviceMemory memory_ = VK_NULL_HANDLE;
    void* mapped_ = nullptr;
    std::vector<VkCommandBuffer> pending_;
};

}  // namespace texshare::testing
