// texshare::vulkan::ycbcr_conversion_info: an image's ColorInfo as Vulkan's Y'CbCr conversion.
//
// Use it where a YUV image (NV12, P010, YUV420, YVU420) from a peer is sampled as RGB: fill a
// VkSamplerYcbcrConversionCreateInfo from the colour the producer sent (DmaBufImage::color(),
// color_info.hpp), create the conversion (vkCreateSamplerYcbcrConversion, Vulkan 1.1 core;
// the samplerYcbcrConversion feature must be enabled), and chain a
// VkSamplerYcbcrConversionInfo naming it to the VkSampler and the VkImageView (spec "Sampler
// Y'CbCr Conversion": both must use the same conversion, and the sampler must be an immutable
// sampler of the descriptor set layout). Unspecified fields take resolve_color()'s defaults
// (BT.601, limited range, cosited chroma), the same EGL_EXT_image_dma_buf_import applies.
// Transfer function, primaries and alpha mode have no place in the conversion (it yields
// non-linear R'G'B' in the image's own primaries): the application reads them from color().
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <vulkan/vulkan.h>

#include <cstdint>

#include "texshare/color_info.hpp"
#include "texshare/format.hpp"
#include "texshare/result.hpp"
#include "texshare/vulkan/format.hpp"

namespace texshare::vulkan {

// The Vulkan value of each field; unspecified maps to resolve_color()'s default.
constexpr VkSamplerYcbcrModelConversion ycbcr_model(YuvMatrix matrix) noexcept {
    switch (matrix) {
        case YuvMatrix::bt709:
            return VK_SAMPLER_YCBCR_MODEL_CONVERSION_YCBCR_709;
        case YuvMatrix::bt2020:
            return VK_SAMPLER_YCBCR_MODEL_CONVERSION_YCBCR_2020;
        case YuvMatrix::unspecified:
        case YuvMatrix::bt601:
            break;
    }
    return VK_SAMPLER_YCBCR_MODEL_CONVERSION_YCBCR_601;
}
constexpr VkSamplerYcbcrRange ycbcr_range(YuvRange range) noexcept {
    return range == YuvRange::full ? VK_SAMPLER_YCBCR_RANGE_ITU_FULL : VK_SAMPLER_YCBCR_RANGE_ITU_NARROW;
}
// Cosited is VK_CHROMA_LOCATION_COSITED_EVEN: the chroma sample sits on the even (first) luma
// sample, as EGL_YUV_CHROMA_SITING_0_EXT; midpoint between two, as EGL_YUV_CHROMA_SITING_0_5_EXT.
constexpr VkChromaLocation chroma_location(ChromaSiting siting) noexcept {
    return siting == ChromaSiting::midpoint ? VK_CHROMA_LOCATION_MIDPOINT : VK_CHROMA_LOCATION_COSITED_EVEN;
}

// A VkSamplerYcbcrConversionCreateInfo (pNext null) for an image of `fourcc` with `color`:
// format vulkan_format(fourcc), ycbcrModel/ycbcrRange/xChromaOffset/yChromaOffset from the
// colour, identity components, chromaFilter `chroma_filter` (LINEAR needs the format feature
// VK_FORMAT_FEATURE_SAMPLED_IMAGE_YCBCR_CONVERSION_LINEAR_FILTER_BIT, which the caller
// checks), forceExplicitReconstruction false. Errc::invalid_argument for a format that is not
// YUV (an RGB image needs no conversion) and for a colour check_color() refuses for it.
inline Result<VkSamplerYcbcrConversionCreateInfo> ycbcr_conversion_info(
    const ColorInfo& color, std::uint32_t fourcc, VkFilter chroma_filter = VK_FILTER_LINEAR) {
    const FormatInfo* info = find_format(fourcc);
    if (info == nullptr || !info->is_yuv) {
        return make_error(Errc::invalid_argument, "a Y'CbCr conversion is for YUV formats, not {}",
                          format_name(fourcc));
    }
    if (auto checked = check_color(color, fourcc, Errc::invalid_argument); !checked)
        return std::move(checked).error();
    const ColorInfo resolved = resolve_color(color, *info);
    VkSamplerYcbcrConversionCreateInfo create{};
    create.sType = VK_STRUCTURE_TYPE_SAMPLER_YCBCR_CONVERSION_CREATE_INFO;
    create.format = vulkan_format(fourcc);
    create.ycbcrModel = ycbcr_model(resolved.matrix);
    create.ycbcrRange = ycbcr_range(resolved.range);
    create.components = {VK_COMPONENT_SWIZZLE_IDENTITY, VK_COMPONENT_SWIZZLE_IDENTITY,
                         VK_COMPONENT_SWIZZLE_IDENTITY, VK_COMPONENT_SWIZZLE_IDENTITY};
    create.xChromaOffset = chroma_location(resolved.chroma_horizontal);
    create.yChromaOffset = chroma_location(resolved.chroma_vertical);
    create.chromaFilter = chroma_filter;
    create.forceExplicitReconstruction = VK_FALSE;
    return create;
}

}  // namespace texshare::vulkan
