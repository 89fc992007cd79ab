// Test support: a Vulkan compute shader that draws texshare's test pattern into an image, and
// the CPU's copy of the same function, so whoever reads the image back (another process, a
// GPU lane) can check every pixel exactly without a second copy of the pixels.
//
// Use PatternRenderer in the process that renders with Vulkan (the example's renderer child,
// the GPU lane's, the Vulkan tests): create() once on the application's VkDevice, then
// record() a frame into a command buffer, and expected_rgba()/expected_pixel() wherever the
// pixels are checked. The pattern is a pure function of (x, y, frame) in 32-bit unsigned
// integers (vulkan_pattern.comp; its SPIR-V is committed in vulkan_pattern_spirv.hpp, made by
// gen_vulkan_pattern_spirv.sh, so building needs no shader compiler).
//
// The target is a VK_FORMAT_R8G8B8A8_UNORM image created with VK_IMAGE_USAGE_STORAGE_BIT, in
// VK_IMAGE_LAYOUT_GENERAL when the recorded commands run (the layout storage images are
// written in: Vulkan spec, "Image Layouts"); any tiling whose format features include
// VK_FORMAT_FEATURE_STORAGE_IMAGE_BIT (OPTIMAL on every driver: it is one of the spec's
// mandatory storage formats; LINEAR and DRM-modifier tilings where the driver says so, as
// lavapipe does). In memory the bytes are R, G, B, A: DRM_FORMAT_ABGR8888.
#pragma once

#include <vulkan/vulkan.h>

#include <array>
#include <cstdint>
#include <map>
#include <span>

#include "texshare/result.hpp"

namespace texshare::testing {

// The pattern's pixel at (x, y) of frame `frame`, as R, G, B, A (A is always 0xff, so no
// blending or premultiplication anywhere changes a pixel).
std::array<std::uint8_t, 4> expected_rgba(std::uint32_t x, std::uint32_t y, std::uint32_t frame) noexcept;

// The same pixel as the 4 bytes R8G8B8A8 memory holds, loaded as a little-endian 32-bit
// word: R | G << 8 | B << 16 | A << 24.
std::uint32_t expected_pixel(std::uint32_t x, std::uint32_t y, std::uint32_t frame) noexcept;

// Pixels of a width x height R8G8B8A8 readback (`row_pitch` bytes from one row's start to the
// next, at least width * 4) that differ from frame `frame`'s pattern; every pixel if `bytes`
// is too small to hold the rows.
std::uint64_t count_pattern_mismatches(std::span<const std::uint8_t> bytes, std::uint32_t width, std::uint32_t height,
                                       std::size_t row_pitch, std::uint32_t frame) noexcept;

class PatternRenderer {
public:
    // Creates the compute pipeline on `device` (which must outlive the renderer) with room for
    // `max_images` distinct target images at a time (forget() frees a slot).
    // Errc::invalid_argument for a null device or max_images 0; Errc::library naming the
    // Vulkan call and VkResult otherwise. On error every object made is destroyed.
    static Result<PatternRenderer> create(VkDevice device, std::uint32_t max_images = 16);

    PatternRenderer(PatternRenderer&& other) noexcept { *this = std::move(other); }
    PatternRenderer& operator=(PatternRenderer&& other) noexcept;
    PatternRenderer(const PatternRenderer&) = delete;
    PatternRenderer& operator=(const PatternRenderer&) = delete;
    ~PatternRenderer();  // the GPU must have finished every command buffer recorded with it

    // Records into `commands` (begun, on a queue family with VK_QUEUE_COMPUTE_BIT) the
    // dispatch that writes frame `frame` into every pixel of `image` (`extent` its size, in
    // VK_IMAGE_LAYOUT_GENERAL when the dispatch runs). The writes are
    // VK_ACCESS_SHADER_WRITE_BIT at VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT: the caller's
    // barriers order them after the image's previous use and before its next one (and hand it
    // to another process). The image view and descriptor set made for `image` the first time
    // are kept until forget(image) or the renderer's end. Errc::unsupported for a format other
    // than VK_FORMAT_R8G8B8A8_UNORM; Errc::invalid_argument for a null image or commands, an
    // empty extent, or a new image when max_images are known already (forget() one first);
    // Errc::library naming the Vulkan call and VkResult otherwise.
    Result<void> record(VkCommandBuffer commands, VkImage image, VkFormat format, VkExtent2D extent,
                        std::uint32_t frame);

    // Destroys what record() made for `image` (before the image is destroyed, or its handle
    // could be reused): no command buffer recorded with it may still be pending.
    void forget(VkImage image) noexcept;
    std::size_t known_images() const noexcept { return targets_.size(); }

private:
    struct Target {
        VkImageView view = VK_NULL_HANDLE;
        VkDescriptorSet set = VK_NULL_HANDLE;
    };

    PatternRenderer() = default;
    void destroy() noexcept;

    VkDevice device_ = VK_NULL_HANDLE;
    VkShaderModule shader_ = VK_NULL_HANDLE;
    VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
    VkPipelineLayout pipeline_layout_ = VK_NULL_HANDLE;
    VkPipeline pipeline_ = VK_NULL_HANDLE;
    VkDescriptorPool pool_ = VK_NULL_HANDLE;
    std::uint32_t max_images_ = 0;
    std::map<VkImage, Target> targets_;
};

}  // namespace texshare::testing
