// ColorInfo: how an image's sample values are to be read as colour, sent once with the image.
//
// Use it when the pixels are not plain sRGB with premultiplied alpha: video (YUV with a
// matrix, a range and a chroma siting), HDR (PQ or HLG transfer, BT.2020 primaries) or
// straight alpha. The producer sets it on the DmaBufImage (DmaBufImage::set_color) before
// sharing; it travels in the image descriptor (image_wire.hpp, version 3) and the consumer
// reads image.color(). The EGL import passes the YUV fields as EGL_EXT_image_dma_buf_import's
// hints; texshare::vulkan's ycbcr_conversion_info() (vulkan/ycbcr.hpp) turns them into a
// VkSamplerYcbcrConversionCreateInfo. The fields follow Wayland's color-representation-v1
// (matrix, range, chroma location, alpha mode) and color-management-v1 (transfer function,
// primaries); the numbering is texshare's own.
//
// Every field's value 0 is "unspecified": the producer did not say, the consumer sees that it
// did not, and resolve_color() gives the documented default:
//   matrix     BT.601        (EGL_EXT_image_dma_buf_import: EGL_YUV_COLOR_SPACE_HINT_EXT's default)
//   range      limited       (the same spec: EGL_SAMPLE_RANGE_HINT_EXT defaults to NARROW)
//   siting     cosited (0)   in both directions (the spec's default EGL_YUV_CHROMA_SITING_0_EXT)
//   transfer   sRGB
//   primaries  BT.709 (= sRGB's)
//   alpha      premultiplied (Wayland's default for a wl_buffer; what compositing blends)
//
// Rules, checked by check_color() for the producer (Errc::invalid_argument) and on receipt
// (Errc::protocol), naming the field and its value:
//   - a value this side does not know is refused, never guessed at;
//   - matrix, range and chroma siting belong to YUV formats only: set on an RGB format
//     they are refused, not ignored (a producer that sets them has mislabelled its pixels);
//     chroma siting further needs a subsampled format (every YUV format texshare knows is);
//   - an alpha mode needs a format with alpha: on one without it (XRGB8888, NV12) it is
//     refused;
//   - the reserved byte is zero.
// Transfer function and primaries apply to every format.
//
// On the wire: 8 bytes, the six fields in this order and one reserved byte, after the
// descriptor's OpaqueMemory.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <string_view>
#include <type_traits>

#include "texshare/format.hpp"
#include "texshare/result.hpp"

namespace texshare {

// The matrix from R'G'B' to Y'CbCr (the "matrix coefficients" of ITU-T H.273).
enum class YuvMatrix : std::uint8_t { unspecified = 0, bt601 = 1, bt709 = 2, bt2020 = 3 };
// Limited: Y' in 16..235 and Cb/Cr in 16..240 (8 bit; times 4 at 10 bit). Full: 0..255.
enum class YuvRange : std::uint8_t { unspecified = 0, limited = 1, full = 2 };
// Where a subsampled chroma sample sits relative to the luma samples it covers: on the first
// (cosited, "left"/"top", MPEG-2's horizontal siting) or between them (midpoint, JPEG's).
enum class ChromaSiting : std::uint8_t { unspecified = 0, cosited = 1, midpoint = 2 };
// The transfer function (OETF/EOTF) the values are encoded with.
enum class TransferFunction : std::uint8_t {
    unspecified = 0,
    srgb = 1,
    bt709 = 2,
    pq = 3,
    hlg = 4,
    linear = 5
};
// The colour primaries and white point. bt709 is also sRGB's; display_p3 is DCI-P3 with D65.
enum class ColorPrimaries : std::uint8_t {
    unspecified = 0,
    bt709 = 1,
    bt2020 = 2,
    display_p3 = 3,
    bt601_525 = 4,
    bt601_625 = 5
};
// Premultiplied: colour values are already multiplied by alpha. Straight: they are not.
enum class AlphaMode : std::uint8_t { unspecified = 0, premultiplied = 1, straight = 2 };

inline constexpr std::uint8_t last_yuv_matrix = static_cast<std::uint8_t>(YuvMatrix::bt2020);
inline constexpr std::uint8_t last_yuv_range = static_cast<std::uint8_t>(YuvRange::full);
inline constexpr std::uint8_t last_chroma_siting = static_cast<std::uint8_t>(ChromaSiting::midpoint);
inline constexpr std::uint8_t last_transfer_function = static_cast<std::uint8_t>(TransferFunction::linear);
inline constexpr std::uint8_t last_color_primaries = static_cast<std::uint8_t>(ColorPrimaries::bt601_625);
inline constexpr std::uint8_t last_alpha_mode = static_cast<std::uint8_t>(AlphaMode::straight);

struct ColorInfo {
    YuvMatrix matrix = YuvMatrix::unspecified;
    YuvRange range = YuvRange::unspecified;
    ChromaSiting chroma_horizontal = ChromaSiting::unspecified;
    ChromaSiting chroma_vertical = ChromaSiting::unspecified;
    TransferFunction transfer = TransferFunction::unspecified;
    ColorPrimaries primaries = ColorPrimaries::unspecified;
    AlphaMode alpha = AlphaMode::unspecified;
    std::uint8_t reserved = 0;  // must be zero
    friend bool operator==(const ColorInfo&, const ColorInfo&) = default;
};
static_assert(sizeof(ColorInfo) == 8 && std::has_unique_object_representations_v<ColorInfo>,
              "ColorInfo is sent as it is: no padding");

constexpr std::string_view to_string(YuvMatrix v) noexcept {
    constexpr std::string_view names[] = {"unspecified", "bt601", "bt709", "bt2020"};
    return static_cast<std::uint8_t>(v) <= last_yuv_matrix ? names[static_cast<std::uint8_t>(v)] : "unknown";
}
constexpr std::string_view to_string(YuvRange v) noexcept {
    constexpr std::string_view names[] = {"unspecified", "limited", "full"};
    return static_cast<std::uint8_t>(v) <= last_yuv_range ? names[static_cast<std::uint8_t>(v)] : "unknown";
}
constexpr std::string_view to_string(ChromaSiting v) noexcept {
    constexpr std::string_view names[] = {"unspecified", "cosited", "midpoint"};
    return static_cast<std::uint8_t>(v) <= last_chroma_siting ? names[static_cast<std::uint8_t>(v)]
                                                              : "unknown";
}
constexpr std::string_view to_string(TransferFunction v) noexcept {
    constexpr std::string_view names[] = {"unspecified", "srgb", "bt709", "pq", "hlg", "linear"};
    return static_cast<std::uint8_t>(v) <= last_transfer_function ? names[static_cast<std::uint8_t>(v)]
                                                                  : "unknown";
}
constexpr std::string_view to_string(ColorPrimaries v) noexcept {
    constexpr std::string_view names[] = {"unspecified", "bt709",     "bt2020",
                                          "display_p3",  "bt601_525", "bt601_625"};
    return static_cast<std::uint8_t>(v) <= last_color_primaries ? names[static_cast<std::uint8_t>(v)]
                                                                : "unknown";
}
constexpr std::string_view to_string(AlphaMode v) noexcept {
    constexpr std::string_view names[] = {"unspecified", "premultiplied", "straight"};
    return static_cast<std::uint8_t>(v) <= last_alpha_mode ? names[static_cast<std::uint8_t>(v)] : "unknown";
}

// The checks in the header comment's rules for an image of format `fourcc`, with `code` as
// the error's Errc (Errc::invalid_argument for the producer's own call, Errc::protocol for a
// peer's descriptor). An unknown fourcc is Errc::unsupported (layout validation refuses it
// first everywhere texshare calls this).
inline Result<void> check_color(const ColorInfo& color, std::uint32_t fourcc, Errc code) {
    const auto known = [&](const char* field, std::uint8_t value, std::uint8_t last) -> Result<void> {
        if (value <= last) return {};
        return make_error(code, "colour {} {} is unknown (this side knows 0..{})", field, value, last);
    };
    const auto v = [](auto e) { return static_cast<std::uint8_t>(e); };
    if (auto r = known("matrix", v(color.matrix), last_yuv_matrix); !r) return r;
    if (auto r = known("range", v(color.range), last_yuv_range); !r) return r;
    if (auto r = known("chroma_horizontal", v(color.chroma_horizontal), last_chroma_siting); !r) return r;
    if (auto r = known("chroma_vertical", v(color.chroma_vertical), last_chroma_siting); !r) return r;
    if (auto r = known("transfer", v(color.transfer), last_transfer_function); !r) return r;
    if (auto r = known("primaries", v(color.primaries), last_color_primaries); !r) return r;
    if (auto r = known("alpha", v(color.alpha), last_alpha_mode); !r) return r;
    if (color.reserved != 0) return make_error(code, "colour reserved byte is {}, not 0", color.reserved);
    const FormatInfo* info = find_format(fourcc);
    if (info == nullptr)
        return make_error(Errc::unsupported, "colour of {}: unknown format", format_name(fourcc));
    if (!info->is_yuv) {
        if (color.matrix != YuvMatrix::unspecified || color.range != YuvRange::unspecified ||
            color.chroma_horizontal != ChromaSiting::unspecified ||
            color.chroma_vertical != ChromaSiting::unspecified) {
            return make_error(
                code,
                "colour of {}: YUV matrix {}, range {}, chroma siting {}/{} are for YUV formats "
                "only (an RGB image leaves them unspecified)",
                format_name(fourcc), to_string(color.matrix), to_string(color.range),
                to_string(color.chroma_horizontal), to_string(color.chroma_vertical));
        }
    }
    bool subsampled = false;
    for (std::size_t i = 0; i < info->plane_count; ++i) {
        subsampled |= info->planes[i].horizontal_subsampling > 1 || info->planes[i].vertical_subsampling > 1;
    }
    if (!subsampled && (color.chroma_horizontal != ChromaSiting::unspecified ||
                        color.chroma_vertical != ChromaSiting::unspecified)) {
        return make_error(code, "colour of {}: chroma siting {}/{} on a format without subsampled chroma",
                          format_name(fourcc), to_string(color.chroma_horizontal),
                          to_string(color.chroma_vertical));
    }
    if (!info->has_alpha && color.alpha != AlphaMode::unspecified) {
        return make_error(code, "colour of {}: alpha mode {} on a format without alpha", format_name(fourcc),
                          to_string(color.alpha));
    }
    return {};
}

// `color` with every unspecified field replaced by the default the header comment lists
// (matrix, range and siting only for YUV formats; alpha only for formats with alpha: the
// others keep unspecified, which is what the rules require of them).
constexpr ColorInfo resolve_color(ColorInfo color, const FormatInfo& format) noexcept {
    if (format.is_yuv) {
        if (color.matrix == YuvMatrix::unspecified) color.matrix = YuvMatrix::bt601;
        if (color.range == YuvRange::unspecified) color.range = YuvRange::limited;
        if (color.chroma_horizontal == ChromaSiting::unspecified)
            color.chroma_horizontal = ChromaSiting::cosited;
        if (color.chroma_vertical == ChromaSiting::unspecified) color.chroma_vertical = ChromaSiting::cosited;
    }
    if (color.transfer == TransferFunction::unspecified) color.transfer = TransferFunction::srgb;
    if (color.primaries == ColorPrimaries::unspecified) color.primaries = ColorPrimaries::bt709;
    if (format.has_alpha && color.alpha == AlphaMode::unspecified) color.alpha = AlphaMode::premultiplied;
    return color;
}

}  // namespace texshare
