// Host lane: texshare-info on this very machine, both as collect_report() and as the real
// binary. These machines have no /dev/dri, so the tool must say so plainly, show the
// shared-memory path working and still exit 0; on a machine with DRM nodes the same tests
// check that they are listed instead. The VM lane checks the DRM side for real
// (tests/vm/texshare_info_vm_test.cpp).
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "collect.hpp"
#include "support/fd_count.hpp"
#include "support/run_command.hpp"
#include "text_renderer.hpp"
#include "verdict.hpp"

namespace texshare::info {
namespace {

using TexshareInfoHost = texshare::testing::FdLeakTest;
using texshare::testing::run_command;

bool has_dri() {
    struct stat info {};
    return ::stat("/dev/dri", &info) == 0;
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

std::string tool(std::string_view arguments) {
    return fmt::format("'{}' {}", TEXSHARE_INFO_BINARY, arguments);
}

TEST_F(TexshareInfoHost, CollectingClosesEverythingAndFindsTheFallback) {
    const Report report = collect_report();
    EXPECT_EQ(report.version, TEXSHARE_VERSION_STRING);
    EXPECT_FALSE(report.kernel_release.empty());
    EXPECT_EQ(report.drm_error, "");
    EXPECT_EQ(report.memfd_sealing.outcome, Outcome::works) << report.memfd_sealing.detail;
    EXPECT_EQ(report.shared_memory.outcome, Outcome::works) << report.shared_memory.detail;
    EXPECT_EQ(report.surfaceless.platform, "surfaceless");
    if (!has_dri()) {
        EXPECT_TRUE(report.nodes.empty());
        EXPECT_EQ(report.export_sync_file.outcome, Outcome::untested);
        EXPECT_TRUE(contains(report.export_sync_file.detail, "no DRM device"))
            << report.export_sync_file.detail;
        EXPECT_EQ(best_path(judge(report)), "shared memory (sealed memfd)");
    } else {
        EXPECT_FALSE(report.nodes.empty()) << "/dev/dri exists but no node was reported";
    }
}

TEST_F(TexshareInfoHost, TextSaysPlainlyWhatThisMachineHas) {
    const auto run = run_command(tool(""));
    EXPECT_EQ(run.status, 0) << run.output;
    const std::string& text = run.output;
    EXPECT_TRUE(contains(text, "texshare-info " TEXSHARE_VERSION_STRING)) << text;
    EXPECT_TRUE(contains(text, "\n  fallback: shared memory: works")) << text;
    EXPECT_TRUE(contains(text, "memfd sealing: works")) << text;
    if (!has_dri()) {
        EXPECT_TRUE(contains(text, "DRM devices: none: this machine has no DRM device (no /dev/dri)"))
            << text;
        EXPECT_TRUE(contains(text, "\n  zero-copy GBM->EGL: unavailable: this machine has no DRM device"))
            << text;
        EXPECT_TRUE(contains(text, "\nbest path here: shared memory (sealed memfd)\n")) << text;
    } else {
        EXPECT_TRUE(contains(text, "DRM devices (")) << text;
    }
}

TEST_F(TexshareInfoHost, JsonParsesAndAgreesWithTheMachine) {
    const auto run = run_command(tool("--json"));
    EXPECT_EQ(run.status, 0) << run.output;
    nlohmann::json json;
    ASSERT_NO_THROW(json = nlohmann::json::parse(run.output)) << run.output;
    EXPECT_EQ(json["drm"]["available"], has_dri());
    EXPECT_EQ(json["shared_memory"]["outcome"], "works");
    ASSERT_EQ(json["verdicts"].size(), 4U);
    EXPECT_EQ(json["verdicts"][2]["path"], "shared memory");
    EXPECT_EQ(json["verdicts"][2]["works"], true);
    // Heaps and udmabuf are found out by trying: absent here means the devices are absent.
    const auto& exporters = json["dma_buf_exporters"];
    EXPECT_EQ(exporters["heaps"]["available"].get<bool>(), ::access("/dev/dma_heap", F_OK) == 0);
    EXPECT_EQ(exporters["udmabuf"]["conversion"]["outcome"] == "unsupported",
              ::access("/dev/udmabuf", F_OK) != 0)
        << exporters.dump(2);
    // The display's extensions once, as a list; the importer's error does not repeat them.
    EXPECT_TRUE(json["egl_surfaceless"]["extensions"].is_array());
    if (!json["egl_surfaceless"]["importer_error"].is_null()) {
        EXPECT_FALSE(contains(json["egl_surfaceless"]["importer_error"].get<std::string>(), "EGL_KHR"));
    }
    if (!has_dri()) {
        EXPECT_EQ(json["drm"]["reason"], "this machine has no DRM device (no /dev/dri)");
        EXPECT_EQ(json["best_path"], "shared memory (sealed memfd)");
    } else {
        EXPECT_TRUE(json["drm"]["reason"].is_null()) << "/dev/dri exists but no node was reported";
    }
}

TEST_F(TexshareInfoHost, CheckZeroCopyExitsByTheVerdict) {
    const auto json_run = run_command(tool("--json"));
    const bool zero_copy = nlohmann::json::parse(json_run.output)["verdicts"][0]["works"].get<bool>();
    const auto run = run_command(tool("--check-zero-copy"));
    EXPECT_EQ(run.status, zero_copy ? 0 : 1) << run.output;
    EXPECT_TRUE(contains(run.output, "verdicts:")) << "the report is printed either way";
    if (!has_dri()) {
        EXPECT_FALSE(zero_copy);
    }
}

TEST_F(TexshareInfoHost, BadArgumentsExitTwoAndHelpExitsZero) {
    const auto bad = run_command(tool("--no-such-flag 2>&1"));
    EXPECT_EQ(bad.status, 2);
    EXPECT_TRUE(contains(bad.output, "unknown argument \"--no-such-flag\"")) << bad.output;
    EXPECT_TRUE(contains(bad.output, "usage: texshare-info")) << bad.output;
    const auto help = run_command(tool("--help"));
    EXPECT_EQ(help.status, 0);
    EXPECT_TRUE(contains(help.output, "--check-zero-copy")) << help.output;
}

}  // namespace
}  // namespace texshare::info
