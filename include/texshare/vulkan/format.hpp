// DRM fourcc <-> VkFormat: which Vulkan format reads the bytes of each format texshare knows.
//
// Use vulkan_format() when importing or allocating an image of a DRM format with Vulkan, and
// drm_format() when a Vulkan format must be described to a peer. A DRM fourcc names the
// channels of a little-endian word from the most significant bit down (drm_fourcc.h:
// "[31:0] A:R:G:B 8:8:8:8 little endian"); Vulkan names packed formats the same way
// (A2R10G10B10_UNORM_PACK32) but byte formats in memory order (B8G8R8A8_UNORM: byte 0 is B);
// Vulkan spec, "Formats" and "Representation and Texel Block Size". So ARGB8888 is
// B8G8R8A8 and ABGR8888 is R8G8B8A8, as in wlroots' render/vulkan/pixel_format.c and Mesa.
//
// Where no Vulkan format has a DRM format's byte order, the mapping reads the bytes with a
// format of the same block size and a component swizzle for image views (RGBA8888); where
// the DRM format has no alpha the swizzle makes alpha ONE (XRGB8888). Copies
// (vkCmdCopyImageToBuffer) ignore swizzles: they move the bytes as memory holds them.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <vulkan/vulkan.h>

#include <drm_fourcc.h>

#include <array>
#include <cstdint>
#include <span>

namespace texshare::vulkan {

struct FormatMapping {
    std::uint32_t fourcc = 0;
    VkFormat format = VK_FORMAT_UNDEFINED;
    // For image views: which component of `format` shows each channel of the DRM format.
    VkComponentMapping swizzle{VK_COMPONENT_SWIZZLE_IDENTITY, VK_COMPONENT_SWIZZLE_IDENTITY,
                               VK_COMPONENT_SWIZZLE_IDENTITY, VK_COMPONENT_SWIZZLE_IDENTITY};
    // YVU420: the DRM image's planes 1 and 2 are Cr and Cb, Vulkan's 3-plane formats' are Cb
    // (B) and Cr (R), so the import gives Vulkan plane 1 the DRM plane 2 and the other way round.
    bool swap_chroma_planes = false;
};

namespace detail {
constexpr VkComponentSwizzle I = VK_COMPONENT_SWIZZLE_IDENTITY;
constexpr FormatMapping plain(std::uint32_t fourcc, VkFormat format) { return {fourcc, format, {I, I, I, I}, false}; }
// The DRM format's X byte is read as alpha: views show alpha as ONE.
constexpr FormatMapping opaque(std::uint32_t fourcc, VkFormat format) {
    return {fourcc, format, {I, I, I, VK_COMPONENT_SWIZZLE_ONE}, false};
}
constexpr FormatMapping swizzled(std::uint32_t fourcc, VkFormat format, VkComponentMapping swizzle) {
    return {fourcc, format, swizzle, false};
}

// Every format of texshare::known_formats(), in that order (tests check both ways).
inline constexpr std::array vulkan_formats_table{
    // [31:0] A:R:G:B little endian = bytes B, G, R, A (wlroots pixel_format.c, Mesa vk_format).
    plain(DRM_FORMAT_ARGB8888, VK_FORMAT_B8G8R8A8_UNORM),
    opaque(DRM_FORMAT_XRGB8888, VK_FORMAT_B8G8R8A8_UNORM),
    // [31:0] A:B:G:R = bytes R, G, B, A (wlroots, Mesa).
    plain(DRM_FORMAT_ABGR8888, VK_FORMAT_R8G8B8A8_UNORM),
    opaque(DRM_FORMAT_XBGR8888, VK_FORMAT_R8G8B8A8_UNORM),
    // [31:0] R:G:B:A = bytes A, B, G, R: no Vulkan format has that order; R8G8B8A8 reads byte
    // 0 as .r, so red is in .a, green in .b, blue in .g, alpha in .r (drm_fourcc.h + the
    // spec's R8G8B8A8 byte order).
    swizzled(DRM_FORMAT_RGBA8888, VK_FORMAT_R8G8B8A8_UNORM,
             {VK_COMPONENT_SWIZZLE_A, VK_COMPONENT_SWIZZLE_B, VK_COMPONENT_SWIZZLE_G, VK_COMPONENT_SWIZZLE_R}),
    // [31:0] B:G:R:A = bytes A, R, G, B: read as R8G8B8A8, red is in .g, green .b, blue .a, alpha .r.
    swizzled(DRM_FORMAT_BGRA8888, VK_FORMAT_R8G8B8A8_UNORM,
             {VK_COMPONENT_SWIZZLE_G, VK_COMPONENT_SWIZZLE_B, VK_COMPONENT_SWIZZLE_A, VK_COMPONENT_SWIZZLE_R}),
    // Packed 32-bit words, both sides name bits from the top (wlroots, Mesa; spec "Packed Formats").
    plain(DRM_FORMAT_ARGB2101010, VK_FORMAT_A2R10G10B10_UNORM_PACK32),
    opaque(DRM_FORMAT_XRGB2101010, VK_FORMAT_A2R10G10B10_UNORM_PACK32),
    plain(DRM_FORMAT_ABGR2101010, VK_FORMAT_A2B10G10R10_UNORM_PACK32),
    opaque(DRM_FORMAT_XBGR2101010, VK_FORMAT_A2B10G10R10_UNORM_PACK32),
    // [63:0] A:B:G:R 16:16:16:16 little endian half floats = R, G, B, A in memory (wlroots, Mesa).
    plain(DRM_FORMAT_ABGR16161616F, VK_FORMAT_R16G16B16A16_SFLOAT),
    // [23:0] R:G:B little endian = bytes B, G, R (wlroots).
    plain(DRM_FORMAT_RGB888, VK_FORMAT_B8G8R8_UNORM),
    // [15:0] R:G:B 5:6:5 little endian; R5G6B5_UNORM_PACK16 has R in bits 15..11 (wlroots, Mesa).
    plain(DRM_FORMAT_RGB565, VK_FORMAT_R5G6B5_UNORM_PACK16),
    plain(DRM_FORMAT_R8, VK_FORMAT_R8_UNORM),     // one byte (wlroots)
    plain(DRM_FORMAT_GR88, VK_FORMAT_R8G8_UNORM),  // [15:0] G:R = bytes R, G (wlroots)
    // Y plane, then interleaved Cb:Cr (U then V in memory): G8 = Y, B8R8 = CbCr (wlroots,
    // Mesa; spec "Formats Requiring Sampler Y'CbCr Conversion").
    plain(DRM_FORMAT_NV12, VK_FORMAT_G8_B8R8_2PLANE_420_UNORM),
    // 16-bit samples with the 10 bits at the top (drm_fourcc.h "[15:0] Y:x 10:6") = G10X6 (wlroots, Mesa).
    plain(DRM_FORMAT_P010, VK_FORMAT_G10X6_B10X6R10X6_2PLANE_420_UNORM_3PACK16),
    // Y, U (Cb), V (Cr) planes = G8, B8, R8 (wlroots, Mesa).
    plain(DRM_FORMAT_YUV420, VK_FORMAT_G8_B8_R8_3PLANE_420_UNORM),
    // Y, V, U: the same Vulkan format with the chroma planes exchanged (Mesa's Android
    // YV12 handling does the same).
    FormatMapping{DRM_FORMAT_YVU420, VK_FORMAT_G8_B8_R8_3PLANE_420_UNORM, {I, I, I, I}, true},
};
}  // namespace detail

// Every mapping, one per format of texshare::known_formats().
inline std::span<const FormatMapping> format_mappings() noexcept { return detail::vulkan_formats_table; }

// The mapping of fourcc, or nullptr when texshare has none (a fourcc it does not know).
inline const FormatMapping* find_mapping(std::uint32_t fourcc) noexcept {
    for (const FormatMapping& mapping : detail::vulkan_formats_table) {
        if (mapping.fourcc == fourcc) return &mapping;
    }
    return nullptr;
}

// The Vulkan format that reads fourcc's bytes; VK_FORMAT_UNDEFINED for an unknown fourcc.
inline VkFormat vulkan_format(std::uint32_t fourcc) noexcept {
    const FormatMapping* mapping = find_mapping(fourcc);
    return mapping != nullptr ? mapping->format : VK_FORMAT_UNDEFINED;
}

// The DRM format whose bytes a plain image of `format` holds, with alpha where the Vulkan
// format has an alpha component (B8G8R8A8_UNORM -> ARGB8888, never XRGB8888), and only
// where no swizzle is needed (R8G8B8A8_UNORM -> ABGR8888, not RGBA8888); 0
// (DRM_FORMAT_INVALID) for a format texshare cannot describe.
inline std::uint32_t drm_format(VkFormat format) noexcept {
    for (const FormatMapping& mapping : detail::vulkan_formats_table) {
        const VkComponentMapping& s = mapping.swizzle;
        const bool identity = s.r == detail::I && s.g == detail::I && s.b == detail::I && s.a == detail::I;
        if (mapping.format == format && identity && !mapping.swap_chroma_planes) return mapping.fourcc;
    }
    return DRM_FORMAT_INVALID;
}

}  // namespace texshare::vulkan
