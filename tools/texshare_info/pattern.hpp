// The picture texshare-info's round trips write through a CPU mapping and expect back.
//
// Use it on both ends of a round trip: every pixel differs from its neighbours in every
// channel, so swapped channels, a wrong stride or a shifted row show up as a mismatch, and
// alpha is not 255, so a format that loses alpha is noticed too.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include <drm_fourcc.h>

namespace texshare::info {

// Memory index of R, G, B and A within one 4-byte pixel. A DRM fourcc names a
// little-endian word from its most significant byte: ARGB8888 is B, G, R, A in memory.
using ByteOrder = std::array<std::size_t, 4>;
inline constexpr ByteOrder rgba_order{0, 1, 2, 3};  // what glReadPixels(GL_RGBA) gives

// The 32-bit RGB formats the round trips can write and compare; nullopt for others.
constexpr std::optional<ByteOrder> byte_order(std::uint32_t fourcc) noexcept {
    switch (fourcc) {
        case DRM_FORMAT_ARGB8888:
        case DRM_FORMAT_XRGB8888:
            return ByteOrder{2, 1, 0, 3};
        case DRM_FORMAT_ABGR8888:
        case DRM_FORMAT_XBGR8888:
            return ByteOrder{0, 1, 2, 3};
        default:
            return std::nullopt;
    }
}

constexpr std::array<std::uint8_t, 4> pattern_rgba(std::uint32_t x, std::uint32_t y) noexcept {
    return {static_cast<std::uint8_t>(x * 4 + 1), static_cast<std::uint8_t>(y * 4 + 2),
            static_cast<std::uint8_t>((x ^ y) * 3 + 3), static_cast<std::uint8_t>(0x40 + (x + y) % 128)};
}

// Writes the pattern into width x height pixels of rows `stride` bytes apart. The caller
// has checked that `pixels` holds them (ImageMapping's planes do, by construction).
void write_pattern(std::span<std::byte> pixels, std::uint32_t stride, const ByteOrder& order,
                   std::uint32_t width, std::uint32_t height);

// Empty when every pixel matches; else "N of M pixels differ; first at (x, y): got
// r,g,b,a, want r,g,b,a". Alpha is compared only when `compare_alpha` (an X format reads
// back alpha 255, whatever was written there).
std::string find_mismatch(std::span<const std::byte> pixels, std::uint32_t stride, const ByteOrder& order,
                          bool compare_alpha, std::uint32_t width, std::uint32_t height);

}  // namespace texshare::info
