// Why the verdicts read as they do:
// - Zero-copy "works" only on a full round trip (allocate, CPU write, socket, EGL import,
//   readback, compare): EGL listing a format, or GBM allocating it, proves nothing alone.
// - The format a program should use is chosen by a fixed preference (ARGB8888 first, the
//   format most compositors and the example expect), not by device order, so the verdict
//   does not change when libdrm lists the devices in another order.
#include "verdict.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "names.hpp"
#include "texshare/format.hpp"

namespace texshare::info {
namespace {

constexpr std::array preferred_formats{DRM_FORMAT_ARGB8888, DRM_FORMAT_XRGB8888, DRM_FORMAT_ABGR8888,
                                       DRM_FORMAT_XBGR8888};

std::string node_label(const DrmNodeReport& node) {
    return node.driver.empty() ? node.path : fmt::format("{} ({})", node.path, node.driver);
}

std::string combination(std::uint32_t fourcc, std::uint64_t modifier) {
    return fmt::format("{}/{}", fourcc_label(fourcc), modifier_name(modifier));
}

const RoundTrip* first_working(const Report& report, std::uint32_t fourcc) {
    for (const DrmNodeReport& node : report.nodes) {
        for (const RoundTrip& trip : node.round_trips) {
            if (trip.fourcc == fourcc && trip.outcome == Outcome::works) return &trip;
        }
    }
    return nullptr;
}

// The preferred formats first, then any other that worked, in report order.
const RoundTrip* best_round_trip(const Report& report) {
    for (std::uint32_t fourcc : preferred_formats) {
        if (const RoundTrip* trip = first_working(report, fourcc)) return trip;
    }
    for (const DrmNodeReport& node : report.nodes) {
        for (const RoundTrip& trip : node.round_trips) {
            if (trip.outcome == Outcome::works) return &trip;
        }
    }
    return nullptr;
}

Verdict judge_zero_copy(const Report& report) {
    Verdict verdict{zero_copy_path, false, false, "", ""};
    if (report.nodes.empty()) {
        verdict.summary = fmt::format("unavailable: {}", drm_unavailable_reason(report));
        return verdict;
    }
    std::size_t passed = 0, tried = 0;
    for (const DrmNodeReport& node : report.nodes) {
        for (const RoundTrip& trip : node.round_trips) {
            passed += trip.outcome == Outcome::works ? 1 : 0;
            tried += trip.outcome == Outcome::works || trip.outcome == Outcome::failed ? 1 : 0;
        }
    }
    if (const RoundTrip* best = best_round_trip(report)) {
        std::vector<std::string> where;
        for (const DrmNodeReport& node : report.nodes) {
            const bool works = std::ranges::any_of(node.round_trips, [&](const RoundTrip& trip) {
                return trip.fourcc == best->fourcc && trip.modifier == best->modifier &&
                       trip.outcome == Outcome::works;
            });
            if (works) where.push_back(node_label(node));
        }
        verdict.works = true;
        verdict.choice = combination(best->fourcc, best->modifier);
        verdict.summary = fmt::format("works with {} on {} ({} of {} round trips passed)", verdict.choice,
                                      fmt::join(where, ", "), passed, tried);
        return verdict;
    }
    for (const DrmNodeReport& node : report.nodes) {
        for (const RoundTrip& trip : node.round_trips) {
            if (trip.outcome != Outcome::failed) continue;
            verdict.summary = fmt::format(
                "does not work: {}: {} failed at {}: {} ({} of {} round trips passed)", node_label(node),
                combination(trip.fourcc, trip.modifier), trip.stage, trip.detail, passed, tried);
            return verdict;
        }
    }
    const DrmNodeReport& first = report.nodes.front();
    verdict.summary = fmt::format(
        "does not work: no DRM node allocates a LINEAR 32-bit RGB image with GBM "
        "(first, {}: {})",
        node_label(first), first.gbm_error.empty() ? "no round trip ran" : first.gbm_error);
    return verdict;
}

// "works" only where an import read the pattern back exactly: a conversion alone, or an
// import EGL accepted, proves nothing (Mesa 25 on vgem accepts and reads zeros).
Verdict judge_udmabuf(const Report& report) {
    Verdict verdict{udmabuf_path, false, false, "", ""};
    const Feature& conversion = report.udmabuf.conversion;
    if (conversion.outcome != Outcome::works) {
        verdict.summary =
            fmt::format("{}: {}", conversion.outcome == Outcome::failed ? "does not work" : "unavailable",
                        conversion.detail.empty() ? "not tried" : conversion.detail);
        return verdict;
    }
    std::vector<std::string> working;
    const UdmabufImport* first_failure = nullptr;
    for (const UdmabufImport& import : report.udmabuf.imports) {
        if (import.outcome == Outcome::works) working.push_back(import.api);
        if (import.outcome != Outcome::works && first_failure == nullptr) first_failure = &import;
    }
    if (!working.empty()) {
        verdict.works = true;
        verdict.choice = fmt::format("ARGB8888/LINEAR, {}", working.front());
        verdict.summary =
            fmt::format("works: imported with pixels read back exactly by {} ({} of {} imports)",
                        fmt::join(working, ", "), working.size(), report.udmabuf.imports.size());
        return verdict;  // egl::ImportListener and vulkan::ImportListener both convert (convert_shared_memory)
    }
    if (first_failure == nullptr) {
        verdict.summary = "does not work: converts, but no GPU API here to import it with";
        return verdict;
    }
    verdict.summary = fmt::format(
        "does not work: converts, but no import read its pixels back (0 of {}); first, {}: {}{}{}",
        report.udmabuf.imports.size(), first_failure->api,
        first_failure->stage.empty() ? std::string(to_string(first_failure->outcome))
                                     : "failed at " + first_failure->stage,
        first_failure->detail.empty() ? "" : ": ", first_failure->detail);
    return verdict;
}

Verdict judge_shared_memory(const Report& report) {
    const Feature& path = report.shared_memory;
    if (path.outcome == Outcome::works) {
        return {shared_memory_path, true, true, "sealed memfd",
                "works (sealed memfd sent over a Unix socket, mapped by the CPU on both sides)"};
    }
    const char* what = path.outcome == Outcome::untested ? "untested" : "does not work";
    return {shared_memory_path, true, false, "", fmt::format("{}: {}", what, path.detail)};
}

// The driver's word on OPAQUE_FD images, per device, with the UUIDs a peer must match.
Verdict judge_opaque_fd(const Report& report) {
    Verdict verdict{opaque_fd_path, false, false, "", ""};
    if (report.vulkan_devices.empty()) {
        verdict.summary = fmt::format("unavailable: {}",
                                      report.vulkan_error.empty() ? "no Vulkan device" : report.vulkan_error);
        return verdict;
    }
    std::vector<std::string> offering, refusing;
    for (const VulkanOpaqueReport& device : report.vulkan_devices) {
        if (device.opaque_fd.outcome == Outcome::works) {
            offering.push_back(fmt::format("{} (device UUID {}, driver UUID {})", device.device, device.device_uuid,
                                           device.driver_uuid));
        } else {
            refusing.push_back(fmt::format("{}: {}", device.device, device.opaque_fd.detail));
        }
    }
    if (offering.empty()) {
        verdict.summary = fmt::format("unavailable: {}", fmt::join(refusing, "; "));
        return verdict;
    }
    verdict.choice = "RGBA8 optimal tiling, OPAQUE_FD";
    verdict.summary = fmt::format(
        "possible with a peer on the same device and driver: the driver exports and imports RGBA8 optimal-tiling "
        "images as OPAQUE_FD on {} (the driver's word, not a round trip)",
        fmt::join(offering, ", "));
    return verdict;
}

}  // namespace

std::string drm_unavailable_reason(const Report& report) {
    if (!report.nodes.empty()) return "";
    if (!report.drm_error.empty())
        return fmt::format("libdrm could not list DRM devices: {}", report.drm_error);
    if (report.dri_directory) {
        return "libdrm lists no DRM node in /dev/dri (in a container, the devices may not be passed in)";
    }
    return "this machine has no DRM device (no /dev/dri)";
}

std::vector<Verdict> judge(const Report& report) {
    return {judge_zero_copy(report), judge_udmabuf(report), judge_shared_memory(report), judge_opaque_fd(report)};
}

std::string best_path(const std::vector<Verdict>& verdicts) {
    for (const Verdict& verdict : verdicts) {
        if (verdict.works) return fmt::format("{} ({})", verdict.path, verdict.choice);
    }
    return "none";
}

}  // namespace texshare::info
