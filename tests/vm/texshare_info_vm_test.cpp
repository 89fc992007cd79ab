// VM lane: texshare-info in the qemu guest (vgem and virtio_gpu, Mesa's kms_swrast and
// llvmpipe). Runs the real binary as a user would and insists that it lists both DRM
// devices and finds zero-copy GBM->EGL working on each; the text report is echoed into the
// lane's log, so every run shows what the tool says about the guest.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "support/fd_count.hpp"
#include "support/run_command.hpp"

namespace {

using TexshareInfoVm = texshare::testing::FdLeakTest;
using texshare::testing::run_command;

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

std::string tool(std::string_view arguments) {
    return std::string("'") + TEXSHARE_INFO_BINARY + "' " + std::string(arguments);
}

TEST_F(TexshareInfoVm, TextListsBothDevicesAndAWorkingZeroCopyPath) {
    // Mesa's complaints about render nodes go to stderr, kept out of the echoed report.
    const auto run = run_command(tool("--check-zero-copy 2>/dev/null"));
    std::printf("---- texshare-info --check-zero-copy (exit %d) ----\n%s----\n", run.status,
                run.output.c_str());
    EXPECT_EQ(run.status, 0) << "--check-zero-copy: zero-copy GBM->EGL must work in the guest";
    EXPECT_TRUE(contains(run.output, ": vgem, primary node, dev_t 226:"));
    EXPECT_TRUE(contains(run.output, ": virtio_gpu, primary node, dev_t 226:"));
    EXPECT_TRUE(contains(run.output, "\n  zero-copy GBM->EGL: works with ARGB8888/LINEAR on "));
    EXPECT_TRUE(contains(run.output, "(vgem)"));
    EXPECT_TRUE(contains(run.output, "(virtio_gpu)"));
    EXPECT_TRUE(contains(run.output, "\nbest path here: zero-copy GBM->EGL (ARGB8888/LINEAR)\n"));
}

TEST_F(TexshareInfoVm, JsonHasEveryRoundTripWorkingOnBothPrimaryNodes) {
    const auto run = run_command(tool("--json 2>/dev/null"));
    ASSERT_EQ(run.status, 0);
    nlohmann::json json;
    ASSERT_NO_THROW(json = nlohmann::json::parse(run.output)) << run.output;
    EXPECT_EQ(json["drm"]["available"], true);
    std::set<std::string> drivers_with_zero_copy;
    for (const auto& node : json["drm"]["nodes"]) {
        if (node["render_node"].get<bool>()) continue;  // these drivers allocate on primary nodes only
        const std::string driver = node["driver"].get<std::string>();
        ASSERT_EQ(node["gbm"]["allocates"], true) << node.dump(2);
        ASSERT_EQ(node["egl"]["imports"], true) << node.dump(2);
        std::set<std::string> working;
        for (const auto& trip : node["round_trips"]) {
            if (trip["outcome"] == "works") working.insert(trip["format"].get<std::string>());
            if (trip["format"] == "NV12") {
                // kms_swrast cannot allocate NV12 (docs/vm-lane-facts.md): the report must say so.
                EXPECT_TRUE(trip["outcome"] == "not_allocatable" || trip["outcome"] == "untested")
                    << trip.dump();
            }
        }
        EXPECT_EQ(working, (std::set<std::string>{"ARGB8888", "XRGB8888", "ABGR8888", "XBGR8888"}))
            << node.dump(2);
        if (working.size() == 4) drivers_with_zero_copy.insert(driver);
    }
    EXPECT_EQ(drivers_with_zero_copy, (std::set<std::string>{"vgem", "virtio_gpu"}));
    EXPECT_EQ(json["kernel"]["export_sync_file"]["outcome"], "works");
    EXPECT_EQ(json["kernel"]["import_sync_file"]["outcome"], "works");
    EXPECT_EQ(json["kernel"]["memfd_sealing"]["outcome"], "works");
    EXPECT_EQ(json["verdicts"][0]["works"], true);
    EXPECT_EQ(json["best_path"], "zero-copy GBM->EGL (ARGB8888/LINEAR)");
}

}  // namespace
