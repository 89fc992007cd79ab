// The document is built as an nlohmann::json value and dumped once; its dump escapes
// strings and, told to (error_handler_t::replace), replaces bytes that are not UTF-8 (a
// driver's name is whatever the driver says) with U+FFFD, so the output always parses.
#include "json_renderer.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "names.hpp"
#include "texshare/format.hpp"
#include "verdict.hpp"

namespace texshare::info {
namespace {

// ordered_json keeps the fields in the order written, which reads like the text output.
using json = nlohmann::ordered_json;

json text_or_null(const std::string& text) {
    return text.empty() ? json(nullptr) : json(text);
}

json modifier_json(const Modifier& modifier) {
    return {{"name", modifier_name(modifier.value)},
            {"value", fmt::format("0x{:016x}", modifier.value)},
            {"external_only", modifier.external_only}};
}

json formats_json(const std::vector<FormatModifiers>& formats) {
    json list = json::array();
    for (const FormatModifiers& format : formats) {
        json modifiers = json::array();
        for (const Modifier& modifier : format.modifiers) modifiers.push_back(modifier_json(modifier));
        list.push_back({{"name", fourcc_label(format.fourcc)},
                        {"fourcc", fourcc_hex(format.fourcc)},
                        {"modifiers", std::move(modifiers)}});
    }
    return list;
}

json platform_json(const EglPlatformReport& egl) {
    return {{"platform", egl.platform},
            {"opened", egl.opened()},
            {"error", text_or_null(egl.error)},
            {"version", text_or_null(egl.version)},
            {"renderer", text_or_null(egl.renderer)},
            {"extensions", egl.extensions},
            {"dma_buf_import", egl.dma_buf_import},
            {"import_modifiers", egl.import_modifiers},
            {"dma_buf_export_listed", egl.dma_buf_export_listed},
            {"imports", egl.imports()},
            {"importer_error", text_or_null(egl.importer_error)},
            {"import_formats", formats_json(egl.import_formats)}};
}

json round_trip_json(const RoundTrip& trip) {
    return {{"format", fourcc_label(trip.fourcc)},      {"fourcc", fourcc_hex(trip.fourcc)},
            {"modifier", modifier_name(trip.modifier)}, {"outcome", to_string(trip.outcome)},
            {"stage", text_or_null(trip.stage)},        {"detail", text_or_null(trip.detail)}};
}

json node_json(const DrmNodeReport& node) {
    json round_trips = json::array();
    for (const RoundTrip& trip : node.round_trips) round_trips.push_back(round_trip_json(trip));
    return {{"path", node.path},
            {"driver", text_or_null(node.driver)},
            {"render_node", node.render_node},
            {"dev_t", device_number_label(node.device_number)},
            {"device_number", node.device_number},
            {"gbm",
             {{"allocates", node.gbm_error.empty()},
              {"error", text_or_null(node.gbm_error)},
              {"note", text_or_null(node.note)},
              {"formats", formats_json(node.gbm_formats)}}},
            {"egl", node.egl ? platform_json(*node.egl) : json(nullptr)},
            {"round_trips", std::move(round_trips)}};
}

json feature_json(const Feature& feature) {
    return {{"outcome", to_string(feature.outcome)}, {"detail", text_or_null(feature.detail)}};
}

json exporters_json(const Report& report) {
    json heaps = json::array();
    for (const HeapReport& heap : report.heaps) {
        heaps.push_back({{"name", heap.name}, {"allocation", feature_json(heap.allocation)}});
    }
    json imports = json::array();
    for (const UdmabufImport& import : report.udmabuf.imports) {
        imports.push_back({{"api", import.api},
                           {"outcome", to_string(import.outcome)},
                           {"stage", text_or_null(import.stage)},
                           {"detail", text_or_null(import.detail)}});
    }
    return {{"heaps",
             {{"available", report.heaps_error.empty()},
              {"error", text_or_null(report.heaps_error)},
              {"list", std::move(heaps)}}},
            {"udmabuf",
             {{"conversion", feature_json(report.udmabuf.conversion)}, {"imports", std::move(imports)}}}};
}

}  // namespace

std::string render_json(const Report& report) {
    json nodes = json::array();
    for (const DrmNodeReport& node : report.nodes) nodes.push_back(node_json(node));
    const std::vector<Verdict> verdicts = judge(report);
    json verdict_list = json::array();
    for (const Verdict& verdict : verdicts) {
        verdict_list.push_back({{"path", verdict.path},
                                {"fallback", verdict.fallback},
                                {"works", verdict.works},
                                {"choice", text_or_null(verdict.choice)},
                                {"summary", verdict.summary}});
    }
    json document;
    document["texshare_version"] = report.version;
    document["kernel_release"] = text_or_null(report.kernel_release);
    document["drm"] = {{"available", !report.nodes.empty()},
                       {"reason", text_or_null(drm_unavailable_reason(report))},
                       {"error", text_or_null(report.drm_error)},
                       {"nodes", std::move(nodes)}};
    document["egl_surfaceless"] = platform_json(report.surfaceless);
    document["kernel"] = {{"export_sync_file", feature_json(report.export_sync_file)},
                          {"import_sync_file", feature_json(report.import_sync_file)},
                          {"memfd_sealing", feature_json(report.memfd_sealing)}};
    document["shared_memory"] = feature_json(report.shared_memory);
    document["dma_buf_exporters"] = exporters_json(report);
    json vulkan_devices = json::array();
    for (const VulkanOpaqueReport& device : report.vulkan_devices) {
        vulkan_devices.push_back({{"name", device.device},
                                  {"device_uuid", device.device_uuid},
                                  {"driver_uuid", device.driver_uuid},
                                  {"opaque_fd", feature_json(device.opaque_fd)}});
    }
    document["vulkan"] = {{"error", text_or_null(report.vulkan_error)}, {"devices", std::move(vulkan_devices)}};
    document["verdicts"] = std::move(verdict_list);
    document["best_path"] = best_path(verdicts);
    return document.dump(2, ' ', false, json::error_handler_t::replace) + '\n';
}

}  // namespace texshare::info
