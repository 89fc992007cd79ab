// support/vulkan_pattern.hpp: the compute shader's pixels equal expected_rgba() exactly, read
// back from plain VkImages (no DMA-BUF needed: Debian 12's lavapipe runs it), with Khronos'
// validation layer on; and the committed SPIR-V is the committed GLSL's.
#include "support/vulkan_pattern.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/run_command.hpp"
#include "support/vulkan_pattern_spirv.hpp"
#include "support/vulkan_queue.hpp"
#include "support/vulkan_test_device.hpp"

namespace texshare::testing {
namespace {

std::string read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(VulkanPatternCpu, PixelIsTheRgbaBytesAsALittleEndianWord) {
    for (const std::uint32_t frame : {0U, 1U, 77U, 0xFFFFFFFFU}) {
        for (std::uint32_t y = 0; y < 40; y += 3) {
            for (std::uint32_t x = 0; x < 300; x += 7) {
                const auto rgba = expected_rgba(x, y, frame);
                std::uint32_t word = 0;
                std::memcpy(&word, rgba.data(), 4);  // what a readback's bytes give on x86 and arm64
                ASSERT_EQ(expected_pixel(x, y, frame), word) << x << "," << y << " frame " << frame;
                ASSERT_EQ(rgba[3], 0xFF);
            }
        }
    }
}

// A stale frame up to 255 frames back differs in every pixel (red moves by one a frame), so a
// reader that checks each pixel cannot take an old frame for the current one; further back
// the hashed blue still tells nearly every pixel apart.
TEST(VulkanPatternCpu, EveryPixelChangesFromFrameToFrame) {
    constexpr std::uint32_t width = 70;
    constexpr std::uint32_t height = 33;
    std::vector<std::uint8_t> bytes(std::size_t{width} * height * 4);
    for (std::uint32_t y = 0; y < height; ++y) {
        for (std::uint32_t x = 0; x < width; ++x) {
            const auto rgba = expected_rgba(x, y, 300);
            std::memcpy(&bytes[(std::size_t{y} * width + x) * 4], rgba.data(), 4);
        }
    }
    EXPECT_EQ(count_pattern_mismatches(bytes, width, height, width * 4, 300), 0U);
    EXPECT_EQ(count_pattern_mismatches(bytes, width, height, width * 4, 299), std::uint64_t{width} * height);
    EXPECT_EQ(count_pattern_mismatches(bytes, width, height, width * 4, 301), std::uint64_t{width} * height);
    EXPECT_EQ(count_pattern_mismatches(bytes, width, height, width * 4, 45), std::uint64_t{width} * height);
    EXPECT_GT(count_pattern_mismatches(bytes, width, height, width * 4, 44), std::uint64_t{width} * height * 9 / 10);
    bytes[(5 * width + 9) * 4 + 2] ^= 1;  // one byte of one pixel
    EXPECT_EQ(count_pattern_mismatches(bytes, width, height, width * 4, 300), 1U);
    // Too few bytes for the rows: every pixel counts as wrong, nothing is read out of bounds.
    EXPECT_EQ(count_pattern_mismatches(std::span(bytes).first(bytes.size() - 1), width, height, width * 4, 300),
              std::uint64_t{width} * height);
    EXPECT_EQ(count_pattern_mismatches(bytes, width, height, width * 4 - 1, 300), std::uint64_t{width} * height);
}

// Forgetting to run gen_vulkan_pattern_spirv.sh after editing the shader fails here, on every
// machine: the header keeps the GLSL it was made from.
TEST(VulkanPatternSpirv, HeaderWasMadeFromTheCommittedGlsl) {
    const std::string glsl = read_file(TEXSHARE_PATTERN_GLSL);
    ASSERT_FALSE(glsl.empty()) << "cannot read " << TEXSHARE_PATTERN_GLSL;
    EXPECT_EQ(glsl, pattern_glsl) << "vulkan_pattern_spirv.hpp is stale: run tests/support/gen_vulkan_pattern_spirv.sh";
}

// Where glslangValidator is installed (Debian: glslang-tools), the words are what it makes of
// the GLSL with the header's arguments (a hand-edited word fails here).
TEST(VulkanPatternSpirv, WordsAreGlslangsOutput) {
    if (run_command("command -v glslangValidator >/dev/null 2>&1").status != 0) {
        // CI installs glslang-tools (scripts/common.sh): there a missing compiler is a failure.
        if (std::getenv("CI") != nullptr) FAIL() << "CI without glslangValidator: scripts/common.sh installs glslang-tools";
        GTEST_SKIP() << "glslangValidator is not installed (Debian: glslang-tools): the SPIR-V words are not recompiled";
    }
    char path[] = "/tmp/texshare-pattern-test.XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    const auto compiled = run_command("glslangValidator " + std::string(pattern_glslang_arguments) + " -o " + path +
                                      " " + TEXSHARE_PATTERN_GLSL + " >/dev/null");
    std::istringstream text(read_file(path));
    std::remove(path);
    ASSERT_EQ(compiled.status, 0) << "glslangValidator failed on " << TEXSHARE_PATTERN_GLSL;
    std::vector<std::uint32_t> words;
    for (std::string line; std::getline(text, line);) {
        if (line.find("//") != std::string::npos) continue;
        std::istringstream items(line);
        for (std::string item; std::getline(items, item, ',');) {
            if (item.find_first_not_of(" \t\r") == std::string::npos) continue;
            words.push_back(static_cast<std::uint32_t>(std::stoul(item, nullptr, 16)));
        }
    }
    ASSERT_FALSE(words.empty());
    EXPECT_EQ(words, std::vector<std::uint32_t>(std::begin(pattern_spirv), std::end(pattern_spirv)))
        << "vulkan_pattern_spirv.hpp differs from glslangValidator's output: run tests/support/gen_vulkan_pattern_spirv.sh";
}

// A device-local image and a host-visible buffer to read it into, on any Vulkan 1.2 device.
class VulkanPattern : public ::testing::Test {
protected:
    void SetUp() override {
        auto vk = TestVulkan::create({});
        if (!vk) GTEST_SKIP() << "no Vulkan device: " << vk.error().message;
        vk_.emplace(std::move(*vk));
        auto queue = TestQueue::create(*vk_);
        ASSERT_TRUE(queue) << queue.error().message;
        queue_.emplace(std::move(*queue));
        device_ = vk_->handles().device;
    }
    void TearDown() override {
        if (queue_) (void)queue_->wait_idle();
        renderer_.reset();
        for (VkImage image : images_) vkDestroyImage(device_, image, nullptr);
        for (VkDeviceMemory memory : memories_) vkFreeMemory(device_, memory, nullptr);
        if (buffer_ != VK_NULL_HANDLE) vkDestroyBuffer(device_, buffer_, nullptr);
        if (buffer_memory_ != VK_NULL_HANDLE) vkFreeMemory(device_, buffer_memory_, nullptr);
        queue_.reset();
        vk_.reset();
    }

    std::uint32_t memory_type(std::uint32_t bits, VkMemoryPropertyFlags wanted) const {
        VkPhysicalDeviceMemoryProperties types{};
        vkGetPhysicalDeviceMemoryProperties(vk_->physical_device(), &types);
        for (std::uint32_t i = 0; i < types.memoryTypeCount; ++i) {
            if ((bits & (1U << i)) != 0 && (types.memoryTypes[i].propertyFlags & wanted) == wanted) return i;
        }
        ADD_FAILURE() << "no memory type with 0x" << std::hex << wanted << " in bits 0x" << bits;
        return 0;
    }

    VkImage make_image(VkExtent2D extent, VkImageTiling tiling) {
        const VkImageCreateInfo info{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                                     nullptr,
                                     0,
                                     VK_IMAGE_TYPE_2D,
                                     VK_FORMAT_R8G8B8A8_UNORM,
                                     {extent.width, extent.height, 1},
                                     1,
                                     1,
                                     VK_SAMPLE_COUNT_1_BIT,
                                     tiling,
                                     VK_IMAGE_USAGE_STORAGE_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT,
                                     VK_SHARING_MODE_EXCLUSIVE,
                                     0,
                                     nullptr,
                                     VK_IMAGE_LAYOUT_UNDEFINED};
        VkImage image = VK_NULL_HANDLE;
        EXPECT_EQ(vkCreateImage(device_, &info, nullptr, &image), VK_SUCCESS);
        images_.push_back(image);
        VkMemoryRequirements needs{};
        vkGetImageMemoryRequirements(device_, image, &needs);
        const VkMemoryAllocateInfo allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, needs.size,
                                            memory_type(needs.memoryTypeBits, 0)};
        VkDeviceMemory memory = VK_NULL_HANDLE;
        EXPECT_EQ(vkAllocateMemory(device_, &allocate, nullptr, &memory), VK_SUCCESS);
        memories_.push_back(memory);
        EXPECT_EQ(vkBindImageMemory(device_, image, memory, 0), VK_SUCCESS);
        return image;
    }

    // Renders `frame` into `image` (its contents discarded: UNDEFINED -> GENERAL) and copies
    // every pixel out, rows packed.
    std::vector<std::uint8_t> render_and_read(VkImage image, VkExtent2D e, std::uint32_t frame) {
        const VkDeviceSize bytes = VkDeviceSize{e.width} * e.height * 4;
        if (buffer_ == VK_NULL_HANDLE) make_buffer(VkDeviceSize{512} * 512 * 4);
        EXPECT_LE(bytes, buffer_bytes_);
        Result<void> recorded;
        auto submitted = queue_->submit(vulkan::Semaphore(), vulkan::Semaphore(), [&](VkCommandBuffer c) {
            const VkImageSubresourceRange color{VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1};
            const VkImageMemoryBarrier to_general{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, nullptr, 0,
                                                  VK_ACCESS_SHADER_WRITE_BIT, VK_IMAGE_LAYOUT_UNDEFINED,
                                                  VK_IMAGE_LAYOUT_GENERAL, VK_QUEUE_FAMILY_IGNORED,
                                                  VK_QUEUE_FAMILY_IGNORED, image, color};
            vkCmdPipelineBarrier(c, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 0,
                                 nullptr, 0, nullptr, 1, &to_general);
            recorded = renderer_->record(c, image, VK_FORMAT_R8G8B8A8_UNORM, e, frame);
            const VkImageMemoryBarrier to_copy{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, nullptr,
                                               VK_ACCESS_SHADER_WRITE_BIT, VK_ACCESS_TRANSFER_READ_BIT,
                                               VK_IMAGE_LAYOUT_GENERAL, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
                                               VK_QUEUE_FAMILY_IGNORED, VK_QUEUE_FAMILY_IGNORED, image, color};
            vkCmdPipelineBarrier(c, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 0, nullptr,
                                 0, nullptr, 1, &to_copy);
            const VkBufferImageCopy region{0, 0, 0, {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1}, {0, 0, 0}, {e.width, e.height, 1}};
            vkCmdCopyImageToBuffer(c, image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, buffer_, 1, &region);
            const VkBufferMemoryBarrier to_host{VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER, nullptr,
                                                VK_ACCESS_TRANSFER_WRITE_BIT, VK_ACCESS_HOST_READ_BIT,
                                                VK_QUEUE_FAMILY_IGNORED, VK_QUEUE_FAMILY_IGNORED, buffer_, 0, bytes};
            vkCmdPipelineBarrier(c, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 0, nullptr, 1,
                                 &to_host, 0, nullptr);
        });
        EXPECT_TRUE(recorded) << recorded.error().message;
        EXPECT_TRUE(submitted) << submitted.error().message;
        auto idle = queue_->wait_idle();
        EXPECT_TRUE(idle) << idle.error().message;
        const auto* mapped = static_cast<const std::uint8_t*>(mapped_);
        return std::vector<std::uint8_t>(mapped, mapped + bytes);
    }

    void make_buffer(VkDeviceSize bytes) {
        const VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, nullptr, 0, bytes,
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT, VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
        ASSERT_EQ(vkCreateBuffer(device_, &info, nullptr, &buffer_), VK_SUCCESS);
        VkMemoryRequirements needs{};
        vkGetBufferMemoryRequirements(device_, buffer_, &needs);
        const VkMemoryAllocateInfo allocate{
            VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, needs.size,
            memory_type(needs.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)};
        ASSERT_EQ(vkAllocateMemory(device_, &allocate, nullptr, &buffer_memory_), VK_SUCCESS);
        ASSERT_EQ(vkBindBufferMemory(device_, buffer_, buffer_memory_, 0), VK_SUCCESS);
        ASSERT_EQ(vkMapMemory(device_, buffer_memory_, 0, bytes, 0, &mapped_), VK_SUCCESS);
        buffer_bytes_ = bytes;
    }

    void expect_exact(VkImageTiling tiling) {
        auto renderer = PatternRenderer::create(device_);
        ASSERT_TRUE(renderer) << renderer.error().message;
        renderer_.emplace(std::move(*renderer));
        // 61x37: neither side a multiple of the shader's 8x8 groups, so the edge checks count.
        for (const VkExtent2D e : {VkExtent2D{64, 64}, VkExtent2D{61, 37}, VkExtent2D{1, 1}, VkExtent2D{300, 7}}) {
            const VkImage image = make_image(e, tiling);
            for (const std::uint32_t frame : {0U, 1U, 2U, 1000U, 0xFFFFFFFFU}) {
                const auto pixels = render_and_read(image, e, frame);
                EXPECT_EQ(count_pattern_mismatches(pixels, e.width, e.height, std::size_t{e.width} * 4, frame), 0U)
                    << e.width << "x" << e.height << " frame " << frame;
                // Spot-check the word form against the same bytes.
                std::uint32_t last = 0;
                std::memcpy(&last, &pixels[pixels.size() - 4], 4);
                EXPECT_EQ(last, expected_pixel(e.width - 1, e.height - 1, frame));
            }
        }
        EXPECT_EQ(renderer_->known_images(), 4U);
    }

    std::optional<TestVulkan> vk_;
    std::optional<TestQueue> queue_;
    std::optional<PatternRenderer> renderer_;
    VkDevice device_ = VK_NULL_HANDLE;
    std::vector<VkImage> images_;
    std::vector<VkDeviceMemory> memories_;
    VkBuffer buffer_ = VK_NULL_HANDLE;
    VkDeviceMemory buffer_memory_ = VK_NULL_HANDLE;
    VkDeviceSize buffer_bytes_ = 0;
    void* mapped_ = nullptr;
};

TEST_F(VulkanPattern, OptimalTilingEveryPixelExact) { expect_exact(VK_IMAGE_TILING_OPTIMAL); }

// What the DMA-BUF export path gives on lavapipe (LINEAR), where the driver can store to it.
TEST_F(VulkanPattern, LinearTilingEveryPixelExact) {
    VkFormatProperties properties{};
    vkGetPhysicalDeviceFormatProperties(vk_->physical_device(), VK_FORMAT_R8G8B8A8_UNORM, &properties);
    if ((properties.linearTilingFeatures & VK_FORMAT_FEATURE_STORAGE_IMAGE_BIT) == 0) {
        GTEST_SKIP() << "this driver cannot store to LINEAR R8G8B8A8_UNORM images";
    }
    expect_exact(VK_IMAGE_TILING_LINEAR);
}

TEST_F(VulkanPattern, RefusesWhatItCannotDraw) {
    EXPECT_EQ(PatternRenderer::create(VK_NULL_HANDLE).error().code, Errc::invalid_argument);
    EXPECT_EQ(PatternRenderer::create(device_, 0).error().code, Errc::invalid_argument);
    auto renderer = PatternRenderer::create(device_, 1);
    ASSERT_TRUE(renderer) << renderer.error().message;
    renderer_.emplace(std::move(*renderer));
    const VkExtent2D e{16, 16};
    const VkImage first = make_image(e, VK_IMAGE_TILING_OPTIMAL);
    const VkImage second = make_image(e, VK_IMAGE_TILING_OPTIMAL);
    auto submitted = queue_->submit(vulkan::Semaphore(), vulkan::Semaphore(), [&](VkCommandBuffer c) {
        const auto format = renderer_->record(c, first, VK_FORMAT_B8G8R8A8_UNORM, e, 0);
        ASSERT_FALSE(format);
        EXPECT_EQ(format.error().code, Errc::unsupported);
        EXPECT_NE(format.error().message.find("R8G8B8A8_UNORM"), std::string::npos) << format.error().message;
        EXPECT_EQ(renderer_->record(c, first, VK_FORMAT_R8G8B8A8_UNORM, {0, 16}, 0).error().code, Errc::invalid_argument);
        EXPECT_EQ(renderer_->record(c, VK_NULL_HANDLE, VK_FORMAT_R8G8B8A8_UNORM, e, 0).error().code,
                  Errc::invalid_argument);
        EXPECT_EQ(renderer_->known_images(), 0U);  // nothing made for refused calls
    });
    ASSERT_TRUE(submitted) << submitted.error().message;
    ASSERT_TRUE(queue_->wait_idle());
    // One slot: a second image waits until the first is forgotten.
    auto pixels = render_and_read(first, e, 5);
    EXPECT_EQ(count_pattern_mismatches(pixels, e.width, e.height, e.width * 4, 5), 0U);
    auto full = queue_->submit(vulkan::Semaphore(), vulkan::Semaphore(), [&](VkCommandBuffer c) {
        const auto refused = renderer_->record(c, second, VK_FORMAT_R8G8B8A8_UNORM, e, 0);
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    });
    ASSERT_TRUE(full);
    ASSERT_TRUE(queue_->wait_idle());
    renderer_->forget(first);
    EXPECT_EQ(renderer_->known_images(), 0U);
    pixels = render_and_read(second, e, 6);
    EXPECT_EQ(count_pattern_mismatches(pixels, e.width, e.height, e.width * 4, 6), 0U);
}

}  // namespace
}  // namespace texshare::testing
