// The picture the renderer draws and the host checks: a pure function of (frame, x, y).
//
// Because both processes can compute every pixel on their own, the host can prove that what
// it reads through the shared image is exactly what the renderer wrote for that frame, with
// no second copy of the pixels crossing the socket.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include <drm_fourcc.h>

#include "texshare/frame/payloads.hpp"

namespace host_renderer {

// Where R, G, B and A sit among a pixel's 4 bytes in memory. A DRM fourcc names a
// little-endian 32-bit word from its most significant byte, so ARGB8888 is B, G, R, A in
// memory and ABGR8888 is R, G, B, A. Those two are all the example draws: every GBM driver
// allocates at least one of them.
using ByteOrder = std::array<std::size_t, 4>;  // memory index of R, G, B, A

constexpr std::optional<ByteOrder> byte_order(std::uint32_t fourcc) noexcept {
    if (fourcc == DRM_FORMAT_ARGB8888) return ByteOrder{2, 1, 0, 3};
    if (fourcc == DRM_FORMAT_ABGR8888) return ByteOrder{0, 1, 2, 3};
    return std::nullopt;
}

// A triangle wave over 0..range, so the square bounces off the edges instead of jumping back.
constexpr std::uint32_t bounce(std::uint64_t t, std::uint32_t range) noexcept {
    if (range == 0) return 0;
    const std::uint64_t period = 2 * std::uint64_t{range};
    const std::uint64_t phase = t % period;
    return static_cast<std::uint32_t>(phase <= range ? phase : period - phase);
}

// A still background (red/green gradient, blue diagonal stripes) with two moving parts: a
// ticker strip along the bottom whose blue runs with the frame, and a square with inverted
// colours on its own path. A stale frame shows up in the strip and the square, a torn or
// shifted one wherever it tears. Only those two parts change from frame to frame, so a
// renderer redraws (and reports as damage, PresentInfo::damage) only them: changed_since().
class Pattern {
public:
    constexpr Pattern(std::uint64_t frame, std::uint32_t width, std::uint32_t height) noexcept
        : frame_(frame), width_(width), height_(height) {
        const std::uint32_t shorter = width < height ? width : height;
        side_ = shorter / 4 == 0 ? 1 : shorter / 4;
        square_x_ = bounce(frame * 3, width - side_);
        square_y_ = bounce(frame * 2, height - side_);
        strip_height_ = height / 8 == 0 ? 1 : height / 8;
    }

    std::uint32_t width() const noexcept { return width_; }
    std::uint32_t height() const noexcept { return height_; }

    // The colour at (x, y) as R, G, B, A. Alpha is always opaque, so no premultiplication
    // or blending anywhere (GL included) can change a pixel.
    constexpr std::array<std::uint8_t, 4> rgba(std::uint32_t x, std::uint32_t y) const noexcept {
        const std::uint64_t red = std::uint64_t{x} * 255 / (width_ > 1 ? width_ - 1 : 1);
        const std::uint64_t green = std::uint64_t{y} * 255 / (height_ > 1 ? height_ - 1 : 1);
        const std::uint64_t moving = y >= strip().y ? frame_ * 4 : 0;
        const std::uint64_t blue = (moving + (std::uint64_t{x} + y) / 2) & 0xff;
        std::array<std::uint8_t, 4> pixel{static_cast<std::uint8_t>(red), static_cast<std::uint8_t>(green),
                                          static_cast<std::uint8_t>(blue), 0xff};
        if (x >= square_x_ && x - square_x_ < side_ && y >= square_y_ && y - square_y_ < side_) {
            for (std::size_t i = 0; i < 3; ++i) pixel[i] = static_cast<std::uint8_t>(0xff - pixel[i]);
        }
        return pixel;
    }

    // Every pixel that differs between `earlier`'s picture and this one, as rectangles in
    // buffer coordinates (they may overlap): the strip, and the square where it was and where
    // it is. Both must be of the same size; another size changes everything (whole_image()).
    std::array<texshare::DamageRect, 3> changed_since(const Pattern& earlier) const noexcept {
        return {strip(), earlier.square(), square()};
    }
    texshare::DamageRect whole_image() const noexcept { return {0, 0, width_, height_}; }

    // Whether a plane of plane_bytes with this stride holds every row; checked before any
    // pixel is touched, since the plane came from another process.
    constexpr bool fits(std::size_t plane_bytes, std::uint32_t stride) const noexcept {
        const std::uint64_t row = std::uint64_t{width_} * 4;
        return stride >= row && plane_bytes >= std::uint64_t{stride} * (height_ - 1) + row;
    }

    // Draws the part of the picture inside `area` (which must lie inside the image; fits()
    // first), leaving the rest of the plane as it is.
    void render(std::span<std::byte> plane, std::uint32_t stride, const ByteOrder& order,
                const texshare::DamageRect& area) const noexcept {
        for (std::uint32_t y = area.y; y < area.y + area.height; ++y) {
            std::byte* row = plane.data() + std::size_t{stride} * y;
            for (std::uint32_t x = area.x; x < area.x + area.width; ++x) {
                const auto pixel = rgba(x, y);
                for (std::size_t c = 0; c < 4; ++c) row[std::size_t{x} * 4 + order[c]] = std::byte{pixel[c]};
            }
        }
    }

    // Pixels of `plane` that differ from the picture. Packed RGBA rows (what glReadPixels
    // gives) are the case stride = 4 * width, order {0, 1, 2, 3}.
    std::uint64_t count_mismatches(std::span<const std::byte> plane, std::uint32_t stride,
                                   const ByteOrder& order) const noexcept {
        std::uint64_t mismatches = 0;
        for (std::uint32_t y = 0; y < height_; ++y) {
            const std::byte* row = plane.data() + std::size_t{stride} * y;
            for (std::uint32_t x = 0; x < width_; ++x) {
                const auto pixel = rgba(x, y);
                for (std::size_t c = 0; c < 4; ++c) {
                    if (row[std::size_t{x} * 4 + order[c]] != std::byte{pixel[c]}) {
                        ++mismatches;
                        break;
                    }
                }
            }
        }
        return mismatches;
    }

private:
    std::uint64_t frame_;
    std::uint32_t width_;
    std::uint32_t height_;
    std::uint32_t side_ = 1;
    std::uint32_t square_x_ = 0;
    std::uint32_t square_y_ = 0;
    std::uint32_t strip_height_ = 1;

    constexpr texshare::DamageRect strip() const noexcept {
        return {0, height_ - strip_height_, width_, strip_height_};
    }
    constexpr texshare::DamageRect square() const noexcept { return {square_x_, square_y_, side_, side_}; }
};

}  // namespace host_renderer
