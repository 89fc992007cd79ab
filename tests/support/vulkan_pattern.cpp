#include "support/vulkan_pattern.hpp"

#include <utility>

#include "support/vulkan_pattern_spirv.hpp"
#include "texshare/vulkan/device.hpp"

namespace texshare::testing {
namespace {

Error vk_error(std::string_view call, VkResult result) {
    return make_error(Errc::library, "pattern renderer: {} failed: {}", call, vulkan::result_name(result));
}

// What the shader's push constants hold (vulkan_pattern.comp's Push block, std430 offsets 0, 4, 8).
struct Push {
    std::uint32_t frame;
    std::uint32_t width;
    std::uint32_t height;
};

constexpr std::uint32_t local_size = 8;  // the shader's local_size_x and local_size_y

}  // namespace

// The shader's pattern(), word for word: GLSL's uint arithmetic wraps modulo 2^32 like C++'s.
std::array<std::uint8_t, 4> expected_rgba(std::uint32_t x, std::uint32_t y, std::uint32_t frame) noexcept {
    std::uint32_t h = (x * 0x9E3779B1U) ^ (y * 0x85EBCA77U) ^ (frame * 0xC2B2AE3DU);
    h ^= h >> 15;
    h *= 0x2C1B3C6DU;
    h ^= h >> 12;
    return {static_cast<std::uint8_t>((x + frame) & 0xFFU), static_cast<std::uint8_t>((y + 2U * frame) & 0xFFU),
            static_cast<std::uint8_t>(h >> 24), 0xFF};
}

std::uint32_t expected_pixel(std::uint32_t x, std::uint32_t y, std::uint32_t frame) noexcept {
    const auto rgba = expected_rgba(x, y, frame);
    return std::uint32_t{rgba[0]} | std::uint32_t{rgba[1]} << 8 | std::uint32_t{rgba[2]} << 16 |
           std::uint32_t{rgba[3]} << 24;
}

std::uint64_t count_pattern_mismatches(std::span<const std::uint8_t> bytes, std::uint32_t width, std::uint32_t height,
                                       std::size_t row_pitch, std::uint32_t frame) noexcept {
    const std::uint64_t all = std::uint64_t{width} * height;
    const std::size_t row = std::size_t{width} * 4;
    if (height == 0 || row_pitch < row || bytes.size() < row_pitch * (height - 1) + row) return all;
    std::uint64_t mismatches = 0;
    for (std::uint32_t y = 0; y < height; ++y) {
        const std::uint8_t* line = bytes.data() + row_pitch * y;
        for (std::uint32_t x = 0; x < width; ++x) {
            const auto want = expected_rgba(x, y, frame);
            const std::uint8_t* got = line + std::size_t{x} * 4;
            if (got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3]) ++mismatches;
        }
    }
    return mismatches;
}

Result<PatternRenderer> PatternRenderer::create(VkDevice device, std::uint32_t max_images) {
    if (device == VK_NULL_HANDLE) return make_error(Errc::invalid_argument, "pattern renderer: the VkDevice is null");
    if (max_images == 0) return make_error(Errc::invalid_argument, "pattern renderer: max_images is 0");
    PatternRenderer r;  // its destructor destroys what was made if a step fails
    r.device_ = device;
    r.max_images_ = max_images;
    const VkShaderModuleCreateInfo shader_info{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, nullptr, 0,
                                               sizeof(pattern_spirv), pattern_spirv};
    if (VkResult e = vkCreateShaderModule(device, &shader_info, nullptr, &r.shader_); e != VK_SUCCESS) {
        r.shader_ = VK_NULL_HANDLE;
        return vk_error("vkCreateShaderModule", e);
    }
    const VkDescriptorSetLayoutBinding binding{0, VK_DESCRIPTOR_TYPE_STORAGE_IMAGE, 1, VK_SHADER_STAGE_COMPUTE_BIT,
                                               nullptr};
    const VkDescriptorSetLayoutCreateInfo set_info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, nullptr, 0, 1,
                                                   &binding};
    if (VkResult e = vkCreateDescriptorSetLayout(device, &set_info, nullptr, &r.set_layout_); e != VK_SUCCESS) {
        r.set_layout_ = VK_NULL_HANDLE;
        return vk_error("vkCreateDescriptorSetLayout", e);
    }
    const VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(Push)};
    const VkPipelineLayoutCreateInfo layout_info{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, nullptr, 0, 1,
                                                 &r.set_layout_, 1, &push};
    if (VkResult e = vkCreatePipelineLayout(device, &layout_info, nullptr, &r.pipeline_layout_); e != VK_SUCCESS) {
        r.pipeline_layout_ = VK_NULL_HANDLE;
        return vk_error("vkCreatePipelineLayout", e);
    }
    const VkComputePipelineCreateInfo pipeline_info{
        VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        nullptr,
        0,
        {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, nullptr, 0, VK_SHADER_STAGE_COMPUTE_BIT, r.shader_, "main",
         nullptr},
        r.pipeline_layout_,
        VK_NULL_HANDLE,
        -1};
    if (VkResult e = vkCreateComputePipelines(device, VK_NULL_HANDLE, 1, &pipeline_info, nullptr, &r.pipeline_);
        e != VK_SUCCESS) {
        r.pipeline_ = VK_NULL_HANDLE;
        return vk_error("vkCreateComputePipelines", e);
    }
    const VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_IMAGE, max_images};
    const VkDescriptorPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, nullptr,
                                               VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT, max_images, 1, &size};
    if (VkResult e = vkCreateDescriptorPool(device, &pool_info, nullptr, &r.pool_); e != VK_SUCCESS) {
        r.pool_ = VK_NULL_HANDLE;
        return vk_error("vkCreateDescriptorPool", e);
    }
    return r;
}

PatternRenderer& PatternRenderer::operator=(PatternRenderer&& other) noexcept {
    if (this != &other) {
        destroy();
        device_ = std::exchange(other.device_, VK_NULL_HANDLE);
        shader_ = std::exchange(other.shader_, VK_NULL_HANDLE);
        set_layout_ = std::exchange(other.set_layout_, VK_NULL_HANDLE);
        pipeline_layout_ = std::exchange(other.pipeline_layout_, VK_NULL_HANDLE);
        pipeline_ = std::exchange(other.pipeline_, VK_NULL_HANDLE);
        pool_ = std::exchange(other.pool_, VK_NULL_HANDLE);
        max_images_ = other.max_images_;
        targets_ = std::exchange(other.targets_, {});
    }
    return *this;
}

PatternRenderer::~PatternRenderer() { destroy(); }

void PatternRenderer::destroy() noexcept {
    if (device_ == VK_NULL_HANDLE) return;
    // Destroying the pool frees its sets.
    for (const auto& [image, target] : targets_) vkDestroyImageView(device_, target.view, nullptr);
    targets_.clear();
    if (pool_ != VK_NULL_HANDLE) vkDestroyDescriptorPool(device_, pool_, nullptr);
    if (pipeline_ != VK_NULL_HANDLE) vkDestroyPipeline(device_, pipeline_, nullptr);
    if (pipeline_layout_ != VK_NULL_HANDLE) vkDestroyPipelineLayout(device_, pipeline_layout_, nullptr);
    if (set_layout_ != VK_NULL_HANDLE) vkDestroyDescriptorSetLayout(device_, set_layout_, nullptr);
    if (shader_ != VK_NULL_HANDLE) vkDestroyShaderModule(device_, shader_, nullptr);
    device_ = VK_NULL_HANDLE;
}

void PatternRenderer::forget(VkImage image) noexcept {
    const auto found = targets_.find(image);
    if (found == targets_.end()) return;
    vkFreeDescriptorSets(device_, pool_, 1, &found->second.set);
    vkDestroyImageView(device_, found->second.view, nullptr);
    targets_.erase(found);
}

Result<void> PatternRenderer::record(VkCommandBuffer commands, VkImage image, VkFormat format, VkExtent2D extent,
                                     std::uint32_t frame) {
    if (device_ == VK_NULL_HANDLE) return make_error(Errc::invalid_argument, "pattern renderer: moved from");
    if (commands == VK_NULL_HANDLE || image == VK_NULL_HANDLE) {
        return make_error(Errc::invalid_argument, "pattern renderer: a null {}",
                          commands == VK_NULL_HANDLE ? "command buffer" : "image");
    }
    // The shader's storage format is rgba8: another format would be reinterpreted.
    if (format != VK_FORMAT_R8G8B8A8_UNORM) {
        return make_error(Errc::unsupported, "pattern renderer: draws VK_FORMAT_R8G8B8A8_UNORM ({}) only, not format {}",
                          static_cast<int>(VK_FORMAT_R8G8B8A8_UNORM), static_cast<int>(format));
    }
    if (extent.width == 0 || extent.height == 0) {
        return make_error(Errc::invalid_argument, "pattern renderer: an empty extent {}x{}", extent.width,
                          extent.height);
    }
    auto found = targets_.find(image);
    if (found == targets_.end()) {
        if (targets_.size() >= max_images_) {
            return make_error(Errc::invalid_argument, "pattern renderer: already {} images known (max_images); forget() one",
                              targets_.size());
        }
        Target target;
        const VkImageViewCreateInfo view_info{VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO,
                                              nullptr,
                                              0,
                                              image,
                                              VK_IMAGE_VIEW_TYPE_2D,
                                              format,
                                              {},
                                              {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
        if (VkResult e = vkCreateImageView(device_, &view_info, nullptr, &target.view); e != VK_SUCCESS) {
            return vk_error("vkCreateImageView", e);
        }
        const VkDescriptorSetAllocateInfo set_info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO, nullptr, pool_, 1,
                                                   &set_layout_};
        if (VkResult e = vkAllocateDescriptorSets(device_, &set_info, &target.set); e != VK_SUCCESS) {
            vkDestroyImageView(device_, target.view, nullptr);
            return vk_error("vkAllocateDescriptorSets", e);
        }
        const VkDescriptorImageInfo image_info{VK_NULL_HANDLE, target.view, VK_IMAGE_LAYOUT_GENERAL};
        const VkWriteDescriptorSet write{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, nullptr, target.set, 0, 0, 1,
                                         VK_DESCRIPTOR_TYPE_STORAGE_IMAGE, &image_info, nullptr, nullptr};
        vkUpdateDescriptorSets(device_, 1, &write, 0, nullptr);
        found = targets_.emplace(image, target).first;
    }
    const Push push{frame, extent.width, extent.height};
    vkCmdBindPipeline(commands, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline_);
    vkCmdBindDescriptorSets(commands, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline_layout_, 0, 1, &found->second.set, 0,
                            nullptr);
    vkCmdPushConstants(commands, pipeline_layout_, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(push), &push);
    vkCmdDispatch(commands, (extent.width + local_size - 1) / local_size, (extent.height + local_size - 1) / local_size, 1);
    return {};
}

}  // namespace texshare::testing
