// Test support: every 32-bit word of a frame's first plane is a function of (frame, row,
// column), so the side that shows a frame can prove it reads exactly what the side that
// rendered it wrote for that frame: not an older frame, not a torn one.
#pragma once

#include <cstdint>
#include <cstring>

#include "texshare/dma_buf_image.hpp"

namespace texshare::testing {

constexpr std::uint32_t stamp_word(std::uint64_t frame, std::uint32_t row, std::uint32_t column) noexcept {
    return static_cast<std::uint32_t>(frame * 0x9E3779B1U) ^ (row << 16) ^ column;
}

// Writes frame's stamp into every pixel (width 32-bit words per row) of plane 0.
inline Result<void> stamp_image(const DmaBufImage& image, std::uint64_t frame) {
    auto mapping = image.map(Access::write);
    if (!mapping) return std::move(mapping).error();
    for (std::uint32_t row = 0; row < image.height(); ++row) {
        std::byte* line = mapping->plane(0).data() + std::size_t{row} * mapping->stride(0);
        for (std::uint32_t column = 0; column < image.width(); ++column) {
            const std::uint32_t word = stamp_word(frame, row, column);
            std::memcpy(line + std::size_t{column} * 4, &word, 4);
        }
    }
    return mapping->finish();
}

// The number of pixels that differ from frame's stamp.
inline Result<std::uint64_t> stamp_mismatches(const DmaBufImage& image, std::uint64_t frame) {
    auto mapping = image.map(Access::read);
    if (!mapping) return std::move(mapping).error();
    std::uint64_t wrong = 0;
    for (std::uint32_t row = 0; row < image.height(); ++row) {
        const std::byte* line = mapping->plane(0).data() + std::size_t{row} * mapping->stride(0);
        for (std::uint32_t column = 0; column < image.width(); ++column) {
            std::uint32_t word = 0;
            std::memcpy(&word, line + std::size_t{column} * 4, 4);
            wrong += word != stamp_word(frame, row, column) ? 1 : 0;
        }
    }
    if (auto finished = mapping->finish(); !finished) return std::move(finished).error();
    return wrong;
}

}  // namespace texshare::testing
