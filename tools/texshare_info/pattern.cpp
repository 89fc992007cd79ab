#include "pattern.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace texshare::info {

void write_pattern(std::span<std::byte> pixels, std::uint32_t stride, const ByteOrder& order,
                   std::uint32_t width, std::uint32_t height) {
    for (std::uint32_t y = 0; y < height; ++y) {
        std::byte* row = pixels.data() + std::size_t{stride} * y;
        for (std::uint32_t x = 0; x < width; ++x) {
            const auto rgba = pattern_rgba(x, y);
            for (std::size_t c = 0; c < 4; ++c) row[std::size_t{x} * 4 + order[c]] = std::byte{rgba[c]};
        }
    }
}

std::string find_mismatch(std::span<const std::byte> pixels, std::uint32_t stride, const ByteOrder& order,
                          bool compare_alpha, std::uint32_t width, std::uint32_t height) {
    const std::uint64_t row_bytes = std::uint64_t{width} * 4;
    const bool fits = height == 0 || (stride >= row_bytes &&
                                      pixels.size() >= std::uint64_t{stride} * (height - 1) + row_bytes);
    if (!fits) {
        return fmt::format("{} bytes with stride {} cannot hold {}x{} pixels", pixels.size(), stride, width,
                           height);
    }
    std::uint64_t differ = 0;
    std::string first;
    const std::size_t channels = compare_alpha ? 4 : 3;
    for (std::uint32_t y = 0; y < height; ++y) {
        const std::byte* row = pixels.data() + std::size_t{stride} * y;
        for (std::uint32_t x = 0; x < width; ++x) {
            const auto want = pattern_rgba(x, y);
            std::array<std::uint8_t, 4> got{};
            for (std::size_t c = 0; c < 4; ++c)
                got[c] = std::to_integer<std::uint8_t>(row[std::size_t{x} * 4 + order[c]]);
            bool same = true;
            for (std::size_t c = 0; c < channels; ++c) same = same && got[c] == want[c];
            if (same) continue;
            if (differ++ == 0) {
                first = fmt::format("first at ({}, {}): got {}, want {}", x, y, fmt::join(got, ","),
                                    fmt::join(want, ","));
            }
        }
    }
    if (differ == 0) return {};
    return fmt::format("{} of {} pixels differ; {}", differ, std::uint64_t{width} * height, first);
}

}  // namespace texshare::info
