// VM lane: texshare-info in the qemu guest (vgem and virtio_gpu, Mesa's kms_swrast and
// llvmpipe). Runs the real binary as a user would and insists that it lists both DRM
// devices and finds zero-copy GBM->EGL working on each; the text report is echoed into the
// lane's log, so every run shows what the tool says about the guest.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "support/fd_count.hpp"
#include "support/run_command.hpp"
#include "vm/vm_stack.hpp"

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

// Issue 14: the exporters that need no GPU, as each guest has them. Debian 12's 6.1 kernel
// has neither (CONFIG_UDMABUF and CONFIG_DMABUF_HEAPS are off); 6.12 from bookworm-backports
// has both, and Mesa 25's EGL there refuses the udmabuf (EGL_BAD_ALLOC on virtio_gpu and
// surfaceless) or accepts it and reads nothing back (vgem): the tool must never call that
// working; its lavapipe (Vulkan) reads every pixel back, which makes the verdict "works"
// (docs/vm-lane-facts.md).
TEST_F(TexshareInfoVm, HeapsAndUdmabufAsThisGuestHasThem) {
    const texshare::testing::VmStack stack = texshare::testing::vm_stack();
    const char* stack_name = stack == texshare::testing::VmStack::bookworm ? "bookworm" : "backports";
    const auto run = run_command(tool("--json 2>/dev/null"));
    ASSERT_EQ(run.status, 0);
    nlohmann::json json;
    ASSERT_NO_THROW(json = nlohmann::json::parse(run.output)) << run.output;
    const auto& exporters = json["dma_buf_exporters"];
    std::printf("---- guest %s: dma_buf_exporters ----\n%s\n----\n", stack_name, exporters.dump(2).c_str());
    const auto& udmabuf_verdict = json["verdicts"][1];
    EXPECT_EQ(udmabuf_verdict["path"], "shared memory through udmabuf");
    if (stack == texshare::testing::VmStack::bookworm) {
        EXPECT_EQ(exporters["heaps"]["available"], false) << "6.1 has no DMA-BUF heaps";
        EXPECT_TRUE(contains(exporters["heaps"]["error"].get<std::string>(), "/dev/dma_heap"));
        EXPECT_EQ(exporters["udmabuf"]["conversion"]["outcome"], "unsupported") << "6.1 has no udmabuf";
        EXPECT_TRUE(
            contains(exporters["udmabuf"]["conversion"]["detail"].get<std::string>(), "/dev/udmabuf"));
        EXPECT_TRUE(exporters["udmabuf"]["imports"].empty());
        EXPECT_EQ(udmabuf_verdict["works"], false);
        EXPECT_TRUE(contains(udmabuf_verdict["summary"].get<std::string>(), "unavailable: "));
    } else if (stack == texshare::testing::VmStack::backports) {
        EXPECT_EQ(exporters["heaps"]["available"], true);
        ASSERT_EQ(exporters["heaps"]["list"].size(), 1U) << "6.12's system heap, and only it";
        EXPECT_EQ(exporters["heaps"]["list"][0]["name"], "system");
        EXPECT_EQ(exporters["heaps"]["list"][0]["allocation"]["outcome"], "works");
        EXPECT_EQ(exporters["udmabuf"]["conversion"]["outcome"], "works");
        // Each EGL display refuses the udmabuf or reads nothing back; lavapipe (Vulkan) reads
        // every pixel back (docs/vm-lane-facts.md).
        std::map<std::string, std::string> egl_stage_by_api;
        std::string vulkan_outcome = "missing", vulkan_detail;
        for (const auto& import : exporters["udmabuf"]["imports"]) {
            const std::string api = import["api"].get<std::string>();
            if (api.starts_with("Vulkan")) {
                vulkan_outcome = import["outcome"].get<std::string>();
                vulkan_detail = import["detail"].is_string() ? import["detail"].get<std::string>() : "";
                continue;
            }
            EXPECT_EQ(import["outcome"], "failed") << import.dump();
            egl_stage_by_api[api] = import["stage"].is_string() ? import["stage"].get<std::string>() : "";
        }
        for (const auto& [api, stage] : egl_stage_by_api) {
            if (contains(api, "(vgem)")) {
                EXPECT_EQ(stage, "read back") << api << ": vgem's EGL accepts the import but reads nothing";
            } else {
                EXPECT_EQ(stage, "import") << api << ": EGL_BAD_ALLOC";
            }
        }
        EXPECT_EQ(egl_stage_by_api.size(), 3U) << "both primary nodes' GBM displays and surfaceless tried";
        const std::string summary = udmabuf_verdict["summary"].get<std::string>();
        if (contains(vulkan_detail, "built without Vulkan")) {  // a local build without libvulkan-dev
            EXPECT_EQ(vulkan_outcome, "untested");
            EXPECT_EQ(udmabuf_verdict["works"], false);
            EXPECT_TRUE(contains(summary, "does not work: converts, but no import read its pixels back"))
                << summary;
        } else {
            EXPECT_EQ(vulkan_outcome, "works") << vulkan_detail;
            EXPECT_EQ(udmabuf_verdict["works"], true);
            EXPECT_TRUE(
                contains(summary, "works: imported with pixels read back exactly by Vulkan (llvmpipe"))
                << summary;
            EXPECT_TRUE(contains(summary, "(1 of 4 imports)")) << summary;
        }
    } else {
        FAIL() << "unknown guest (TEXSHARE_VM_STACK)";
    }
}

}  // namespace
