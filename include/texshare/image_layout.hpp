// ImageLayout: where each plane of an image lives in its buffer, and the checks it must pass.
//
// Use validate_layout() on every layout that did not come from your own allocator (above
// all, one a peer sent): it proves, in overflow-checked 64-bit arithmetic, that the format
// is known, the plane count matches it, the dimensions are in range and each plane's rows
// fit their stride. Only then are plane_end() and required_size() meaningful; the receive
// path compares them with the real size of each fd before anything touches the memory.
//
// Plane extents are counted as stride * rows from the plane's offset (the last row is
// counted in full, as allocators size buffers that way). Layouts with a non-linear
// modifier are opaque tiling: texshare checks the format's planes the same way and allows
// up to 4 memory planes (compression metadata), checking only that those start inside.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <drm_fourcc.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "texshare/detail/checked_math.hpp"
#include "texshare/format.hpp"
#include "texshare/result.hpp"

namespace texshare {

inline constexpr std::uint32_t max_image_dimension = 16384;
inline constexpr std::uint64_t max_image_bytes = std::uint64_t{1} << 32;
inline constexpr std::size_t max_planes = 4;

struct PlaneLayout {
    std::uint64_t offset = 0;
    std::uint32_t stride = 0;
    friend bool operator==(const PlaneLayout&, const PlaneLayout&) = default;
};

struct ImageLayout {
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    std::uint32_t fourcc = 0;
    std::uint64_t modifier = DRM_FORMAT_MOD_LINEAR;
    std::uint32_t plane_count = 0;
    std::array<PlaneLayout, max_planes> planes{};
    friend bool operator==(const ImageLayout&, const ImageLayout&) = default;
};

// LINEAR, or INVALID meaning "implicit, driver-chosen" which for CPU access is linear.
constexpr bool is_linear_or_implicit(std::uint64_t modifier) noexcept {
    return modifier == DRM_FORMAT_MOD_LINEAR || modifier == DRM_FORMAT_MOD_INVALID;
}

// Rows and minimum row bytes of a plane of `info`, with subsampled sizes rounded up.
constexpr std::uint32_t plane_rows(const FormatInfo& info, std::size_t plane, std::uint32_t height) noexcept {
    return static_cast<std::uint32_t>(detail::div_round_up(height, info.planes[plane].vertical_subsampling));
}
constexpr std::uint64_t plane_min_stride(const FormatInfo& info, std::size_t plane,
                                         std::uint32_t width) noexcept {
    const PlaneFormat& facts = info.planes[plane];
    return detail::div_round_up(width, facts.horizontal_subsampling) * facts.bytes_per_pixel;
}

// Whether an image of width x height is in the range texshare accepts at all.
inline Result<void> check_image_size(std::uint32_t width, std::uint32_t height) {
    if (width == 0 || height == 0 || width > max_image_dimension || height > max_image_dimension) {
        return make_error(Errc::invalid_layout, "size {}x{} is outside 1..{} per dimension", width, height,
                          max_image_dimension);
    }
    return {};
}

namespace detail {
inline Result<std::uint64_t> checked_plane_end(const ImageLayout& layout, const FormatInfo& info,
                                               std::size_t plane) {
    const PlaneLayout& p = layout.planes[plane];
    if (plane >= info.plane_count) {  // modifier metadata plane: only its start is known
        auto end = checked_add(p.offset, 1);
        if (!end) return make_error(Errc::invalid_layout, "plane {}: offset {} overflows", plane, p.offset);
        return *end;
    }
    const std::uint32_t rows = plane_rows(info, plane, layout.height);
    auto bytes = checked_mul(p.stride, rows);
    auto end = bytes ? checked_add(p.offset, *bytes) : std::nullopt;
    if (!end) {
        return make_error(Errc::invalid_layout, "plane {}: offset {} + stride {} * {} rows overflows 64 bits",
                          plane, p.offset, p.stride, rows);
    }
    return *end;
}
}  // namespace detail

inline Result<void> validate_layout(const ImageLayout& layout) {
    const FormatInfo* info = find_format(layout.fourcc);
    if (info == nullptr) {
        return make_error(Errc::unsupported, "format {} is not one texshare knows",
                          format_name(layout.fourcc));
    }
    if (auto size = check_image_size(layout.width, layout.height); !size) return size;
    const bool linear = is_linear_or_implicit(layout.modifier);
    const std::uint32_t allowed_planes = linear ? info->plane_count : max_planes;
    if (layout.plane_count < info->plane_count || layout.plane_count > allowed_planes) {
        return make_error(Errc::invalid_layout, "{} with modifier {} has {} planes, layout declares {}",
                          format_name(layout.fourcc), modifier_name(layout.modifier),
                          linear ? fmt::format("{}", info->plane_count)
                                 : fmt::format("{}..{}", info->plane_count, max_planes),
                          layout.plane_count);
    }
    for (std::size_t i = layout.plane_count; i < max_planes; ++i) {
        if (layout.planes[i] != PlaneLayout{}) {
            return make_error(Errc::invalid_layout,
                              "plane {} is beyond the plane count {} but has offset {} stride {}", i,
                              layout.plane_count, layout.planes[i].offset, layout.planes[i].stride);
        }
    }
    for (std::size_t i = 0; i < info->plane_count; ++i) {
        const std::uint64_t min_stride = plane_min_stride(*info, i, layout.width);
        if (layout.planes[i].stride < min_stride) {
            return make_error(Errc::invalid_layout,
                              "plane {}: stride {} is smaller than one row of {} pixels ({} bytes)", i,
                              layout.planes[i].stride, layout.width, min_stride);
        }
    }
    for (std::size_t i = 0; i < layout.plane_count; ++i) {
        auto end = detail::checked_plane_end(layout, *info, i);
        if (!end) return std::move(end).error();
        if (*end > max_image_bytes) {
            return make_error(Errc::invalid_layout, "plane {} ends at byte {}, beyond the {} limit", i, *end,
                              max_image_bytes);
        }
    }
    return {};
}

// One past the last byte plane `plane` uses in its buffer. The layout must be valid.
inline std::uint64_t plane_end(const ImageLayout& layout, std::size_t plane) {
    const FormatInfo* info = find_format(layout.fourcc);
    auto end = info ? detail::checked_plane_end(layout, *info, plane) : Result<std::uint64_t>(0);
    return end ? *end : 0;
}

// Bytes a single buffer holding every plane must have. The layout must be valid.
inline std::uint64_t required_size(const ImageLayout& layout) {
    std::uint64_t size = 0;
    for (std::size_t i = 0; i < layout.plane_count; ++i) {
        const std::uint64_t end = plane_end(layout, i);
        if (end > size) size = end;
    }
    return size;
}

// A linear layout with every plane in one buffer, rows padded to stride_alignment bytes
// (a power of two; 64 or 256 suit GPU import) and each plane starting aligned too.
inline Result<ImageLayout> make_packed_layout(std::uint32_t fourcc, std::uint32_t width, std::uint32_t height,
                                              std::uint32_t stride_alignment = 64) {
    const FormatInfo* info = find_format(fourcc);
    if (info == nullptr) {
        return make_error(Errc::unsupported, "format {} is not one texshare knows", format_name(fourcc));
    }
    if (stride_alignment == 0 || (stride_alignment & (stride_alignment - 1)) != 0) {
        return make_error(Errc::invalid_argument, "stride alignment {} is not a power of two",
                          stride_alignment);
    }
    if (auto size = check_image_size(width, height); !size) return std::move(size).error();
    ImageLayout layout{width, height, fourcc, DRM_FORMAT_MOD_LINEAR, info->plane_count, {}};
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < info->plane_count; ++i) {
        // Bounded by max_image_dimension, so these cannot overflow 64 bits.
        const std::uint64_t stride = *detail::align_up(plane_min_stride(*info, i, width), stride_alignment);
        if (stride > UINT32_MAX) {
            return make_error(Errc::invalid_layout, "plane {}: stride {} exceeds 32 bits", i, stride);
        }
        layout.planes[i] = PlaneLayout{offset, static_cast<std::uint32_t>(stride)};
        offset = *detail::align_up(offset + stride * plane_rows(*info, i, height), stride_alignment);
    }
    if (auto valid = validate_layout(layout); !valid) return std::move(valid).error();
    return layout;
}

}  // namespace texshare
