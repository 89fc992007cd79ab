// Facts about DRM fourcc pixel formats that layout validation needs.
//
// Use find_format() to learn how many planes a format has and how many bytes a block of
// each plane takes; texshare rejects any fourcc it has no facts for rather than guess.
// Names come from libdrm so they match what drm_info, Mesa and the kernel print.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <xf86drm.h>
#include <drm_fourcc.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include <fmt/format.h>

namespace texshare {

struct PlaneFormat {
    std::uint8_t bytes_per_pixel = 0;  // bytes for one sample position of this plane
    std::uint8_t horizontal_subsampling = 1;
    std::uint8_t vertical_subsampling = 1;
};

struct FormatInfo {
    std::uint32_t fourcc = 0;
    const char* name = "";  // the DRM_FORMAT_ suffix, e.g. "ARGB8888"
    std::uint8_t plane_count = 0;
    std::array<PlaneFormat, 4> planes{};
    bool has_alpha = false;
    bool is_yuv = false;
};

namespace detail {
constexpr FormatInfo packed(std::uint32_t fourcc, const char* name, std::uint8_t bpp, bool alpha) {
    return FormatInfo{fourcc, name, 1, {{{bpp, 1, 1}}}, alpha, false};
}
constexpr FormatInfo semi_planar_420(std::uint32_t fourcc, const char* name, std::uint8_t luma_bytes) {
    return FormatInfo{fourcc, name,
                      2,      {{{luma_bytes, 1, 1}, {static_cast<std::uint8_t>(2 * luma_bytes), 2, 2}}},
                      false,  true};
}
constexpr FormatInfo planar(std::uint32_t fourcc, const char* name, std::uint8_t hsub, std::uint8_t vsub) {
    return FormatInfo{fourcc, name, 3, {{{1, 1, 1}, {1, hsub, vsub}, {1, hsub, vsub}}}, false, true};
}

inline constexpr std::array known_formats_table{
    packed(DRM_FORMAT_ARGB8888, "ARGB8888", 4, true),
    packed(DRM_FORMAT_XRGB8888, "XRGB8888", 4, false),
    packed(DRM_FORMAT_ABGR8888, "ABGR8888", 4, true),
    packed(DRM_FORMAT_XBGR8888, "XBGR8888", 4, false),
    packed(DRM_FORMAT_RGBA8888, "RGBA8888", 4, true),
    packed(DRM_FORMAT_BGRA8888, "BGRA8888", 4, true),
    packed(DRM_FORMAT_ARGB2101010, "ARGB2101010", 4, true),
    packed(DRM_FORMAT_XRGB2101010, "XRGB2101010", 4, false),
    packed(DRM_FORMAT_ABGR2101010, "ABGR2101010", 4, true),
    packed(DRM_FORMAT_XBGR2101010, "XBGR2101010", 4, false),
    packed(DRM_FORMAT_ABGR16161616F, "ABGR16161616F", 8, true),
    packed(DRM_FORMAT_RGB888, "RGB888", 3, false),
    packed(DRM_FORMAT_RGB565, "RGB565", 2, false),
    packed(DRM_FORMAT_R8, "R8", 1, false),
    packed(DRM_FORMAT_GR88, "GR88", 2, false),
    semi_planar_420(DRM_FORMAT_NV12, "NV12", 1),
    semi_planar_420(DRM_FORMAT_P010, "P010", 2),
    planar(DRM_FORMAT_YUV420, "YUV420", 2, 2),
    planar(DRM_FORMAT_YVU420, "YVU420", 2, 2),
};
}  // namespace detail

// Every format texshare can validate, for listing and for tests.
inline std::span<const FormatInfo> known_formats() noexcept {
    return detail::known_formats_table;
}

// The facts for fourcc, or nullptr when texshare does not know it.
inline const FormatInfo* find_format(std::uint32_t fourcc) noexcept {
    for (const FormatInfo& info : detail::known_formats_table) {
        if (info.fourcc == fourcc) return &info;
    }
    return nullptr;
}

namespace detail {
struct FreeDeleter {
    void operator()(char* text) const noexcept { std::free(text); }
};
using DrmString = std::unique_ptr<char, FreeDeleter>;
}  // namespace detail

// "AR24 (ARGB8888)": libdrm's fourcc code plus texshare's name; unknown values (peer
// garbage included) are printed in hex so a log line always identifies them.
inline std::string format_name(std::uint32_t fourcc) {
    const FormatInfo* info = find_format(fourcc);
    if (info == nullptr) return fmt::format("unknown fourcc 0x{:08x}", fourcc);
    detail::DrmString code(drmGetFormatName(fourcc));
    return fmt::format("{} ({})", code ? code.get() : "?", info->name);
}

// "LINEAR", "INVALID", "INTEL_X_TILED" ..., or the value in hex when libdrm cannot name it.
inline std::string modifier_name(std::uint64_t modifier) {
    if (modifier == DRM_FORMAT_MOD_LINEAR) return "LINEAR";
    if (modifier == DRM_FORMAT_MOD_INVALID) return "INVALID";
    detail::DrmString vendor(drmGetFormatModifierVendor(modifier));
    detail::DrmString name(drmGetFormatModifierName(modifier));
    if (vendor && name) return fmt::format("{}_{}", vendor.get(), name.get());
    return fmt::format("{} modifier 0x{:016x}", vendor ? vendor.get() : "unknown", modifier);
}

}  // namespace texshare
