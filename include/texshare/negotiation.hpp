// negotiate(): the format and modifiers a producer should allocate, given what the consumer
// can import (its FormatTable) and what the producer's allocator can make.
//
// Use it on the producer once the consumer's table arrives (and again whenever it changes,
// e.g. after the consumer restarted on another GPU): the answer is one of four paths, with
// a sentence saying why, so "the other side cannot import this" is settled before the first
// allocation instead of failing at the first frame. In the order tried:
// - zero_copy: same DRM device; every modifier both sides support, in the consumer's order.
// - opaque_fd: both sides name the same Vulkan device and driver (FormatTable::uuids and
//   ProducerCapabilities::uuids equal and known) and the consumer imports opaque memory
//   (consumer_imports_opaque_memory): the producer allocates Vulkan images exported as
//   OPAQUE_FD (vulkan::Exporter), in the driver's own layout; the only GPU path where the
//   driver has no DMA-BUF export (NVIDIA's proprietary driver). Never offered otherwise:
//   such memory means nothing to another device or driver (format_table.hpp, DeviceUuids).
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
#include <optional>
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
    // The producer's Vulkan device and driver, where it can allocate Vulkan images and export
    // them as OPAQUE_FD (vulkan::Exporter); empty otherwise (no opaque_fd path then).
    DeviceUuids uuids{};
};

enum class SharingPath { zero_copy, linear_cross_device, shared_memory, shared_memory_udmabuf, opaque_fd };

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
        case SharingPath::opaque_fd:
            return "Vulkan opaque memory, same device and driver";
    }
    return "unknown";
}

struct NegotiatedFormat {
    SharingPath path = SharingPath::shared_memory;
    std::uint32_t fourcc = 0;
    // For gbm::AllocationRequest; empty for both shared-memory paths (the producer allocates
    // LINEAR memfds, MemfdAllocator, page-sized so udmabuf takes them) and for opaque_fd (the
    // driver's own optimal tiling, which no modifier names).
    std::vector<std::uint64_t> modifiers;
    // Row alignment in bytes for the producer's MemfdAllocator: 256 on the udmabuf path, where
    // the consumer's GPU imports the rows as they are (radeonsi refuses LINEAR pitches that are
    // not multiples of 256: dma_heap_allocator.hpp gives the sources), else MemfdAllocator's 64.
    std::uint32_t stride_alignment = 64;
    std::string reason;
};

// Why negotiate() does not offer SharingPath::opaque_fd ("the consumer does not import opaque
// memory", "device UUIDs differ: consumer ..., producer ..."); empty when it does. Both sides'
// UUIDs must be known and equal, device and driver alike (Vulkan spec, "External memory
// handle types compatibility"), and the consumer must claim consumer_imports_opaque_memory.
inline std::string opaque_fd_refusal(const FormatTable& consumer, const ProducerCapabilities& producer) {
    if ((consumer.capabilities & consumer_imports_opaque_memory) == 0) {
        return "the consumer does not import opaque memory";
    }
    if (!producer.uuids.known()) return "the producer names no Vulkan device and driver UUIDs";
    if (!consumer.uuids.known()) return "the consumer names no Vulkan device and driver UUIDs";
    if (consumer.uuids.device != producer.uuids.device) {
        return fmt::format("device UUIDs differ: consumer {}, producer {}", uuid_name(consumer.uuids.device),
                           uuid_name(producer.uuids.device));
    }
    if (consumer.uuids.driver != producer.uuids.driver) {
        return fmt::format("driver UUIDs differ: consumer {}, producer {}", uuid_name(consumer.uuids.driver),
                           uuid_name(producer.uuids.driver));
    }
    return "";
}

// `wanted`: the fourccs the producer can render, in its order of preference; the consumer's
// order decides among modifiers, the producer's among formats. Devices are compared with
// `same_device` (default: libdrm's view, same_drm_device), never by raw number. On the
// opaque_fd path the fourcc is the producer's first wanted one: one driver on one device
// imports what it exports, so the producer's allocator (vulkan::Exporter) is the judge.
// Where a consumer imports opaque memory but the path is not taken, every later path's
// reason ends with opaque_fd_refusal()'s. Errc::unsupported only when `wanted` is empty.
inline Result<NegotiatedFormat> negotiate(const FormatTable& consumer, const ProducerCapabilities& producer,
                                          std::span<const std::uint32_t> wanted,
                                          DeviceIdentity same_device = same_drm_device) {
    if (wanted.empty()) return make_error(Errc::unsupported, "negotiate: the producer wants no format at all");
    const bool one_device = same_device(consumer.device, producer.device);
    auto device_name = [](std::uint64_t device) {
        return fmt::format("{}:{}", major(static_cast<dev_t>(device)), minor(static_cast<dev_t>(device)));
    };
    const FormatSet common = consumer.formats.intersect(producer.formats);  // the consumer's order
    const std::string not_opaque = opaque_fd_refusal(consumer, producer);
    // Only a consumer that asked for opaque memory is told why it did not get it.
    const std::string opaque_note = (consumer.capabilities & consumer_imports_opaque_memory) != 0
                                        ? fmt::format("; not Vulkan opaque memory: {}", not_opaque)
                                        : std::string();
    auto dma_buf_choice = [&](bool linear_only) -> std::optional<NegotiatedFormat> {
        for (std::uint32_t fourcc : wanted) {
            const DrmFormat* format = common.find(fourcc);
            if (format == nullptr) continue;
            NegotiatedFormat choice;
            choice.fourcc = fourcc;
            for (const FormatModifier& m : format->modifiers) {
                // A tiled, compressed or implicit layout means nothing to another GPU.
                if (!linear_only || m.modifier == DRM_FORMAT_MOD_LINEAR) choice.modifiers.push_back(m.modifier);
            }
            if (choice.modifiers.empty()) continue;
            choice.path = linear_only ? SharingPath::linear_cross_device : SharingPath::zero_copy;
            choice.reason =
                linear_only
                    ? fmt::format("{}: producer on device {}, consumer on {}: LINEAR only{}", format_name(fourcc),
                                  device_name(producer.device), device_name(consumer.device), opaque_note)
                    : fmt::format("{}: both sides on one device (consumer {}, producer {}), {} common modifiers",
                                  format_name(fourcc), device_name(consumer.device), device_name(producer.device),
                                  choice.modifiers.size());
            return choice;
        }
        return std::nullopt;
    };
    if (one_device) {
        if (auto choice = dma_buf_choice(false)) return std::move(*choice);
    }
    if (not_opaque.empty()) {
        NegotiatedFormat choice;
        choice.path = SharingPath::opaque_fd;
        choice.fourcc = wanted.front();
        choice.reason = fmt::format(
            "{}: both sides on one Vulkan device and driver (device UUID {}, driver UUID {}) and the consumer "
            "imports opaque memory: Vulkan OPAQUE_FD images in the driver's own layout",
            format_name(choice.fourcc), uuid_name(producer.uuids.device), uuid_name(producer.uuids.driver));
        return choice;
    }
    if (!one_device) {
        if (auto choice = dma_buf_choice(true)) return std::move(*choice);
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
                "imported through udmabuf, no copy{}",
                format_name(fourcc), device_name(producer.device), producer.formats.pair_count(),
                format_name(fourcc), opaque_note);
            return choice;
        }
    }
    NegotiatedFormat fallback;
    fallback.fourcc = wanted.front();
    fallback.reason = fmt::format(
        "no DMA-BUF format both sides support among the {} wanted ({} consumer pairs, device {} vs {}{}{}): "
        "shared memory{}",
        wanted.size(), consumer.formats.pair_count(), device_name(producer.device), device_name(consumer.device),
        one_device ? ", one device" : "",
        (consumer.capabilities & consumer_converts_shared_memory) != 0
            ? ", and the consumer, though it converts shared memory, imports none of them LINEAR"
            : "",
        opaque_note);
    return fallback;
}

}  // namespace texshare
