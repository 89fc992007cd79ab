// negotiate(): the format and modifiers a producer should allocate, given what the consumer
// can import (its FormatTable) and what the producer's allocator can make.
//
// Use it on the producer once the consumer's table arrives (and again whenever it changes,
// e.g. after the consumer restarted on another GPU): the answer is one of three paths, with
// a sentence saying why, so "the other side cannot import this" is settled before the first
// allocation instead of failing at the first frame.
// - zero_copy: same DRM device; every modifier both sides support, in the consumer's order.
// - linear_cross_device: different (or unknown) devices; a tiled or compressed layout means
//   nothing to another GPU, so only LINEAR, and only if the consumer imports it.
// - shared_memory: nothing both sides can do as a DMA-BUF; sealed memfds and a CPU upload.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <drm_fourcc.h>

#include "texshare/format.hpp"
#include "texshare/format_table.hpp"
#include "texshare/result.hpp"

namespace texshare {

// What the producer's allocator makes (e.g. from gbm::Device::allocatable_formats()).
struct AllocatableFormat {
    std::uint32_t fourcc = 0;
    std::vector<std::uint64_t> modifiers;  // DRM_FORMAT_MOD_INVALID: implicit layout
};
struct ProducerCapabilities {
    std::uint64_t device = 0;  // dev_t of the allocating DRM device; 0: none
    std::vector<AllocatableFormat> formats;
};

enum class SharingPath { zero_copy, linear_cross_device, shared_memory };

constexpr const char* to_string(SharingPath path) noexcept {
    switch (path) {
        case SharingPath::zero_copy:
            return "zero-copy";
        case SharingPath::linear_cross_device:
            return "linear across devices";
        case SharingPath::shared_memory:
            return "shared memory";
    }
    return "unknown";
}

struct NegotiatedFormat {
    SharingPath path = SharingPath::shared_memory;
    std::uint32_t fourcc = 0;
    std::vector<std::uint64_t> modifiers;  // for gbm::AllocationRequest; empty for shared memory
    std::string reason;
};

// `wanted`: the fourccs the producer can render, in its order of preference; the consumer's
// order decides among modifiers, the producer's among formats. Errc::unsupported only when
// `wanted` is empty.
inline Result<NegotiatedFormat> negotiate(const FormatTable& consumer, const ProducerCapabilities& producer,
                                          std::span<const std::uint32_t> wanted) {
    if (wanted.empty()) return make_error(Errc::unsupported, "negotiate: the producer wants no format at all");
    const bool same_device = consumer.device != 0 && consumer.device == producer.device;
    for (std::uint32_t fourcc : wanted) {
        const AllocatableFormat* allocatable = nullptr;
        for (const AllocatableFormat& format : producer.formats) {
            if (format.fourcc == fourcc) allocatable = &format;
        }
        if (allocatable == nullptr) continue;
        auto can_allocate = [&](std::uint64_t modifier) {
            for (std::uint64_t m : allocatable->modifiers) {
                if (m == modifier) return true;
            }
            return false;
        };
        NegotiatedFormat choice;
        choice.fourcc = fourcc;
        for (const FormatTableEntry& entry : consumer.entries) {
            if (entry.fourcc != fourcc || !can_allocate(entry.modifier)) continue;
            if (!same_device && entry.modifier != DRM_FORMAT_MOD_LINEAR) continue;
            choice.modifiers.push_back(entry.modifier);
        }
        if (choice.modifiers.empty()) continue;
        choice.path = same_device ? SharingPath::zero_copy : SharingPath::linear_cross_device;
        choice.reason = same_device
                            ? fmt::format("{}: both sides on device {:#x}, {} common modifiers", format_name(fourcc),
                                          consumer.device, choice.modifiers.size())
                            : fmt::format("{}: producer on device {:#x}, consumer on {:#x}: LINEAR only",
                                          format_name(fourcc), producer.device, consumer.device);
        return choice;
    }
    NegotiatedFormat fallback;
    fallback.fourcc = wanted.front();
    fallback.reason = fmt::format(
        "no DMA-BUF format both sides support among the {} wanted ({} consumer entries, device {:#x} vs {:#x}): "
        "shared memory",
        wanted.size(), consumer.entries.size(), producer.device, consumer.device);
    return fallback;
}

}  // namespace texshare
