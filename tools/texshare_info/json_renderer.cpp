#include "json_renderer.hpp"

#include <fmt/format.h>

#include "json_writer.hpp"
#include "names.hpp"
#include "texshare/format.hpp"
#include "verdict.hpp"

namespace texshare::info {
namespace {

void text_or_null(JsonWriter& json, std::string_view name, const std::string& text) {
    json.key(name);
    if (text.empty()) {
        json.null();
    } else {
        json.value(text);
    }
}

void write_modifier(JsonWriter& json, const Modifier& modifier) {
    json.begin_object()
        .field("name", modifier_name(modifier.value))
        .field("value", fmt::format("0x{:016x}", modifier.value))
        .field("external_only", modifier.external_only)
        .end_object();
}

void write_formats(JsonWriter& json, std::string_view name, const std::vector<FormatModifiers>& formats) {
    json.key(name).begin_array();
    for (const FormatModifiers& format : formats) {
        json.begin_object()
            .field("name", fourcc_label(format.fourcc))
            .field("fourcc", fourcc_hex(format.fourcc));
        json.key("modifiers").begin_array();
        for (const Modifier& modifier : format.modifiers) write_modifier(json, modifier);
        json.end_array().end_object();
    }
    json.end_array();
}

void write_platform(JsonWriter& json, const EglPlatformReport& egl) {
    json.begin_object().field("platform", egl.platform).field("opened", egl.opened());
    text_or_null(json, "error", egl.error);
    text_or_null(json, "version", egl.version);
    text_or_null(json, "renderer", egl.renderer);
    json.field("dma_buf_import", egl.dma_buf_import)
        .field("import_modifiers", egl.import_modifiers)
        .field("dma_buf_export_listed", egl.dma_buf_export_listed)
        .field("imports", egl.imports());
    text_or_null(json, "importer_error", egl.importer_error);
    write_formats(json, "import_formats", egl.import_formats);
    json.end_object();
}

void write_round_trip(JsonWriter& json, const RoundTrip& trip) {
    json.begin_object()
        .field("format", fourcc_label(trip.fourcc))
        .field("fourcc", fourcc_hex(trip.fourcc))
        .field("modifier", modifier_name(trip.modifier))
        .field("outcome", to_string(trip.outcome));
    text_or_null(json, "stage", trip.stage);
    text_or_null(json, "detail", trip.detail);
    json.end_object();
}

void write_node(JsonWriter& json, const DrmNodeReport& node) {
    json.begin_object().field("path", node.path);
    text_or_null(json, "driver", node.driver);
    json.field("render_node", node.render_node)
        .field("dev_t", device_number_label(node.device_number))
        .field("device_number", node.device_number);
    json.key("gbm").begin_object().field("allocates", node.gbm_error.empty());
    text_or_null(json, "error", node.gbm_error);
    text_or_null(json, "note", node.note);
    write_formats(json, "formats", node.gbm_formats);
    json.end_object();
    json.key("egl");
    if (node.egl) {
        write_platform(json, *node.egl);
    } else {
        json.null();
    }
    json.key("round_trips").begin_array();
    for (const RoundTrip& trip : node.round_trips) write_round_trip(json, trip);
    json.end_array().end_object();
}

void write_feature(JsonWriter& json, std::string_view name, const Feature& feature) {
    json.key(name).begin_object().field("outcome", to_string(feature.outcome));
    text_or_null(json, "detail", feature.detail);
    json.end_object();
}

}  // namespace

std::string render_json(const Report& report) {
    JsonWriter json;
    json.begin_object().field("texshare_version", report.version);
    text_or_null(json, "kernel_release", report.kernel_release);
    json.key("drm").begin_object().field("available", !report.nodes.empty());
    text_or_null(json, "error", report.drm_error);
    json.key("nodes").begin_array();
    for (const DrmNodeReport& node : report.nodes) write_node(json, node);
    json.end_array().end_object();
    json.key("egl_surfaceless");
    write_platform(json, report.surfaceless);
    json.key("kernel").begin_object();
    write_feature(json, "export_sync_file", report.export_sync_file);
    write_feature(json, "import_sync_file", report.import_sync_file);
    write_feature(json, "memfd_sealing", report.memfd_sealing);
    json.end_object();
    write_feature(json, "shared_memory", report.shared_memory);
    const std::vector<Verdict> verdicts = judge(report);
    json.key("verdicts").begin_array();
    for (const Verdict& verdict : verdicts) {
        json.begin_object()
            .field("path", verdict.path)
            .field("fallback", verdict.fallback)
            .field("works", verdict.works);
        text_or_null(json, "choice", verdict.choice);
        json.field("summary", verdict.summary).end_object();
    }
    json.end_array().field("best_path", best_path(verdicts)).end_object();
    return json.finish();
}

}  // namespace texshare::info
