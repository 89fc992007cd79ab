// vulkan/ycbcr.hpp: a ColorInfo as a VkSamplerYcbcrConversionCreateInfo (no device needed;
// the conversion is used for real in tests/vm/vulkan_ycbcr_vm_test.cpp).
#include "texshare/vulkan/ycbcr.hpp"

#include <gtest/gtest.h>

namespace texshare::vulkan {
namespace {

TEST(VulkanYcbcr, FillsTheConversionFromTheColour) {
    ColorInfo video;
    video.matrix = YuvMatrix::bt709;
    video.range = YuvRange::limited;
    video.chroma_horizontal = ChromaSiting::cosited;
    video.chroma_vertical = ChromaSiting::midpoint;
    auto info = ycbcr_conversion_info(video, DRM_FORMAT_NV12);
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->sType, VK_STRUCTURE_TYPE_SAMPLER_YCBCR_CONVERSION_CREATE_INFO);
    EXPECT_EQ(info->pNext, nullptr);
    EXPECT_EQ(info->format, VK_FORMAT_G8_B8R8_2PLANE_420_UNORM);
    EXPECT_EQ(info->ycbcrModel, VK_SAMPLER_YCBCR_MODEL_CONVERSION_YCBCR_709);
    EXPECT_EQ(info->ycbcrRange, VK_SAMPLER_YCBCR_RANGE_ITU_NARROW);
    EXPECT_EQ(info->xChromaOffset, VK_CHROMA_LOCATION_COSITED_EVEN);
    EXPECT_EQ(info->yChromaOffset, VK_CHROMA_LOCATION_MIDPOINT);
    EXPECT_EQ(info->chromaFilter, VK_FILTER_LINEAR);
    EXPECT_EQ(info->components.r, VK_COMPONENT_SWIZZLE_IDENTITY);
    EXPECT_EQ(info->forceExplicitReconstruction, VK_FALSE);

    video.matrix = YuvMatrix::bt2020;
    video.range = YuvRange::full;
    video.chroma_horizontal = ChromaSiting::midpoint;
    info = ycbcr_conversion_info(video, DRM_FORMAT_P010, VK_FILTER_NEAREST);
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->format, VK_FORMAT_G10X6_B10X6R10X6_2PLANE_420_UNORM_3PACK16);
    EXPECT_EQ(info->ycbcrModel, VK_SAMPLER_YCBCR_MODEL_CONVERSION_YCBCR_2020);
    EXPECT_EQ(info->ycbcrRange, VK_SAMPLER_YCBCR_RANGE_ITU_FULL);
    EXPECT_EQ(info->xChromaOffset, VK_CHROMA_LOCATION_MIDPOINT);
    EXPECT_EQ(info->chromaFilter, VK_FILTER_NEAREST);
}

TEST(VulkanYcbcr, UnspecifiedTakesTheDocumentedDefaults) {
    auto info = ycbcr_conversion_info(ColorInfo{}, DRM_FORMAT_YUV420);
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->format, VK_FORMAT_G8_B8_R8_3PLANE_420_UNORM);
    EXPECT_EQ(info->ycbcrModel, VK_SAMPLER_YCBCR_MODEL_CONVERSION_YCBCR_601);
    EXPECT_EQ(info->ycbcrRange, VK_SAMPLER_YCBCR_RANGE_ITU_NARROW);
    EXPECT_EQ(info->xChromaOffset, VK_CHROMA_LOCATION_COSITED_EVEN);
    EXPECT_EQ(info->yChromaOffset, VK_CHROMA_LOCATION_COSITED_EVEN);
}

TEST(VulkanYcbcr, RefusesRgbFormatsAndBadColours) {
    auto rgb = ycbcr_conversion_info(ColorInfo{}, DRM_FORMAT_ARGB8888);
    ASSERT_FALSE(rgb);
    EXPECT_EQ(rgb.error().code, Errc::invalid_argument);
    EXPECT_NE(rgb.error().message.find("for YUV formats, not AR24 (ARGB8888)"), std::string::npos)
        << rgb.error().message;
    ColorInfo bad;
    bad.range = static_cast<YuvRange>(9);
    auto refused = ycbcr_conversion_info(bad, DRM_FORMAT_NV12);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_NE(refused.error().message.find("colour range 9 is unknown"), std::string::npos)
        << refused.error().message;
}

}  // namespace
}  // namespace texshare::vulkan
