// Per-present metadata: damage, content time and flags, built by the producer and checked
// by the consumer.
//
// Use make_present_metadata() to fill the damage of a present from any number of
// rectangles (FrameSender::present(id, PresentInfo) does it for you), and
// damaged_pixel_count() on the consumer to know how much of the image changed (to compose
// only that, or to measure it). The consumer checks every present's metadata against the
// image it names with check_present_metadata() before anything changes.
//
// Damage follows wl_surface.damage_buffer: rectangles in buffer coordinates (the image as
// shared, pixels, y down from its first row), which may overlap. No damage (count 0) means
// the whole image. More than max_damage_rects rectangles collapse into their bounding box,
// as PipeWire's SPA_META_VideoDamage producers and compositors do with complex regions: the
// damage only ever grows, so a consumer that redraws what is damaged never misses a change.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "texshare/frame/payloads.hpp"
#include "texshare/result.hpp"

namespace texshare {

// What a producer says about one present (FrameSender::present(id, PresentInfo)).
struct PresentInfo {
    // Rectangles that changed since the previous present of any image, in this image's
    // buffer coordinates; empty: the whole image. Not owned; read during the call only.
    std::span<const DamageRect> damage{};
    std::int64_t content_time_ns = 0;  // CLOCK_MONOTONIC ns the content belongs to (video); 0: none
    std::uint32_t flags = 0;           // present_flag_* bits
};

// Damage for an image of width x height from `rects` (any number): each must be non-empty
// and inside the image, or Errc::invalid_argument naming it. More than max_damage_rects
// collapse into their bounding box; none means the whole image.
inline Result<PresentMetadata> make_present_metadata(const PresentInfo& info, std::uint32_t width,
                                                     std::uint32_t height) {
    PresentMetadata metadata;
    if ((info.flags & ~known_present_flags) != 0 || info.content_time_ns < 0) {
        return make_error(Errc::invalid_argument, "present: flags 0x{:x} (known 0x{:x}) or content time {} ns < 0",
                          info.flags, known_present_flags, info.content_time_ns);
    }
    metadata.flags = info.flags;
    metadata.content_time_ns = info.content_time_ns;
    std::uint64_t left = UINT64_MAX, top = UINT64_MAX, right = 0, bottom = 0;
    for (std::size_t i = 0; i < info.damage.size(); ++i) {
        const DamageRect& r = info.damage[i];
        const std::uint64_t r_right = std::uint64_t{r.x} + r.width, r_bottom = std::uint64_t{r.y} + r.height;
        if (r.width == 0 || r.height == 0 || r_right > width || r_bottom > height) {
            return make_error(Errc::invalid_argument,
                              "present: damage rectangle {} ({},{} {}x{}) is empty or outside the {}x{} image", i, r.x,
                              r.y, r.width, r.height, width, height);
        }
        left = std::min<std::uint64_t>(left, r.x);
        top = std::min<std::uint64_t>(top, r.y);
        right = std::max(right, r_right);
        bottom = std::max(bottom, r_bottom);
        if (i < max_damage_rects) metadata.damage[i] = r;
    }
    if (info.damage.size() > max_damage_rects) {
        metadata.damage = {};
        metadata.damage[0] = DamageRect{static_cast<std::uint32_t>(left), static_cast<std::uint32_t>(top),
                                        static_cast<std::uint32_t>(right - left),
                                        static_cast<std::uint32_t>(bottom - top)};
        metadata.damage_count = 1;
    } else {
        metadata.damage_count = static_cast<std::uint32_t>(info.damage.size());
    }
    return metadata;
}

namespace detail {
// A present's first three payload words (PresentMetadata up to its damage), read without
// copying the rest: a present with no damage, flags or content time is told apart by them
// and payload_tail_set(m, present_head_words).
struct PresentHead {
    std::uint64_t begin_frame_sequence = 0;
    std::int64_t content_time_ns = 0;
    std::uint32_t flags = 0;
    std::uint32_t damage_count = 0;
};
static_assert(offsetof(PresentMetadata, damage) == sizeof(PresentHead), "PresentHead is PresentMetadata's prefix");
inline constexpr std::uint32_t present_head_words = sizeof(PresentHead) / 8;
template <typename Message>
PresentHead present_head(const Message& m) noexcept {
    PresentHead head;
    std::memcpy(&head, m.payload.data(), sizeof head);
    return head;
}

// Whether any damage entry from `from` on is not zero: a jump into an unrolled chain (as
// payload_tail_set in messages.hpp), 2 loads and 2 ORs per unused entry, per present.
inline bool damage_set_from(const PresentMetadata& m, std::uint32_t from) noexcept {
    static_assert(max_damage_rects == 8 && sizeof(DamageRect) == 16, "one case per entry below");
    const auto rect = [&m](std::size_t at) {
        std::array<std::uint64_t, 2> words{};
        std::memcpy(words.data(), &m.damage[at], sizeof words);
        return words[0] | words[1];
    };
    std::uint64_t acc = 0;
    switch (from) {
        case 0: acc |= rect(0); [[fallthrough]];
        case 1: acc |= rect(1); [[fallthrough]];
        case 2: acc |= rect(2); [[fallthrough]];
        case 3: acc |= rect(3); [[fallthrough]];
        case 4: acc |= rect(4); [[fallthrough]];
        case 5: acc |= rect(5); [[fallthrough]];
        case 6: acc |= rect(6); [[fallthrough]];
        case 7: acc |= rect(7); [[fallthrough]];
        default:
            break;
    }
    return acc != 0;
}
}  // namespace detail

// A received present's metadata against the image it names (width x height): known flags,
// a content time >= 0, at most max_damage_rects rectangles, each non-empty and inside the
// image (computed in 64 bits: x + width cannot wrap), and the entries after damage_count
// zero. Errc::protocol naming the first field that is wrong. The begin_frame sequence is
// the endpoint's to check (it knows which begin_frames it sent).
inline Result<void> check_present_metadata(const PresentMetadata& m, std::uint32_t width, std::uint32_t height) {
    if ((m.flags & ~known_present_flags) != 0) {
        return make_error(Errc::protocol, "present flags 0x{:x} has unknown bits 0x{:x}", m.flags,
                          m.flags & ~known_present_flags);
    }
    if (m.content_time_ns < 0) return make_error(Errc::protocol, "content time {} ns is negative", m.content_time_ns);
    if (m.damage_count > max_damage_rects) {
        return make_error(Errc::protocol, "{} damage rectangles, more than {}", m.damage_count, max_damage_rects);
    }
    if (detail::damage_set_from(m, m.damage_count)) [[unlikely]] {
        std::size_t i = m.damage_count;
        while (m.damage[i] == DamageRect{}) ++i;
        return make_error(Errc::protocol, "damage rectangle {} is set, but the count is {}", i, m.damage_count);
    }
    for (std::size_t i = 0; i < m.damage_count; ++i) {
        const DamageRect& r = m.damage[i];
        if (r.width == 0 || r.height == 0 || std::uint64_t{r.x} + r.width > width ||
            std::uint64_t{r.y} + r.height > height) {
            return make_error(Errc::protocol, "damage rectangle {} ({},{} {}x{}) is empty or outside the {}x{} image",
                              i, r.x, r.y, r.width, r.height, width, height);
        }
    }
    return {};
}

// The damage of two presents in a row, for a consumer that shows only the second: what
// changed since the frame before the first. Both checked, for images of the same size;
// same_size false (another size, an image the consumer does not have) damages the whole
// image. Whole (count 0) if either is whole; the rectangles of both where they fit in
// max_damage_rects, else their bounding box, so the result only grows (a consumer that
// redraws it misses no change). Only `into`'s damage changes; both must be checked metadata
// (check_present_metadata: the entries after the count are zero), or made by this function.
inline void merge_damage(PresentMetadata& into, const PresentMetadata& later, bool same_size) noexcept {
    if (into.damage_count == 0) return;  // whole already (checked metadata: its entries are zero)
    if (!same_size || later.damage_count == 0) {
        into.damage = {};
        into.damage_count = 0;
        return;
    }
    const std::size_t total = std::size_t{into.damage_count} + later.damage_count;
    if (total <= max_damage_rects) {
        std::copy_n(later.damage.begin(), later.damage_count, into.damage.begin() + into.damage_count);
        into.damage_count = static_cast<std::uint32_t>(total);
        return;
    }
    std::uint64_t left = UINT64_MAX, top = UINT64_MAX, right = 0, bottom = 0;
    for (const PresentMetadata* m : std::array<const PresentMetadata*, 2>{&into, &later}) {
        for (std::size_t i = 0; i < m->damage_count && i < max_damage_rects; ++i) {
            const DamageRect& r = m->damage[i];
            left = std::min<std::uint64_t>(left, r.x);
            top = std::min<std::uint64_t>(top, r.y);
            right = std::max<std::uint64_t>(right, std::uint64_t{r.x} + r.width);
            bottom = std::max<std::uint64_t>(bottom, std::uint64_t{r.y} + r.height);
        }
    }
    into.damage = {};
    into.damage[0] = DamageRect{static_cast<std::uint32_t>(left), static_cast<std::uint32_t>(top),
                                static_cast<std::uint32_t>(right - left), static_cast<std::uint32_t>(bottom - top)};
    into.damage_count = 1;
}

// How many pixels of a width x height image the damage covers, overlaps counted once
// (exact: the rectangles' edges cut it into at most 15 x 15 cells). For checked
// metadata; no damage is the whole image.
inline std::uint64_t damaged_pixel_count(const PresentMetadata& m, std::uint32_t width, std::uint32_t height) {
    if (m.damage_count == 0) return std::uint64_t{width} * height;
    const std::size_t n = std::min<std::size_t>(m.damage_count, max_damage_rects);
    std::array<std::uint64_t, 2 * max_damage_rects> xs{}, ys{};
    for (std::size_t i = 0; i < n; ++i) {
        xs[2 * i] = m.damage[i].x;
        xs[2 * i + 1] = std::uint64_t{m.damage[i].x} + m.damage[i].width;
        ys[2 * i] = m.damage[i].y;
        ys[2 * i + 1] = std::uint64_t{m.damage[i].y} + m.damage[i].height;
    }
    std::sort(xs.begin(), xs.begin() + 2 * n);
    std::sort(ys.begin(), ys.begin() + 2 * n);
    std::uint64_t covered = 0;
    for (std::size_t xi = 0; xi + 1 < 2 * n; ++xi) {
        for (std::size_t yi = 0; yi + 1 < 2 * n; ++yi) {
            const std::uint64_t cx = xs[xi], cy = ys[yi];
            if (xs[xi + 1] == cx || ys[yi + 1] == cy) continue;
            const bool inside = std::any_of(m.damage.begin(), m.damage.begin() + static_cast<std::ptrdiff_t>(n),
                                            [&](const DamageRect& r) {
                                                return cx >= r.x && cx < std::uint64_t{r.x} + r.width && cy >= r.y &&
                                                       cy < std::uint64_t{r.y} + r.height;
                                            });
            if (inside) covered += (xs[xi + 1] - cx) * (ys[yi + 1] - cy);
        }
    }
    return covered;
}

}  // namespace texshare
