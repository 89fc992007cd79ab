// Why collection is ordered as it is:
// - One node at a time, each with its own gbm::Device, EGL display and Importer declared in
//   that order, so they are destroyed importer first and device last (the display was
//   opened on the device) before the next node starts.
// - A node is first asked for one ordinary allocation. Render nodes of display-only drivers
//   (vgem, virtio_gpu without 3D) refuse every dumb buffer, and asking them about all
//   formats would only repeat that refusal (and Mesa's stderr complaint) dozens of times.
#include "collect.hpp"

#include <epoxy/egl.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <optional>

#include <fmt/format.h>

#include "dma_buf_exporters.hpp"
#include "vulkan_devices.hpp"
#include "kernel_features.hpp"
#include "round_trip.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/gbm/allocator.hpp"

#ifndef TEXSHARE_INFO_VERSION
#define TEXSHARE_INFO_VERSION "unknown"
#endif

namespace texshare::info {
namespace {

// The four 32-bit RGB formats every sharing peer is likely to want, and NV12, the video
// format, which kms_swrast cannot allocate: the report says so instead of leaving it out.
constexpr std::array round_trip_formats{DRM_FORMAT_ARGB8888, DRM_FORMAT_XRGB8888, DRM_FORMAT_ABGR8888,
                                        DRM_FORMAT_XBGR8888, DRM_FORMAT_NV12};

std::vector<FormatModifiers> to_formats(const FormatSet& set) {
    std::vector<FormatModifiers> formats;
    for (const DrmFormat& entry : set) {
        FormatModifiers format{entry.fourcc, {}};
        for (const FormatModifier& m : entry.modifiers) {
            format.modifiers.push_back({m.modifier, (m.flags & format_external_only) != 0});
        }
        formats.push_back(std::move(format));
    }
    return formats;
}

// The platform's facts; `importer` receives the Importer when one can be made.
EglPlatformReport describe_platform(std::string name, const Result<egl::Display>& display,
                                    std::optional<egl::Importer>& importer) {
    EglPlatformReport egl;
    egl.platform = std::move(name);
    if (!display) {
        egl.error = display.error().message;
        return egl;
    }
    const char* version = eglQueryString(display->native(), EGL_VERSION);
    egl.version = version != nullptr ? version : "?";
    const char* extensions = eglQueryString(display->native(), EGL_EXTENSIONS);
    egl.extensions = split_extensions(extensions != nullptr ? extensions : "");
    egl.renderer = display->renderer();
    egl.dma_buf_import = display->has_extension("EGL_EXT_image_dma_buf_import");
    egl.import_modifiers = display->has_extension("EGL_EXT_image_dma_buf_import_modifiers");
    egl.dma_buf_export_listed = display->has_extension("EGL_MESA_image_dma_buf_export");
    auto created = egl::Importer::create(*display);
    if (!created) {
        egl.importer_error = without_extension_list(created.error().message);
        return egl;
    }
    egl.import_formats = to_formats(created->formats());
    importer.emplace(std::move(*created));
    return egl;
}

// One ordinary allocation, or why none is possible here.
Result<DmaBufImage> first_allocation(const gbm::Device& device) {
    std::string tried;
    for (std::uint32_t fourcc : {DRM_FORMAT_ARGB8888, DRM_FORMAT_ABGR8888}) {
        auto image = device.allocate(gbm::AllocationRequest{probe_width, probe_height, fourcc, {}, 0});
        if (image) return image;
        std::string_view message = image.error().message;
        while (message.ends_with(';')) message.remove_suffix(1);  // gbm's lists end in ';'
        tried += fmt::format("{}{}", tried.empty() ? "" : "; ", message);
    }
    return make_error(Errc::unsupported, "{}", tried);
}

DrmNodeReport probe_node(const gbm::DrmNode& listed, Report& report, std::uint64_t& next_image_id) {
    DrmNodeReport node;
    node.path = listed.path;
    node.render_node = listed.render_node;
    node.device_number = static_cast<std::uint64_t>(listed.device_number);
    auto device = gbm::Device::open(listed.path);
    if (!device) {
        node.gbm_error = device.error().message;
        return node;
    }
    node.driver = device->node().driver;
    auto probe = first_allocation(*device);
    if (!probe) {
        node.gbm_error = probe.error().message;
        // Only where the cause is known (docs/vm-lane-facts.md); a guess would mislead.
        if (node.render_node && (node.driver == "vgem" || node.driver == "virtio_gpu")) {
            node.note = fmt::format(
                "{}'s render node refuses dumb buffers (EACCES); GBM allocates on its "
                "primary node",
                node.driver);
        }
        return node;
    }
    if (report.export_sync_file.outcome == Outcome::untested) {
        auto sync = probe_sync_file(*probe, fmt::format("{} ({})", node.path, node.driver));
        report.export_sync_file = std::move(sync.export_sync_file);
        report.import_sync_file = std::move(sync.import_sync_file);
    }
    const auto display = egl::Display::open_gbm(device->native());
    // GBM cannot list modifiers: it probes what the device's EGL renders to (issue 12).
    auto render = display ? display->render_formats() : Result<FormatSet>(display.error());
    node.gbm_formats = to_formats(device->allocatable_formats(render ? *render : FormatSet{}));
    std::optional<egl::Importer> importer;
    node.egl = describe_platform("gbm", display, importer);
    EglSide side{display ? &*display : nullptr, importer ? &*importer : nullptr, ""};
    if (!node.egl->opened()) side.unavailable = fmt::format("no EGL GBM display: {}", node.egl->error);
    if (!importer && node.egl->opened()) {
        side.unavailable = fmt::format("no EGL importer: {}", node.egl->importer_error);
    }
    for (std::uint32_t fourcc : round_trip_formats) {
        node.round_trips.push_back(gbm_round_trip(*device, side, fourcc, node.gbm_formats, next_image_id++));
    }
    if (report.udmabuf.conversion.outcome == Outcome::works) {
        report.udmabuf.imports.push_back(udmabuf_import_round_trip(
            side, fmt::format("EGL gbm on {} ({})", node.path, node.driver), next_image_id++));
    }
    return node;
}

std::string kernel_release() {
    utsname names{};
    return ::uname(&names) == 0 ? names.release : "";
}

}  // namespace

std::vector<std::string> split_extensions(std::string_view extensions) {
    std::vector<std::string> names;
    while (!extensions.empty()) {
        const std::size_t end = std::min(extensions.find(' '), extensions.size());
        if (end > 0) names.emplace_back(extensions.substr(0, end));
        extensions.remove_prefix(std::min(end + 1, extensions.size()));
    }
    return names;
}

std::string without_extension_list(std::string_view message) {
    constexpr std::string_view list = " (display extensions: ";
    const std::size_t start = message.rfind(list);
    if (start == std::string_view::npos || !message.ends_with(')')) return std::string(message);
    return std::string(message.substr(0, start));
}

Report collect_report() {
    Report report;
    report.version = TEXSHARE_INFO_VERSION;
    report.kernel_release = kernel_release();
    struct stat dri {};
    report.dri_directory = ::stat("/dev/dri", &dri) == 0;
    // First, so each EGL display below can try importing a udmabuf while it is open.
    report.udmabuf.conversion = probe_udmabuf_conversion();
    auto nodes = gbm::list_drm_nodes();
    if (!nodes) {
        report.drm_error = nodes.error().message;
    } else {
        std::uint64_t next_image_id = 1;
        for (const gbm::DrmNode& node : *nodes) {
            report.nodes.push_back(probe_node(node, report, next_image_id));
        }
    }
    {
        const auto display = egl::Display::open_surfaceless();
        std::optional<egl::Importer> importer;
        report.surfaceless = describe_platform("surfaceless", display, importer);
        if (report.udmabuf.conversion.outcome == Outcome::works) {
            EglSide side{display ? &*display : nullptr, importer ? &*importer : nullptr, ""};
            if (!importer) {
                side.unavailable =
                    report.surfaceless.opened()
                        ? fmt::format("no EGL importer: {}", report.surfaceless.importer_error)
                        : fmt::format("no EGL surfaceless display: {}", report.surfaceless.error);
            }
            report.udmabuf.imports.push_back(udmabuf_import_round_trip(side, "EGL surfaceless", 1));
        }
    }
    if (report.udmabuf.conversion.outcome == Outcome::works) {
        report.udmabuf.imports.push_back(udmabuf_vulkan_round_trip(2));
    }
    if (report.export_sync_file.outcome == Outcome::untested) {
        report.export_sync_file.detail =
            report.nodes.empty() ? "no DMA-BUF to ask: this machine has no DRM device to allocate one"
                                 : "no DRM node allocated a DMA-BUF to ask";
        report.import_sync_file.detail = report.export_sync_file.detail;
    }
    report.memfd_sealing = probe_memfd_sealing();
    report.shared_memory = shared_memory_round_trip();
    report.heaps = probe_heaps(report.heaps_error);
    report.vulkan_devices = probe_vulkan_devices(report.vulkan_error);
    return report;
}

}  // namespace texshare::info
