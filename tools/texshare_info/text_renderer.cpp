#include "text_renderer.hpp"

#include <algorithm>
#include <iterator>

#include <fmt/format.h>

#include "names.hpp"
#include "texshare/format.hpp"
#include "verdict.hpp"

namespace texshare::info {
namespace {

constexpr std::size_t line_width = 100;

using Out = std::back_insert_iterator<std::string>;

// `items` after `head`, comma separated, continuing on lines indented by `indent` so a
// 47-format EGL list stays readable.
void wrapped(std::string& out, const std::string& head, const std::vector<std::string>& items,
             std::size_t indent) {
    std::string line = head;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const std::string item = items[i] + (i + 1 < items.size() ? "," : "");
        if (line.size() + 1 + item.size() > line_width && line.size() > indent) {
            out += line + '\n';
            line = std::string(indent, ' ') + item;
        } else {
            line += (line.empty() || line.back() == ' ' ? "" : " ") + item;
        }
    }
    out += line + '\n';
}

std::string format_with_modifiers(const FormatModifiers& format) {
    if (format.modifiers.empty()) return fourcc_label(format.fourcc);
    std::vector<std::string> names;
    for (const Modifier& modifier : format.modifiers) {
        names.push_back(modifier_name(modifier.value) + (modifier.external_only ? " (external only)" : ""));
    }
    return fmt::format("{} ({})", fourcc_label(format.fourcc), fmt::join(names, ", "));
}

std::vector<std::string> format_list(const std::vector<FormatModifiers>& formats) {
    std::vector<std::string> items;
    std::ranges::transform(formats, std::back_inserter(items), format_with_modifiers);
    return items;
}

void platform(std::string& out, const EglPlatformReport& egl, std::string_view indent) {
    if (!egl.opened()) {
        fmt::format_to(Out(out), "{}EGL {} platform: does not open: {}\n", indent, egl.platform, egl.error);
        return;
    }
    fmt::format_to(Out(out), "{}EGL {} platform: EGL {}, {}\n", indent, egl.platform, egl.version,
                   egl.renderer);
    fmt::format_to(Out(out), "{}  DMA-BUF import: {}", indent, egl.imports() ? "yes" : "no");
    if (egl.imports()) fmt::format_to(Out(out), ", modifiers: {}", egl.import_modifiers ? "yes" : "no");
    fmt::format_to(Out(out), "; export extension: {}\n", egl.dma_buf_export_listed ? "listed" : "not listed");
    if (!egl.importer_error.empty()) {
        fmt::format_to(Out(out), "{}  why no import: {}\n", indent, egl.importer_error);
        return;
    }
    const bool any_modifier = std::ranges::any_of(
        egl.import_formats, [](const FormatModifiers& format) { return !format.modifiers.empty(); });
    const std::string head = fmt::format("{}  import formats ({}{}):", indent, egl.import_formats.size(),
                                         any_modifier ? "" : ", no modifiers listed: implicit or LINEAR");
    wrapped(out, head, format_list(egl.import_formats), indent.size() + 4);
}

void round_trips(std::string& out, const std::vector<RoundTrip>& trips) {
    if (trips.empty()) return;
    fmt::format_to(
        Out(out), "    round trips ({}x{}: GBM allocation, CPU write, Unix socket, EGL import, read back):\n",
        probe_width, probe_height);
    for (const RoundTrip& trip : trips) {
        const std::string name =
            fmt::format("{}/{}", fourcc_label(trip.fourcc), modifier_name(trip.modifier));
        switch (trip.outcome) {
            case Outcome::works:
                fmt::format_to(Out(out), "      {:<17} works\n", name);
                break;
            case Outcome::failed:
                fmt::format_to(Out(out), "      {:<17} FAILED at {}: {}\n", name, trip.stage, trip.detail);
                break;
            case Outcome::not_allocatable:
                fmt::format_to(Out(out), "      {:<17} not allocatable here: {}\n", name, trip.detail);
                break;
            case Outcome::untested:
            case Outcome::unsupported:
                fmt::format_to(Out(out), "      {:<17} {}: {}\n", name, to_string(trip.outcome), trip.detail);
                break;
        }
    }
}

void node(std::string& out, const DrmNodeReport& node) {
    fmt::format_to(Out(out), "  {}: {}, {} node, dev_t {}\n", node.path,
                   node.driver.empty() ? "driver unknown" : node.driver,
                   node.render_node ? "render" : "primary", device_number_label(node.device_number));
    if (!node.gbm_error.empty()) {
        fmt::format_to(Out(out), "    GBM allocates nothing here: {}\n", node.gbm_error);
        if (!node.note.empty()) fmt::format_to(Out(out), "    ({})\n", node.note);
        return;
    }
    wrapped(out, "    GBM allocates:", format_list(node.gbm_formats), 6);
    if (node.egl) platform(out, *node.egl, "    ");
    round_trips(out, node.round_trips);
}

void feature(std::string& out, std::string_view name, const Feature& feature) {
    fmt::format_to(Out(out), "  {}: {}{}{}\n", name, to_string(feature.outcome),
                   feature.detail.empty() ? "" : ": ", feature.detail);
}

void exporters(std::string& out, const Report& report) {
    out += "\nDMA-BUF exporters without a GPU:\n";
    if (!report.heaps_error.empty()) {
        fmt::format_to(Out(out), "  DMA-BUF heaps: none: {}\n", report.heaps_error);
    } else {
        fmt::format_to(Out(out), "  DMA-BUF heaps ({}):\n", report.heaps.size());
        for (const HeapReport& heap : report.heaps)
            feature(out, fmt::format("  {}", heap.name), heap.allocation);
    }
    feature(out, "udmabuf", report.udmabuf.conversion);
    for (const UdmabufImport& import : report.udmabuf.imports) {
        if (import.outcome == Outcome::failed) {
            fmt::format_to(Out(out), "    import by {}: FAILED at {}: {}\n", import.api, import.stage,
                           import.detail);
        } else {
            fmt::format_to(Out(out), "    import by {}: {}{}{}\n", import.api, to_string(import.outcome),
                           import.detail.empty() ? "" : ": ", import.detail);
        }
    }
}

void vulkan_devices(std::string& out, const Report& report) {
    if (report.vulkan_devices.empty()) {
        fmt::format_to(Out(out), "\nVulkan devices: none: {}\n", report.vulkan_error);
        return;
    }
    fmt::format_to(Out(out), "\nVulkan devices ({}):\n", report.vulkan_devices.size());
    for (const VulkanOpaqueReport& device : report.vulkan_devices) {
        fmt::format_to(Out(out), "  {}: device UUID {}, driver UUID {}\n", device.device, device.device_uuid,
                       device.driver_uuid);
        feature(out, "  OPAQUE_FD memory (driver's word)", device.opaque_fd);
    }
}

}  // namespace

std::string render_text(const Report& report) {
    std::string out = fmt::format("texshare-info {} (Linux {})\n\n", report.version,
                                  report.kernel_release.empty() ? "?" : report.kernel_release);
    if (!report.drm_error.empty()) {
        fmt::format_to(Out(out), "DRM devices: unknown: {}\n", drm_unavailable_reason(report));
    } else if (report.nodes.empty()) {
        fmt::format_to(Out(out),
                       "DRM devices: none: {}, so GPU buffers cannot be\n"
                       "shared here; images are shared through shared memory (sealed memfds) instead.\n",
                       drm_unavailable_reason(report));
    } else {
        fmt::format_to(Out(out), "DRM devices ({} nodes):\n", report.nodes.size());
        for (const DrmNodeReport& entry : report.nodes) node(out, entry);
    }
    out += '\n';
    platform(out, report.surfaceless, "");
    out += "\nkernel:\n";
    feature(out, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE", report.export_sync_file);
    feature(out, "DMA_BUF_IOCTL_IMPORT_SYNC_FILE", report.import_sync_file);
    feature(out, "memfd sealing", report.memfd_sealing);
    exporters(out, report);
    vulkan_devices(out, report);
    out += "\nverdicts:\n";
    const std::vector<Verdict> verdicts = judge(report);
    for (const Verdict& verdict : verdicts) {
        fmt::format_to(Out(out), "  {}{}: {}\n", verdict.fallback ? "fallback: " : "", verdict.path,
                       verdict.summary);
    }
    fmt::format_to(Out(out), "best path here: {}\n", best_path(verdicts));
    return out;
}

}  // namespace texshare::info
