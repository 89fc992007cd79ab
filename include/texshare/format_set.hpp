// FormatSet: DRM formats (fourccs), each with the modifiers it comes in and per-modifier
// flags, in preference order. The one type for "what a side can do with DMA-BUFs".
//
// Use it wherever a list of (fourcc, modifier) pairs is needed: EGL's importable and
// renderable formats (egl::Display::dma_buf_formats, render_formats), what GBM allocates
// (gbm::Device::allocatable_formats), what a consumer advertises (FormatTable) and what
// negotiate() matches; each of those hands this type to the next, so no caller converts.
// Shaped like wlroots' wlr_drm_format_set: formats keyed by fourcc, each holding its
// modifiers. Unlike it, order is kept (a consumer's order of modifiers is its preference,
// see negotiation.hpp) and each modifier carries flags (format_external_only from
// eglQueryDmaBufModifiersEXT, format_scanout for a display plane).
//
// Lookups are linear: real sets hold tens of formats with a handful of modifiers each, and
// a vector keeps the preference order that a map would lose.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

namespace texshare {

// Per-modifier flags. On the wire of format_table.hpp too: never renumber.
inline constexpr std::uint32_t format_scanout = 1;        // the consumer can put it on a display plane
inline constexpr std::uint32_t format_external_only = 2;  // EGL samples it only as GL_TEXTURE_EXTERNAL_OES
inline constexpr std::uint32_t known_format_flags = format_scanout | format_external_only;

struct FormatModifier {
    std::uint64_t modifier = 0;  // DRM_FORMAT_MOD_*; DRM_FORMAT_MOD_INVALID: the implicit layout
    std::uint32_t flags = 0;     // format_scanout, format_external_only
    friend bool operator==(const FormatModifier&, const FormatModifier&) = default;
};

// One fourcc with its modifiers, in preference order, each modifier at most once.
struct DrmFormat {
    std::uint32_t fourcc = 0;
    std::vector<FormatModifier> modifiers;

    const FormatModifier* find(std::uint64_t modifier) const noexcept {
        auto found = std::ranges::find(modifiers, modifier, &FormatModifier::modifier);
        return found != modifiers.end() ? &*found : nullptr;
    }
    bool has(std::uint64_t modifier) const noexcept { return find(modifier) != nullptr; }
    friend bool operator==(const DrmFormat&, const DrmFormat&) = default;
};

class FormatSet {
public:
    // One (fourcc, modifier, flags) triple of the initializer-list constructor.
    struct Entry {
        std::uint32_t fourcc = 0;
        std::uint64_t modifier = 0;
        std::uint32_t flags = 0;
    };

    FormatSet() = default;
    // add() of each entry in order: FormatSet{{AR24, Y_TILED}, {AR24, LINEAR}, {XR24, LINEAR}}.
    FormatSet(std::initializer_list<Entry> entries) {
        for (const Entry& entry : entries) add(entry.fourcc, entry.modifier, entry.flags);
    }

    // Appends (fourcc, modifier) after what the set holds (a new fourcc after every other
    // fourcc, a new modifier after that fourcc's others). An existing pair keeps its place
    // and gains `flags`. True when the pair is new.
    bool add(std::uint32_t fourcc, std::uint64_t modifier, std::uint32_t flags = 0) {
        DrmFormat* format = find_mutable(fourcc);
        if (format == nullptr) format = &formats_.emplace_back(DrmFormat{fourcc, {}});
        for (FormatModifier& existing : format->modifiers) {
            if (existing.modifier == modifier) {
                existing.flags |= flags;
                return false;
            }
        }
        format->modifiers.push_back(FormatModifier{modifier, flags});
        return true;
    }

    // Removes the pair, and the fourcc with its last modifier. True when it was there.
    bool remove(std::uint32_t fourcc, std::uint64_t modifier) {
        DrmFormat* format = find_mutable(fourcc);
        if (format == nullptr || std::erase_if(format->modifiers, [&](const FormatModifier& m) {
                                     return m.modifier == modifier;
                                 }) == 0) {
            return false;
        }
        if (format->modifiers.empty()) std::erase_if(formats_, [&](const DrmFormat& f) { return f.fourcc == fourcc; });
        return true;
    }

    const DrmFormat* find(std::uint32_t fourcc) const noexcept {
        auto found = std::ranges::find(formats_, fourcc, &DrmFormat::fourcc);
        return found != formats_.end() ? &*found : nullptr;
    }
    const FormatModifier* find(std::uint32_t fourcc, std::uint64_t modifier) const noexcept {
        const DrmFormat* format = find(fourcc);
        return format != nullptr ? format->find(modifier) : nullptr;
    }
    bool contains(std::uint32_t fourcc, std::uint64_t modifier) const noexcept {
        return find(fourcc, modifier) != nullptr;
    }

    // The pairs of this set that `other` holds too, in this set's order with this set's
    // flags; a fourcc left without modifiers is left out (wlr_drm_format_set_intersect).
    FormatSet intersect(const FormatSet& other) const {
        FormatSet common;
        for (const DrmFormat& format : formats_) {
            for (const FormatModifier& m : format.modifiers) {
                if (other.contains(format.fourcc, m.modifier)) common.add(format.fourcc, m.modifier, m.flags);
            }
        }
        return common;
    }
    // The pairs none of whose flags are in `flags` (render_formats: without(format_external_only)).
    FormatSet without(std::uint32_t flags) const {
        FormatSet kept;
        for (const DrmFormat& format : formats_) {
            for (const FormatModifier& m : format.modifiers) {
                if ((m.flags & flags) == 0) kept.add(format.fourcc, m.modifier, m.flags);
            }
        }
        return kept;
    }

    std::span<const DrmFormat> formats() const noexcept { return formats_; }
    auto begin() const noexcept { return formats_.begin(); }
    auto end() const noexcept { return formats_.end(); }
    bool empty() const noexcept { return formats_.empty(); }
    std::size_t size() const noexcept { return formats_.size(); }  // fourccs
    std::size_t pair_count() const noexcept {
        std::size_t count = 0;
        for (const DrmFormat& format : formats_) count += format.modifiers.size();
        return count;
    }

    // Same pairs, flags and order: a reordered preference is a different set.
    friend bool operator==(const FormatSet&, const FormatSet&) = default;

private:
    DrmFormat* find_mutable(std::uint32_t fourcc) noexcept {
        auto found = std::ranges::find(formats_, fourcc, &DrmFormat::fourcc);
        return found != formats_.end() ? &*found : nullptr;
    }

    std::vector<DrmFormat> formats_;
};

}  // namespace texshare
