// vulkan/format.hpp: every format texshare knows has a Vulkan format, and each mapping shows
// the DRM format's channels where Vulkan's views expect them.
#include "texshare/vulkan/format.hpp"

#include <gtest/gtest.h>

#include <string_view>

#include "texshare/format.hpp"

namespace texshare::vulkan {
namespace {

TEST(VulkanFormatTest, EveryKnownFormatHasOneMappingInTheSameOrder) {
    const auto known = known_formats();
    const auto mappings = format_mappings();
    ASSERT_EQ(mappings.size(), known.size());
    for (std::size_t i = 0; i < known.size(); ++i) {
        EXPECT_EQ(mappings[i].fourcc, known[i].fourcc) << known[i].name;
        EXPECT_NE(mappings[i].format, VK_FORMAT_UNDEFINED) << known[i].name;
        EXPECT_EQ(find_mapping(known[i].fourcc), &mappings[i]);
        EXPECT_EQ(vulkan_format(known[i].fourcc), mappings[i].format);
    }
}

TEST(VulkanFormatTest, UnknownFourccsHaveNoFormat) {
    EXPECT_EQ(find_mapping(DRM_FORMAT_NV21), nullptr);
    EXPECT_EQ(vulkan_format(0x12345678), VK_FORMAT_UNDEFINED);
    EXPECT_EQ(drm_format(VK_FORMAT_D32_SFLOAT), DRM_FORMAT_INVALID);
}

TEST(VulkanFormatTest, TheCommonFormatsMapAsWlrootsAndMesaDo) {
    EXPECT_EQ(vulkan_format(DRM_FORMAT_ARGB8888), VK_FORMAT_B8G8R8A8_UNORM);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_XRGB8888), VK_FORMAT_B8G8R8A8_UNORM);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_ABGR8888), VK_FORMAT_R8G8B8A8_UNORM);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_XBGR8888), VK_FORMAT_R8G8B8A8_UNORM);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_ARGB2101010), VK_FORMAT_A2R10G10B10_UNORM_PACK32);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_ABGR2101010), VK_FORMAT_A2B10G10R10_UNORM_PACK32);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_ABGR16161616F), VK_FORMAT_R16G16B16A16_SFLOAT);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_RGB888), VK_FORMAT_B8G8R8_UNORM);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_RGB565), VK_FORMAT_R5G6B5_UNORM_PACK16);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_R8), VK_FORMAT_R8_UNORM);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_GR88), VK_FORMAT_R8G8_UNORM);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_NV12), VK_FORMAT_G8_B8R8_2PLANE_420_UNORM);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_P010), VK_FORMAT_G10X6_B10X6R10X6_2PLANE_420_UNORM_3PACK16);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_YUV420), VK_FORMAT_G8_B8_R8_3PLANE_420_UNORM);
    EXPECT_EQ(vulkan_format(DRM_FORMAT_YVU420), VK_FORMAT_G8_B8_R8_3PLANE_420_UNORM);
    EXPECT_TRUE(find_mapping(DRM_FORMAT_YVU420)->swap_chroma_planes);
    EXPECT_FALSE(find_mapping(DRM_FORMAT_YUV420)->swap_chroma_planes);
}

// The reverse direction gives the format with alpha and no swizzle, so a VkImage described
// to a peer is read by it exactly as the Vulkan side wrote it.
TEST(VulkanFormatTest, ReverseMappingPrefersAlphaAndNeedsNoSwizzle) {
    EXPECT_EQ(drm_format(VK_FORMAT_B8G8R8A8_UNORM), DRM_FORMAT_ARGB8888);
    EXPECT_EQ(drm_format(VK_FORMAT_R8G8B8A8_UNORM), DRM_FORMAT_ABGR8888);
    EXPECT_EQ(drm_format(VK_FORMAT_A2R10G10B10_UNORM_PACK32), DRM_FORMAT_ARGB2101010);
    EXPECT_EQ(drm_format(VK_FORMAT_G8_B8_R8_3PLANE_420_UNORM), DRM_FORMAT_YUV420);
    for (const FormatMapping& mapping : format_mappings()) {
        const std::uint32_t back = drm_format(mapping.format);
        ASSERT_NE(back, DRM_FORMAT_INVALID) << format_name(mapping.fourcc);
        EXPECT_EQ(vulkan_format(back), mapping.format) << format_name(mapping.fourcc);
    }
}

// For the 8-bit RGBA-style formats, derive from the DRM name where each channel's byte is
// (drm_fourcc.h: channels named from bit 31 down, little endian, so the last letter is byte
// 0) and check that the Vulkan format plus the view's swizzle shows that byte as that channel.
// 'X' must show as ONE.
TEST(VulkanFormatTest, SwizzlesShowEachChannelOfThe8BitFormatsFromItsByte) {
    for (std::uint32_t fourcc : {DRM_FORMAT_ARGB8888, DRM_FORMAT_XRGB8888, DRM_FORMAT_ABGR8888, DRM_FORMAT_XBGR8888,
                                 DRM_FORMAT_RGBA8888, DRM_FORMAT_BGRA8888}) {
        const std::string_view name = find_format(fourcc)->name;  // e.g. "ARGB8888"
        const FormatMapping& mapping = *find_mapping(fourcc);
        // Which byte each component of the Vulkan format reads (R, G, B, A).
        std::array<int, 4> component_byte{};
        if (mapping.format == VK_FORMAT_R8G8B8A8_UNORM) component_byte = {0, 1, 2, 3};
        else if (mapping.format == VK_FORMAT_B8G8R8A8_UNORM) component_byte = {2, 1, 0, 3};
        else FAIL() << name << ": not a 4-byte 8-bit format";
        const std::array<VkComponentSwizzle, 4> swizzle{mapping.swizzle.r, mapping.swizzle.g, mapping.swizzle.b,
                                                        mapping.swizzle.a};
        for (int channel = 0; channel < 4; ++channel) {  // R, G, B, A of the picture
            const char letter = "RGBA"[channel];
            const auto position = name.find(letter);
            VkComponentSwizzle s = swizzle[channel];
            if (s == VK_COMPONENT_SWIZZLE_IDENTITY) s = static_cast<VkComponentSwizzle>(VK_COMPONENT_SWIZZLE_R + channel);
            if (position == std::string_view::npos) {  // XRGB: no alpha in memory
                ASSERT_EQ(letter, 'A');
                EXPECT_EQ(s, VK_COMPONENT_SWIZZLE_ONE) << name;
                continue;
            }
            ASSERT_GE(s, VK_COMPONENT_SWIZZLE_R) << name << " channel " << letter;
            const int byte = 3 - static_cast<int>(position);
            EXPECT_EQ(component_byte[s - VK_COMPONENT_SWIZZLE_R], byte) << name << " channel " << letter;
        }
    }
}

}  // namespace
}  // namespace texshare::vulkan
