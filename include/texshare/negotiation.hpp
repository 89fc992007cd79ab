// negotiate(): the format and modifiers a producer should allocate, given what the consumer
// can import (its FormatTable) and what the producer's allocator can make.
//
// Use it on the producer once the consumer's table arrives (and again whenever it changes,
// e.g. after the consumer restarted on another GPU): the answer is one of four paths, with
// a sentence saying why, so "the other side cannot import this" is settled before the first
// allocation instead of failing at the first frame.
// - zero_copy: same DRM device; every modifier both sides support, in the consumer's order.
// - linear_cross_device: different (or unknown) devices; a tiled or compressed layout means
//   nothing to another GPU, so only LINEAR, and only if the consumer imports it.
// - shared_memory_udmabuf: nothing both sides can do as a DMA-BUF (typically a producer with
//   no GPU, a CPU renderer), but the consumer says it converts shared memory
//   (consumer_converts_shared_memory in its FormatTable) and imports a wanted format LINEAR:
//   the producer shares sealed memfds (MemfdAllocator), the consumer turns each into a
//   DMA-BUF once (udmabuf.hpp) and imports it, so no pixel is copied.
// - shared_memory: none of the above; sealed memfds and a CPU upload (a copy per frame).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <sys/sysmacros.h>
#include <sys/types.h>
#include <xf86drm.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <drm_fourcc.h>

#include "texshare/format.hpp"
#include "texshare/format_set.hpp"
#include "texshare/format_table.hpp"
#include "texshare/result.hpp"

namespace texshare {

// Whether two device numbers (st_rdev of /dev/dri nodes) name one DRM device: the primary
// node /dev/dri/card0 and the render node /dev/dri/renderD128 of one GPU are two numbers,
// 226:0 and 226:128, and one device. Asks libdrm (drmGetDeviceFromDevId, which reads the
// node's bus from sysfs, then drmDevicesEqual, which compares bus type and address). Equal
// numbers are one device without asking; 0 (no device) matches nothing; a number libdrm
// cannot describe (no such node on this machine) matches only itself.
inline bool same_drm_device(std::uint64_t a, std::uint64_t b) noexcept {
    if (a == 0 || b == 0) return false;
    if (a == b) return true;
    drmDevicePtr first = nullptr;
    drmDevicePtr second = nullptr;
    const bool described = drmGetDeviceFromDevId(static_cast<dev_t>(a), 0, &first) == 0 &&
                           drmGetDeviceFromDevId(static_cast<dev_t>(b), 0, &second) == 0;
    const bool same = described && drmDevicesEqual(first, second) != 0;
    if (first != nullptr) drmFreeDevice(&first);
    if (second != nullptr) drmFreeDevice(&second);
    return same;
}

// How negotiate() tells whether two device numbers are one device: same_drm_device, or a
// stand-in in tests that describe devices this machine does not have.
using DeviceIdentity = bool (*)(std::uint64_t, std::uint64_t) noexcept;

// What the producer's allocator makes: gbm::Device::allocatable_formats(), as it is.
struct ProducerCapabilities {
    std::uint64_t device = 0;  // st_rdev of a node of the allocating DRM device; 0: none
    FormatSet formats;         // DRM_FORMAT_MOD_INVALID: the implicit layout
};

enum class SharingPath { zero_copy, linear_cross_device, shared_memory, shared_memory_udmabuf };

constexpr const char* to_string(SharingPath path) noexcept {
    switch (path) {
        case SharingPath::zero_copy:
            return "zero-copy";
        case SharingPath::linear_cross_device:
            return "linear across devices";
        case SharingPath::shared_memory:
            return "shared memory";
        case SharingPath::shared_memory_udmabuf:
            return "shared memory, imported through udmabuf";
    }
    return "unknown";
}

struct NegotiatedFormat {
    SharingPath path = SharingPath::shared_memory;
    std::uint32_t fourcc = 0;
    // For gbm::AllocationRequest; empty for both shared-memory paths (the producer allocates
    // LINEAR memfds, MemfdAllocator, page-sized so udmabuf takes them).
    std::vector<std::uint64_t> modifiers;
    // Row alignment in bytes for the producer's MemfdAllocator: 256 on the udmabuf path, where
    // the consumer's GPU imports the rows as they are (radeonsi refuses LINEAR pitches that are
    // not multiples of 256: dma_heap_allocator.hpp gives the sources), else MemfdAllocator's 64.
    std::uint32_t stride_alignment = 64;
    std::string reason;
};

// `wanted`: the fourccs the producer can render, in its order of preference; the consumer's
// order decides among modifiers, the producer's among formats. Devices are compared with
// `same_device` (default: libdrm's view, same_drm_device), never by raw number. Errc::unsupported
// only when `wanted` is empty.
inline Result<NegotiatedFormat> negotiate(const FormatTable& consumer, const ProducerCapabilities& producer,
                                          std::span<const std::uint32_t> wanted,
                                          DeviceIdentity same_device = same_drm_device) {
    if (wanted.empty()) return make_error(Errc::unsupported, "negotiate: the producer wants no format at all");
    const bool one_device = same_device(consumer.device, producer.device);
    auto device_name = [](std::uint64_t device) {
        return fmt::format("{}:{}", major(static_cast<dev_t>(device)), minor(static_cast<dev_t>(device)));
    };
    const FormatSet common = consumer.formats.intersect(producer.formats);  // the consumer's order
    for (std::uint32_t fourcc : wanted) {
        const DrmFormat* format = common.find(fourcc);
        if (format == nullptr) continue;
        NegotiatedFormat choice;
        choice.fourcc = fourcc;
        for (const FormatModifier& m : format->modifiers) {
            // A tiled, compressed or implicit layout means nothing to another GPU.
            if (one_device || m.modifier == DRM_FORMAT_MOD_LINEAR) choice.modifiers.push_back(m.modifier);
        }
        if (choice.modifiers.empty()) continue;
        choice.path = one_device ? SharingPath::zero_copy : SharingPath::linear_cross_device;
        choice.reason =
            one_device ? fmt::format("{}: both sides on one device (consumer {}, producer {}), {} common modifiers",
                                     format_name(fourcc), device_name(consumer.device),
                                     device_name(producer.device), choice.modifiers.size())
                       : fmt::format("{}: producer on device {}, consumer on {}: LINEAR only", format_name(fourcc),
                                     device_name(producer.device), device_name(consumer.device));
        return choice;
    }
    if ((consumer.capabilities & consumer_converts_shared_memory) != 0) {
        // udmabuf makes LINEAR DMA-BUFs only, so the consumer must import the format LINEAR.
        for (std::uint32_t fourcc : wanted) {
            if (!consumer.contains(fourcc, DRM_FORMAT_MOD_LINEAR)) continue;
            NegotiatedFormat choice;
            choice.path = SharingPath::shared_memory_udmabuf;
            choice.stride_alignment = 256;
            choice.fourcc = fourcc;
            choice.reason = fmt::format(
                "{}: no DMA-BUF format both sides support (producer device {}, {} producer pairs), but the "
                "consumer converts shared memory to DMA-BUFs (udmabuf) and imports {}/LINEAR: shared memory, "
                "imported through udmabuf, no copy",
                format_name(fourcc), device_name(producer.device), producer.formats.pair_count(),
                format_name(fourcc));
            return choice;
        }
    }
    NegotiatedFormat fallback;
    fallback.fourcc = wanted.front();
    fallback.reason = fmt::format(
        "no DMA-BUF format both sides support among the {} wanted ({} consumer pairs, device {} vs {}{}{}): "
        "shared memory",
        wanted.size(), consumer.formats.pair_count(), device_name(producer.device), device_name(consumer.device),
        one_device ? ", one device" : "",
        (consumer.capabilities & consumer_converts_shared_memory) != 0
            ? ", and the consumer, though it converts shared memory, imports none of them LINEAR"
            : "");
    return fallback;
}

}  // namespace texshare
