// VM lane, 6.12 guest only (TEXSHARE_VM_BACKPORTS_TESTS): colour per image (issue 16 item 5)
// across two processes. The producer writes an NV12 frame into a DMA-BUF from the system heap,
// labels it BT.709 limited range (and the same bytes a second time as BT.601 full range) and
// shares both through the image descriptor; the consumer reads each image's ColorInfo as it
// arrived, builds lavapipe's VkSamplerYcbcrConversion from it with
// vulkan::ycbcr_conversion_info(), samples the frame to RGB in a compute shader, and compares
// every pixel of each patch's interior with the reference below within +-2 (of 255).
//
// Mesa 25.0.7's lavapipe imports no NV12 DMA-BUF (docs/vm-lane-facts.md: the format query
// answers VK_ERROR_FORMAT_NOT_SUPPORTED, LINEAR or DRM-modifier, one buffer or disjoint), so
// the consumer uploads the DMA-BUF's two planes (read through its mapping) into an
// OPTIMAL-tiling NV12 image; the test asserts and prints what lavapipe offers for NV12.
//
// Reference (ITU-R BT.709 / BT.601, the Vulkan spec's "Y'CbCr Model Conversion" and "Y'CbCr
// Range Expansion" for 8 bits):
//   limited: Y' = (Y - 16) / 219,  Pb = (Cb - 128) / 224,  Pr = (Cr - 128) / 224
//   full:    Y' = Y / 255,         Pb = (Cb - 128) / 255,  Pr = (Cr - 128) / 255
//   R = Y' + 2 (1 - Kr) Pr
//   G = Y' - 2 Kb (1 - Kb) / Kg * Pb - 2 Kr (1 - Kr) / Kg * Pr
//   B = Y' + 2 (1 - Kb) Pb
//   with Kg = 1 - Kr - Kb; BT.709: Kr 0.2126, Kb 0.0722; BT.601: Kr 0.299, Kb 0.114;
//   each clamped to [0, 1] and scaled by 255.
// Every 2x2 block of a patch has the same Cb/Cr, and only pixels at least 2 from a patch's edge
// are compared, so chroma siting and filtering cannot move the expected value.
#include <gtest/gtest.h>
#include <vulkan/vulkan.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "support/two_process.hpp"
#include "texshare/dma_heap_allocator.hpp"
#include "texshare/image_wire.hpp"
#include "texshare/vulkan/device.hpp"
#include "texshare/vulkan/ycbcr.hpp"
#include "vm/ycbcr_sample_spv.hpp"

namespace texshare {
namespace {

using testing::Peer;
using testing::run_pair;
using testing::value_or_fail;

constexpr std::uint32_t width = 64;
constexpr std::uint32_t height = 64;
constexpr std::uint32_t patch = 16;  // 4 x 4 patches of 16 x 16 pixels

struct Yuv {
    std::uint8_t y, cb, cr;
};
// Black, white, grey, the primaries and secondaries at 75 %, a few in between.
constexpr std::array<Yuv, 16> patches{{{16, 128, 128},
                                       {235, 128, 128},
                                       {126, 128, 128},
                                       {63, 102, 240},
                                       {173, 42, 26},
                                       {32, 240, 118},
                                       {188, 154, 16},
                                       {78, 214, 230},
                                       {145, 54, 34},
                                       {100, 100, 150},
                                       {200, 90, 170},
                                       {50, 180, 80},
                                       {120, 60, 200},
                                       {220, 140, 110},
                                       {90, 200, 60},
                                       {160, 110, 140}}};

struct Rgb {
    double r, g, b;  // 0..255
};

// The formula of the header comment.
Rgb reference(Yuv v, YuvMatrix matrix, YuvRange range) {
    const double kr = matrix == YuvMatrix::bt709 ? 0.2126 : 0.299;
    const double kb = matrix == YuvMatrix::bt709 ? 0.0722 : 0.114;
    const double kg = 1.0 - kr - kb;
    const bool limited = range == YuvRange::limited;
    const double y = limited ? (v.y - 16.0) / 219.0 : v.y / 255.0;
    const double pb = (v.cb - 128.0) / (limited ? 224.0 : 255.0);
    const double pr = (v.cr - 128.0) / (limited ? 224.0 : 255.0);
    const auto unit = [](double x) { return std::clamp(x, 0.0, 1.0) * 255.0; };
    return {unit(y + 2 * (1 - kr) * pr), unit(y - 2 * kb * (1 - kb) / kg * pb - 2 * kr * (1 - kr) / kg * pr),
            unit(y + 2 * (1 - kb) * pb)};
}

const Yuv& patch_at(std::uint32_t x, std::uint32_t y) {
    return patches[(y / patch) * 4 + x / patch];
}

// The producer's frame: Y per pixel, Cb/Cr per 2x2 block, through the image's mapping.
void write_frame(const DmaBufImage& image) {
    auto mapping = image.map(Access::write);
    ASSERT_TRUE(mapping) << mapping.error().message;
    for (std::uint32_t y = 0; y < height; ++y) {
        for (std::uint32_t x = 0; x < width; ++x) {
            mapping->plane(0)[std::size_t{y} * mapping->stride(0) + x] = std::byte{patch_at(x, y).y};
        }
    }
    for (std::uint32_t y = 0; y < height / 2; ++y) {
        for (std::uint32_t x = 0; x < width / 2; ++x) {
            const std::size_t at = std::size_t{y} * mapping->stride(1) + 2 * x;
            mapping->plane(1)[at] = std::byte{patch_at(2 * x, 2 * y).cb};
            mapping->plane(1)[at + 1] = std::byte{patch_at(2 * x, 2 * y).cr};
        }
    }
    ASSERT_TRUE(mapping->finish());
}

ColorInfo video(YuvMatrix matrix, YuvRange range) {
    ColorInfo c;
    c.matrix = matrix;
    c.range = range;
    c.chroma_horizontal = ChromaSiting::cosited;
    // Cosited both ways: Mesa 25.0.7's lavapipe lists VK_FORMAT_FEATURE_COSITED_CHROMA_SAMPLES_BIT
    // for NV12 but not MIDPOINT, and a conversion with a midpoint offset there breaks
    // VUID-VkSamplerYcbcrConversionCreateInfo-xChromaOffset-01651.
    c.chroma_vertical = ChromaSiting::cosited;
    c.transfer = TransferFunction::bt709;
    c.primaries = ColorPrimaries::bt709;
    return c;
}

#define VK_OK(call)                                                                                \
    do {                                                                                           \
        const VkResult vk_ok_result = (call);                                                      \
        ASSERT_EQ(vk_ok_result, VK_SUCCESS) << #call << ": " << vulkan::result_name(vk_ok_result); \
    } while (false)

// The consumer's Vulkan: an instance and a device with samplerYcbcrConversion, and what the
// test creates on it. Everything is destroyed with the process (each side is a child).
struct Gpu {
    VkInstance instance = VK_NULL_HANDLE;
    VkPhysicalDevice physical = VK_NULL_HANDLE;
    VkDevice device = VK_NULL_HANDLE;
    VkQueue queue = VK_NULL_HANDLE;
    std::uint32_t family = 0;
    bool dma_buf = false;  // VK_EXT_external_memory_dma_buf enabled
    VkPhysicalDeviceMemoryProperties memory{};

    std::uint32_t memory_type(std::uint32_t bits, VkMemoryPropertyFlags wanted) const {
        for (std::uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
            if ((bits & (1U << i)) != 0 && (memory.memoryTypes[i].propertyFlags & wanted) == wanted) return i;
        }
        ADD_FAILURE() << "no memory type for bits 0x" << std::hex << bits;
        return 0;
    }
};

void create_gpu(Gpu& gpu) {
    const VkApplicationInfo app{
        VK_STRUCTURE_TYPE_APPLICATION_INFO, nullptr, "texshare ycbcr", 1, "texshare", 1, VK_API_VERSION_1_1};
    const VkInstanceCreateInfo instance_info{
        VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, nullptr, 0, &app, 0, nullptr, 0, nullptr};
    VK_OK(vkCreateInstance(&instance_info, nullptr, &gpu.instance));
    std::uint32_t count = 1;
    const VkResult listed = vkEnumeratePhysicalDevices(gpu.instance, &count, &gpu.physical);
    ASSERT_TRUE(listed == VK_SUCCESS || listed == VK_INCOMPLETE) << vulkan::result_name(listed);
    ASSERT_EQ(count, 1U) << "no Vulkan device";
    VkPhysicalDeviceProperties properties{};
    vkGetPhysicalDeviceProperties(gpu.physical, &properties);
    VkPhysicalDeviceSamplerYcbcrConversionFeatures ycbcr{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SAMPLER_YCBCR_CONVERSION_FEATURES, nullptr, VK_FALSE};
    VkPhysicalDeviceFeatures2 features{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &ycbcr, {}};
    vkGetPhysicalDeviceFeatures2(gpu.physical, &features);
    std::printf("ycbcr: %s, samplerYcbcrConversion %u\n", properties.deviceName,
                ycbcr.samplerYcbcrConversion);
    ASSERT_EQ(ycbcr.samplerYcbcrConversion, VK_TRUE)
        << properties.deviceName << " has no samplerYcbcrConversion";
    vkGetPhysicalDeviceQueueFamilyProperties(gpu.physical, &count, nullptr);
    std::vector<VkQueueFamilyProperties> families(count);
    vkGetPhysicalDeviceQueueFamilyProperties(gpu.physical, &count, families.data());
    while (gpu.family < count && (families[gpu.family].queueFlags & VK_QUEUE_COMPUTE_BIT) == 0) ++gpu.family;
    ASSERT_LT(gpu.family, count) << "no compute queue";
    const float priority = 1.0F;
    const VkDeviceQueueCreateInfo queue_info{
        VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, nullptr, 0, gpu.family, 1, &priority};
    VkPhysicalDeviceSamplerYcbcrConversionFeatures enable{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SAMPLER_YCBCR_CONVERSION_FEATURES, nullptr, VK_TRUE};
    // The DMA-BUF extensions only for measure_nv12's questions about DMA-BUF images.
    std::uint32_t offered_count = 0;
    vkEnumerateDeviceExtensionProperties(gpu.physical, nullptr, &offered_count, nullptr);
    std::vector<VkExtensionProperties> offered(offered_count);
    vkEnumerateDeviceExtensionProperties(gpu.physical, nullptr, &offered_count, offered.data());
    std::vector<const char*> extensions;
    for (const char* name :
         {VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME, VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME}) {
        if (std::ranges::any_of(offered, [&](const VkExtensionProperties& e) {
                return std::strcmp(e.extensionName, name) == 0;
            })) {
            extensions.push_back(name);
        }
    }
    gpu.dma_buf = extensions.size() == 2;
    const VkDeviceCreateInfo device_info{
        VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,          &enable,           0,      1, &queue_info, 0, nullptr,
        static_cast<std::uint32_t>(extensions.size()), extensions.data(), nullptr};
    VK_OK(vkCreateDevice(gpu.physical, &device_info, nullptr, &gpu.device));
    vkGetDeviceQueue(gpu.device, gpu.family, 0, &gpu.queue);
    vkGetPhysicalDeviceMemoryProperties(gpu.physical, &gpu.memory);
}

// What lavapipe offers for NV12, printed for docs/vm-lane-facts.md: the format features of
// both tilings, and whether a LINEAR DMA-BUF image of it may exist at all. Gives the chroma
// filter to use: LINEAR where the format can filter through the conversion, else NEAREST.
VkFilter measure_nv12(const Gpu& gpu) {
    VkFormatProperties properties{};
    vkGetPhysicalDeviceFormatProperties(gpu.physical, VK_FORMAT_G8_B8R8_2PLANE_420_UNORM, &properties);
    std::printf("ycbcr: NV12 optimalTilingFeatures 0x%x linearTilingFeatures 0x%x\n",
                properties.optimalTilingFeatures, properties.linearTilingFeatures);
    EXPECT_NE(properties.optimalTilingFeatures & VK_FORMAT_FEATURE_SAMPLED_IMAGE_BIT, 0U);
    EXPECT_NE(properties.optimalTilingFeatures & VK_FORMAT_FEATURE_TRANSFER_DST_BIT, 0U);
    const VkFilter filter = (properties.optimalTilingFeatures &
                             VK_FORMAT_FEATURE_SAMPLED_IMAGE_YCBCR_CONVERSION_LINEAR_FILTER_BIT) != 0
                                ? VK_FILTER_LINEAR
                                : VK_FILTER_NEAREST;
    EXPECT_TRUE(gpu.dma_buf) << "the guest's lavapipe has VK_EXT_external_memory_dma_buf";
    if (!gpu.dma_buf) return filter;
    EXPECT_NE(properties.optimalTilingFeatures & VK_FORMAT_FEATURE_COSITED_CHROMA_SAMPLES_BIT, 0U);
    std::printf(
        "ycbcr: NV12 chroma samples: cosited %s, midpoint %s\n",
        (properties.optimalTilingFeatures & VK_FORMAT_FEATURE_COSITED_CHROMA_SAMPLES_BIT) != 0 ? "yes" : "no",
        (properties.optimalTilingFeatures & VK_FORMAT_FEATURE_MIDPOINT_CHROMA_SAMPLES_BIT) != 0 ? "yes"
                                                                                                : "no");
    const VkPhysicalDeviceExternalImageFormatInfo external{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_IMAGE_FORMAT_INFO, nullptr,
        VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
    const VkPhysicalDeviceImageFormatInfo2 info{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_FORMAT_INFO_2,
                                                &external,
                                                VK_FORMAT_G8_B8R8_2PLANE_420_UNORM,
                                                VK_IMAGE_TYPE_2D,
                                                VK_IMAGE_TILING_LINEAR,
                                                VK_IMAGE_USAGE_SAMPLED_BIT,
                                                0};
    VkImageFormatProperties2 answer{VK_STRUCTURE_TYPE_IMAGE_FORMAT_PROPERTIES_2, nullptr, {}};
    const VkResult linear_dma_buf = vkGetPhysicalDeviceImageFormatProperties2(gpu.physical, &info, &answer);
    std::printf("ycbcr: NV12 LINEAR sampled image from a DMA-BUF: %s\n",
                vulkan::result_name(linear_dma_buf).c_str());
    // Where lavapipe puts the planes of a LINEAR 64x64 NV12 image: a DMA-BUF imports into it
    // (without VK_EXT_image_drm_format_modifier's explicit layout) only if its planes lie there.
    const VkExternalMemoryImageCreateInfo external_image{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
                                                         nullptr,
                                                         VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
    const VkImageCreateInfo linear_info{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                                        &external_image,
                                        0,
                                        VK_IMAGE_TYPE_2D,
                                        VK_FORMAT_G8_B8R8_2PLANE_420_UNORM,
                                        {width, height, 1},
                                        1,
                                        1,
                                        VK_SAMPLE_COUNT_1_BIT,
                                        VK_IMAGE_TILING_LINEAR,
                                        VK_IMAGE_USAGE_SAMPLED_BIT,
                                        VK_SHARING_MODE_EXCLUSIVE,
                                        0,
                                        nullptr,
                                        VK_IMAGE_LAYOUT_PREINITIALIZED};
    VkImage linear = VK_NULL_HANDLE;
    const VkResult created = vkCreateImage(gpu.device, &linear_info, nullptr, &linear);
    std::printf("ycbcr: vkCreateImage(NV12, LINEAR, external DMA-BUF): %s\n",
                vulkan::result_name(created).c_str());
    if (created == VK_SUCCESS) {
        for (VkImageAspectFlagBits aspect : {VK_IMAGE_ASPECT_PLANE_0_BIT, VK_IMAGE_ASPECT_PLANE_1_BIT}) {
            const VkImageSubresource subresource{static_cast<VkImageAspectFlags>(aspect), 0, 0};
            VkSubresourceLayout layout{};
            vkGetImageSubresourceLayout(gpu.device, linear, &subresource, &layout);
            std::printf("ycbcr: LINEAR NV12 64x64 plane %d: offset %llu rowPitch %llu size %llu\n",
                        aspect == VK_IMAGE_ASPECT_PLANE_0_BIT ? 0 : 1,
                        static_cast<unsigned long long>(layout.offset),
                        static_cast<unsigned long long>(layout.rowPitch),
                        static_cast<unsigned long long>(layout.size));
        }
        vkDestroyImage(gpu.device, linear, nullptr);
    }
    return filter;
}

struct Sampled {
    std::vector<float> rgba;  // width * height * 4, 0..1
};

// Uploads `image`'s planes (read through its mapping) into an OPTIMAL NV12 image and samples
// it through the Y'CbCr conversion `conversion_info` describes.
void sample(const Gpu& gpu, const DmaBufImage& image,
            const VkSamplerYcbcrConversionCreateInfo& conversion_info, Sampled& out) {
    const VkDevice dev = gpu.device;
    // Staging: the Y plane then the CbCr plane, rows packed.
    const VkDeviceSize y_bytes = VkDeviceSize{width} * height;
    const VkDeviceSize staging_bytes = y_bytes + y_bytes / 2;
    const VkDeviceSize output_bytes = VkDeviceSize{width} * height * 4 * sizeof(float);
    const auto make_buffer = [&](VkDeviceSize size, VkBufferUsageFlags usage, VkBuffer& buffer,
                                 VkDeviceMemory& memory, void*& mapped) {
        const VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                                      nullptr,
                                      0,
                                      size,
                                      usage,
                                      VK_SHARING_MODE_EXCLUSIVE,
                                      0,
                                      nullptr};
        VK_OK(vkCreateBuffer(dev, &info, nullptr, &buffer));
        VkMemoryRequirements needs{};
        vkGetBufferMemoryRequirements(dev, buffer, &needs);
        const VkMemoryAllocateInfo allocate{
            VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, needs.size,
            gpu.memory_type(needs.memoryTypeBits,
                            VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)};
        VK_OK(vkAllocateMemory(dev, &allocate, nullptr, &memory));
        VK_OK(vkBindBufferMemory(dev, buffer, memory, 0));
        VK_OK(vkMapMemory(dev, memory, 0, VK_WHOLE_SIZE, 0, &mapped));
    };
    VkBuffer staging = VK_NULL_HANDLE, output = VK_NULL_HANDLE;
    VkDeviceMemory staging_memory = VK_NULL_HANDLE, output_memory = VK_NULL_HANDLE;
    void* staging_map = nullptr;
    void* output_map = nullptr;
    make_buffer(staging_bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, staging, staging_memory, staging_map);
    make_buffer(output_bytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, output, output_memory, output_map);
    {
        auto mapping = image.map(Access::read);
        ASSERT_TRUE(mapping) << mapping.error().message;
        auto* bytes = static_cast<std::byte*>(staging_map);
        for (std::uint32_t y = 0; y < height; ++y) {
            std::memcpy(bytes + std::size_t{y} * width,
                        &mapping->plane(0)[std::size_t{y} * mapping->stride(0)], width);
        }
        for (std::uint32_t y = 0; y < height / 2; ++y) {
            std::memcpy(bytes + y_bytes + std::size_t{y} * width,
                        &mapping->plane(1)[std::size_t{y} * mapping->stride(1)], width);
        }
        ASSERT_TRUE(mapping->finish());
    }

    VkSamplerYcbcrConversion conversion = VK_NULL_HANDLE;
    VK_OK(vkCreateSamplerYcbcrConversion(dev, &conversion_info, nullptr, &conversion));
    const VkSamplerYcbcrConversionInfo use_conversion{VK_STRUCTURE_TYPE_SAMPLER_YCBCR_CONVERSION_INFO,
                                                      nullptr, conversion};
    const VkImageCreateInfo image_info{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                                       nullptr,
                                       0,
                                       VK_IMAGE_TYPE_2D,
                                       conversion_info.format,
                                       {width, height, 1},
                                       1,
                                       1,
                                       VK_SAMPLE_COUNT_1_BIT,
                                       VK_IMAGE_TILING_OPTIMAL,
                                       VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT,
                                       VK_SHARING_MODE_EXCLUSIVE,
                                       0,
                                       nullptr,
                                       VK_IMAGE_LAYOUT_UNDEFINED};
    VkImage nv12 = VK_NULL_HANDLE;
    VK_OK(vkCreateImage(dev, &image_info, nullptr, &nv12));
    VkMemoryRequirements needs{};
    vkGetImageMemoryRequirements(dev, nv12, &needs);
    const VkMemoryAllocateInfo image_allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, needs.size,
                                              gpu.memory_type(needs.memoryTypeBits, 0)};
    VkDeviceMemory image_memory = VK_NULL_HANDLE;
    VK_OK(vkAllocateMemory(dev, &image_allocate, nullptr, &image_memory));
    VK_OK(vkBindImageMemory(dev, nv12, image_memory, 0));
    const VkImageViewCreateInfo view_info{VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO,
                                          &use_conversion,
                                          0,
                                          nv12,
                                          VK_IMAGE_VIEW_TYPE_2D,
                                          conversion_info.format,
                                          {},
                                          {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
    VkImageView view = VK_NULL_HANDLE;
    VK_OK(vkCreateImageView(dev, &view_info, nullptr, &view));
    VkSamplerCreateInfo sampler_info{};
    sampler_info.sType = VK_STRUCTURE_TYPE_SAMPLER_CREATE_INFO;
    sampler_info.pNext = &use_conversion;
    sampler_info.magFilter = sampler_info.minFilter = conversion_info.chromaFilter;
    sampler_info.addressModeU = sampler_info.addressModeV = sampler_info.addressModeW =
        VK_SAMPLER_ADDRESS_MODE_CLAMP_TO_EDGE;
    VkSampler sampler = VK_NULL_HANDLE;
    VK_OK(vkCreateSampler(dev, &sampler_info, nullptr, &sampler));

    const std::array<VkDescriptorSetLayoutBinding, 2> bindings{
        {{0, VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER, 1, VK_SHADER_STAGE_COMPUTE_BIT, &sampler},
         {1, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr}}};
    const VkDescriptorSetLayoutCreateInfo set_layout_info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                                          nullptr, 0, 2, bindings.data()};
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    VK_OK(vkCreateDescriptorSetLayout(dev, &set_layout_info, nullptr, &set_layout));
    const VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, 8};
    const VkPipelineLayoutCreateInfo pipeline_layout_info{
        VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, nullptr, 0, 1, &set_layout, 1, &push};
    VkPipelineLayout pipeline_layout = VK_NULL_HANDLE;
    VK_OK(vkCreatePipelineLayout(dev, &pipeline_layout_info, nullptr, &pipeline_layout));
    const VkShaderModuleCreateInfo module_info{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, nullptr, 0,
                                               sizeof testing::ycbcr_sample_spv, testing::ycbcr_sample_spv};
    VkShaderModule module = VK_NULL_HANDLE;
    VK_OK(vkCreateShaderModule(dev, &module_info, nullptr, &module));
    const VkComputePipelineCreateInfo pipeline_info{
        VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        nullptr,
        0,
        {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, nullptr, 0, VK_SHADER_STAGE_COMPUTE_BIT, module,
         "main", nullptr},
        pipeline_layout,
        VK_NULL_HANDLE,
        0};
    VkPipeline pipeline = VK_NULL_HANDLE;
    VK_OK(vkCreateComputePipelines(dev, VK_NULL_HANDLE, 1, &pipeline_info, nullptr, &pipeline));
    // A combined image sampler with a Y'CbCr conversion may take more than one descriptor
    // (VkSamplerYcbcrConversionImageFormatProperties::combinedImageSamplerDescriptorCount, at most 3).
    const std::array<VkDescriptorPoolSize, 2> sizes{
        {{VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER, 3}, {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1}}};
    const VkDescriptorPoolCreateInfo pool_info{
        VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, nullptr, 0, 1, 2, sizes.data()};
    VkDescriptorPool pool = VK_NULL_HANDLE;
    VK_OK(vkCreateDescriptorPool(dev, &pool_info, nullptr, &pool));
    const VkDescriptorSetAllocateInfo set_info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO, nullptr, pool,
                                               1, &set_layout};
    VkDescriptorSet set = VK_NULL_HANDLE;
    VK_OK(vkAllocateDescriptorSets(dev, &set_info, &set));
    const VkDescriptorImageInfo image_descriptor{VK_NULL_HANDLE, view,
                                                 VK_IMAGE_LAYOUT_SHADER_READ_ONLY_OPTIMAL};
    const VkDescriptorBufferInfo buffer_descriptor{output, 0, VK_WHOLE_SIZE};
    const std::array<VkWriteDescriptorSet, 2> writes{
        {{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, nullptr, set, 0, 0, 1,
          VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER, &image_descriptor, nullptr, nullptr},
         {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, nullptr, set, 1, 0, 1, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
          nullptr, &buffer_descriptor, nullptr}}};
    vkUpdateDescriptorSets(dev, 2, writes.data(), 0, nullptr);

    const VkCommandPoolCreateInfo command_pool_info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, nullptr, 0,
                                                    gpu.family};
    VkCommandPool command_pool = VK_NULL_HANDLE;
    VK_OK(vkCreateCommandPool(dev, &command_pool_info, nullptr, &command_pool));
    const VkCommandBufferAllocateInfo command_info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, nullptr,
                                                   command_pool, VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
    VkCommandBuffer commands = VK_NULL_HANDLE;
    VK_OK(vkAllocateCommandBuffers(dev, &command_info, &commands));
    const VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, nullptr,
                                         VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, nullptr};
    VK_OK(vkBeginCommandBuffer(commands, &begin));
    const auto barrier = [&](VkImageLayout from, VkImageLayout to, VkAccessFlags src, VkAccessFlags dst,
                             VkPipelineStageFlags src_stage, VkPipelineStageFlags dst_stage) {
        const VkImageMemoryBarrier b{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER,
                                     nullptr,
                                     src,
                                     dst,
                                     from,
                                     to,
                                     VK_QUEUE_FAMILY_IGNORED,
                                     VK_QUEUE_FAMILY_IGNORED,
                                     nv12,
                                     {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
        vkCmdPipelineBarrier(commands, src_stage, dst_stage, 0, 0, nullptr, 0, nullptr, 1, &b);
    };
    barrier(VK_IMAGE_LAYOUT_UNDEFINED, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 0, VK_ACCESS_TRANSFER_WRITE_BIT,
            VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT);
    const std::array<VkBufferImageCopy, 2> regions{
        {{0, 0, 0, {VK_IMAGE_ASPECT_PLANE_0_BIT, 0, 0, 1}, {0, 0, 0}, {width, height, 1}},
         {y_bytes, 0, 0, {VK_IMAGE_ASPECT_PLANE_1_BIT, 0, 0, 1}, {0, 0, 0}, {width / 2, height / 2, 1}}}};
    vkCmdCopyBufferToImage(commands, staging, nv12, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 2, regions.data());
    barrier(VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_IMAGE_LAYOUT_SHADER_READ_ONLY_OPTIMAL,
            VK_ACCESS_TRANSFER_WRITE_BIT, VK_ACCESS_SHADER_READ_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT);
    vkCmdBindPipeline(commands, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
    vkCmdBindDescriptorSets(commands, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline_layout, 0, 1, &set, 0,
                            nullptr);
    const std::array<std::uint32_t, 2> size{width, height};
    vkCmdPushConstants(commands, pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 8, size.data());
    vkCmdDispatch(commands, width / 8, height / 8, 1);
    const VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_SHADER_WRITE_BIT,
                                  VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                         &to_host, 0, nullptr, 0, nullptr);
    VK_OK(vkEndCommandBuffer(commands));
    const VkSubmitInfo submit{
        VK_STRUCTURE_TYPE_SUBMIT_INFO, nullptr, 0, nullptr, nullptr, 1, &commands, 0, nullptr};
    VK_OK(vkQueueSubmit(gpu.queue, 1, &submit, VK_NULL_HANDLE));
    VK_OK(vkQueueWaitIdle(gpu.queue));
    out.rgba.resize(std::size_t{width} * height * 4);
    std::memcpy(out.rgba.data(), output_map, output_bytes);

    vkDestroyCommandPool(dev, command_pool, nullptr);
    vkDestroyDescriptorPool(dev, pool, nullptr);
    vkDestroyPipeline(dev, pipeline, nullptr);
    vkDestroyShaderModule(dev, module, nullptr);
    vkDestroyPipelineLayout(dev, pipeline_layout, nullptr);
    vkDestroyDescriptorSetLayout(dev, set_layout, nullptr);
    vkDestroySampler(dev, sampler, nullptr);
    vkDestroyImageView(dev, view, nullptr);
    vkDestroyImage(dev, nv12, nullptr);
    vkFreeMemory(dev, image_memory, nullptr);
    vkDestroySamplerYcbcrConversion(dev, conversion, nullptr);
    for (VkBuffer b : {staging, output}) vkDestroyBuffer(dev, b, nullptr);
    for (VkDeviceMemory m : {staging_memory, output_memory}) vkFreeMemory(dev, m, nullptr);
}

// Every pixel at least 2 from its patch's edge within +-2 of the reference; the worst
// difference is printed.
void expect_reference(const Sampled& sampled, YuvMatrix matrix, YuvRange range, const char* what) {
    double worst = 0;
    std::size_t compared = 0;
    for (std::uint32_t y = 0; y < height; ++y) {
        for (std::uint32_t x = 0; x < width; ++x) {
            if (x % patch < 2 || x % patch >= patch - 2 || y % patch < 2 || y % patch >= patch - 2) continue;
            const Rgb want = reference(patch_at(x, y), matrix, range);
            const float* got = &sampled.rgba[(std::size_t{y} * width + x) * 4];
            // lavapipe returns the conversion's out-of-gamut results unclamped (-18.3 of 255
            // for a saturated green's red); a UNORM render target clamps them, and so does this.
            const auto stored = [](float v) { return std::clamp(static_cast<double>(v), 0.0, 1.0) * 255.0; };
            const std::array<double, 3> diff{std::abs(stored(got[0]) - want.r),
                                             std::abs(stored(got[1]) - want.g),
                                             std::abs(stored(got[2]) - want.b)};
            const double d = *std::ranges::max_element(diff);
            worst = std::max(worst, d);
            ++compared;
            ASSERT_LE(d, 2.0) << what << " at (" << x << ", " << y << "): got " << got[0] * 255 << " "
                              << got[1] * 255 << " " << got[2] * 255 << ", reference " << want.r << " "
                              << want.g << " " << want.b;
        }
    }
    std::printf("ycbcr: %s: %zu pixels within %.3f of the reference\n", what, compared, worst);
}

using VulkanYcbcrVmTest = testing::FdLeakTest;

TEST_F(VulkanYcbcrVmTest, Nv12Bt709LimitedFromAPeerSamplesToTheReferenceRgb) {
    run_pair(
        [](Peer& peer) {
            auto heap = value_or_fail(DmaHeapAllocator::open(), "open the system heap");
            ASSERT_TRUE(heap);
            for (const auto& [id, color] :
                 {std::pair{std::uint64_t{1}, video(YuvMatrix::bt709, YuvRange::limited)},
                  std::pair{std::uint64_t{2}, video(YuvMatrix::bt601, YuvRange::full)}}) {
                auto image =
                    value_or_fail(heap->allocate(width, height, DRM_FORMAT_NV12), "NV12 from the heap");
                ASSERT_TRUE(image);
                write_frame(*image);
                ASSERT_TRUE(image->set_color(color));
                auto sent = send_image(peer.images, id, *image);
                ASSERT_TRUE(sent) << sent.error().message;
            }
        },
        [](Peer& peer) {
            Gpu gpu;
            ASSERT_NO_FATAL_FAILURE(create_gpu(gpu));
            const VkFilter filter = measure_nv12(gpu);
            std::array<Sampled, 2> sampled;
            for (Sampled& result : sampled) {
                auto received = receive_image(peer.images);
                ASSERT_TRUE(received) << received.error().message;
                EXPECT_EQ(received->image.backing(), Backing::dma_buf);
                // The conversion is built from the colour as it arrived, nothing else.
                auto info =
                    vulkan::ycbcr_conversion_info(received->image.color(), received->image.fourcc(), filter);
                ASSERT_TRUE(info) << info.error().message;
                ASSERT_NO_FATAL_FAILURE(sample(gpu, received->image, *info, result));
            }
            expect_reference(sampled[0], YuvMatrix::bt709, YuvRange::limited, "image 1, BT.709 limited");
            expect_reference(sampled[1], YuvMatrix::bt601, YuvRange::full,
                             "image 2 (same bytes), BT.601 full");
            // The two labels give different RGB for the same bytes (white: 235 limited is 255, full 235).
            const float* white1 = &sampled[0].rgba[(std::size_t{8} * width + 24) * 4];
            const float* white2 = &sampled[1].rgba[(std::size_t{8} * width + 24) * 4];
            EXPECT_GT(std::abs(white1[0] - white2[0]) * 255, 10)
                << "the colour on the wire drives the conversion";
            vkDestroyDevice(gpu.device, nullptr);
            vkDestroyInstance(gpu.instance, nullptr);
        });
}

}  // namespace
}  // namespace texshare
