// Overflow-checked arithmetic for sizes that come from a peer. Private to texshare.
#pragma once

#include <cstdint>
#include <optional>

namespace texshare::detail {

inline std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) noexcept {
    std::uint64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
    return sum;
}

inline std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) noexcept {
    std::uint64_t product = 0;
    if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
    return product;
}

constexpr std::uint64_t div_round_up(std::uint64_t value, std::uint64_t divisor) noexcept {
    return value / divisor + (value % divisor != 0 ? 1 : 0);
}

// Rounds up to a multiple of alignment (a power of two); nullopt on overflow.
inline std::optional<std::uint64_t> align_up(std::uint64_t value, std::uint64_t alignment) noexcept {
    auto bumped = checked_add(value, alignment - 1);
    if (!bumped) return std::nullopt;
    return *bumped & ~(alignment - 1);
}

}  // namespace texshare::detail
