// Host lane: texshare-info's verdicts and both renderers on hand-made reports (fake_reports.hpp),
// so every machine the issue names is checked here without needing it: no DRM, two devices,
// a failed round trip, a device that allocates nothing, a machine where nothing works.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fake_reports.hpp"
#include "json_renderer.hpp"
#include "text_renderer.hpp"
#include "texshare/negotiation.hpp"
#include "verdict.hpp"

namespace texshare::info {
namespace {

using testing::failed_round_trip_report;
using testing::no_drm_report;
using testing::refused_udmabuf_report;
using testing::trip;
using testing::two_device_report;
using testing::working_node;

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

// Parses or fails the test with the document, so a broken document is seen whole.
nlohmann::json parse(const std::string& document) {
    try {
        return nlohmann::json::parse(document);
    } catch (const nlohmann::json::parse_error& error) {
        ADD_FAILURE() << error.what() << "\n" << document;
        return nlohmann::json::object();
    }
}

TEST(TexshareInfoVerdict, NoDrmMeansSharedMemory) {
    const auto verdicts = judge(no_drm_report());
    ASSERT_EQ(verdicts.size(), 4U);
    EXPECT_EQ(verdicts[0].path, zero_copy_path);
    EXPECT_FALSE(verdicts[0].works);
    EXPECT_EQ(verdicts[0].summary, "unavailable: this machine has no DRM device (no /dev/dri)");
    EXPECT_EQ(verdicts[1].path, udmabuf_path);
    EXPECT_FALSE(verdicts[1].works);
    EXPECT_EQ(verdicts[1].summary,
              "unavailable: open udmabuf device /dev/udmabuf: No such file or directory (errno 2)");
    EXPECT_EQ(verdicts[2].path, shared_memory_path);
    EXPECT_TRUE(verdicts[2].fallback);
    EXPECT_TRUE(verdicts[2].works);
    EXPECT_EQ(best_path(verdicts), "shared memory (sealed memfd)");
}

TEST(TexshareInfoVerdict, TwoDevicesNameBothAndThePreferredFormat) {
    const auto verdicts = judge(two_device_report());
    EXPECT_TRUE(verdicts[0].works);
    EXPECT_EQ(verdicts[0].choice, "ARGB8888/LINEAR");
    EXPECT_EQ(verdicts[0].summary,
              "works with ARGB8888/LINEAR on /dev/dri/card0 (vgem), /dev/dri/card1 (virtio_gpu) "
              "(8 of 8 round trips passed)");
    EXPECT_EQ(best_path(verdicts), "zero-copy GBM->EGL (ARGB8888/LINEAR)");
}

TEST(TexshareInfoVerdict, AFailedRoundTripIsNamedWithItsStage) {
    const auto verdicts = judge(failed_round_trip_report());
    EXPECT_FALSE(verdicts[0].works);
    EXPECT_EQ(verdicts[0].summary,
              "does not work: /dev/dri/card0 (vgem): ARGB8888/LINEAR failed at compare: 3 of 4096 pixels "
              "differ (0 of 1 round trips passed)");
    EXPECT_EQ(best_path(verdicts), "shared memory (sealed memfd)");
}

TEST(TexshareInfoVerdict, ThePreferredFormatWinsWhereverItWorks) {
    Report report = no_drm_report();
    DrmNodeReport node = working_node("/dev/dri/card0", "i915", 0);
    node.round_trips = {trip(DRM_FORMAT_ARGB8888, Outcome::failed, "import", "EGL_BAD_MATCH"),
                        trip(DRM_FORMAT_ABGR8888, Outcome::works)};
    report.nodes.push_back(node);
    report.nodes.push_back(working_node("/dev/dri/card1", "vgem", 1));
    const auto verdicts = judge(report);
    EXPECT_EQ(verdicts[0].choice, "ARGB8888/LINEAR") << "card1 works with ARGB8888";
    EXPECT_EQ(verdicts[0].summary,
              "works with ARGB8888/LINEAR on /dev/dri/card1 (vgem) (5 of 6 round trips passed)");
    report.nodes.pop_back();
    EXPECT_EQ(judge(report)[0].summary,
              "works with ABGR8888/LINEAR on /dev/dri/card0 (i915) (1 of 2 round trips passed)");
}

TEST(TexshareInfoVerdict, ANodeThatAllocatesNothingIsNamed) {
    Report report = no_drm_report();
    DrmNodeReport node;
    node.path = "/dev/dri/renderD128";
    node.driver = "vgem";
    node.render_node = true;
    node.gbm_error = "gbm: cannot allocate 64x64 ARGB8888; tried LINEAR: errno 13";
    report.nodes.push_back(node);
    EXPECT_EQ(judge(report)[0].summary,
              "does not work: no DRM node allocates a LINEAR 32-bit RGB image with GBM (first, "
              "/dev/dri/renderD128 (vgem): gbm: cannot allocate 64x64 ARGB8888; tried LINEAR: errno 13)");
}

TEST(TexshareInfoVerdict, NothingWorksIsSaid) {
    Report report = no_drm_report();
    report.shared_memory = {Outcome::failed, "map: mmap: Cannot allocate memory"};
    report.drm_error = "drmGetDevices2: Permission denied";
    const auto verdicts = judge(report);
    EXPECT_EQ(verdicts[0].summary,
              "unavailable: libdrm could not list DRM devices: drmGetDevices2: Permission denied");
    EXPECT_EQ(verdicts[2].summary, "does not work: map: mmap: Cannot allocate memory");
    EXPECT_EQ(best_path(verdicts), "none");
}

// Issue 14 item 4: udmabuf "works" only where an import read the pixels back exactly; a
// conversion alone, an EGL refusal or an import that reads nothing back is "does not work".
TEST(TexshareInfoVerdict, UdmabufWorksOnlyWithPixelsReadBack) {
    Report report = refused_udmabuf_report();
    auto verdicts = judge(report);
    ASSERT_EQ(verdicts.size(), 4U);
    EXPECT_EQ(verdicts[1].path, udmabuf_path);
    EXPECT_FALSE(verdicts[1].works);
    EXPECT_EQ(verdicts[1].summary,
              "does not work: converts, but no import read its pixels back (0 of 3); first, EGL gbm on "
              "/dev/dri/card1 (virtio_gpu): failed at import: eglCreateImageKHR failed: EGL_BAD_ALLOC");

    report.udmabuf.imports[1] = {"EGL gbm on /dev/dri/card0 (vgem)", Outcome::works, "", ""};
    verdicts = judge(report);
    EXPECT_TRUE(verdicts[1].works);
    EXPECT_EQ(verdicts[1].choice, "ARGB8888/LINEAR, EGL gbm on /dev/dri/card0 (vgem)");
    EXPECT_EQ(
        verdicts[1].summary,
        "works: imported with pixels read back exactly by EGL gbm on /dev/dri/card0 (vgem) (1 of 3 imports)");

    report.udmabuf.imports.clear();
    EXPECT_EQ(judge(report)[1].summary, "does not work: converts, but no GPU API here to import it with");
    report.udmabuf.conversion = {Outcome::failed,
                                 "convert: udmabuf: UDMABUF_CREATE: Invalid argument (errno 22)"};
    EXPECT_EQ(judge(report)[1].summary,
              "does not work: convert: udmabuf: UDMABUF_CREATE: Invalid argument (errno 22)");
}

// Issue 15: the opaque-memory line lists each Vulkan device's UUIDs (what a peer must match)
// and the driver's word on OPAQUE_FD images; it never "works" alone (no round trip, and it
// needs a peer on the same device and driver), so the best path stays what it was.
TEST(TexshareInfoVerdict, OpaqueMemoryNamesTheUuidsAPeerMustMatchAndNeverWinsAlone) {
    Report report = no_drm_report();
    report.vulkan_error = "vkCreateInstance (Vulkan 1.1): VK_ERROR_INCOMPATIBLE_DRIVER (-9)";
    auto verdicts = judge(report);
    ASSERT_EQ(verdicts.size(), 4U);
    EXPECT_EQ(verdicts[3].path, opaque_fd_path);
    EXPECT_EQ(verdicts[3].path, std::string(to_string(SharingPath::opaque_fd)));
    EXPECT_FALSE(verdicts[3].works);
    EXPECT_EQ(verdicts[3].summary, "unavailable: vkCreateInstance (Vulkan 1.1): VK_ERROR_INCOMPATIBLE_DRIVER (-9)");

    report.vulkan_error.clear();
    report.vulkan_devices.push_back({"llvmpipe", "11111111-1111-1111-1111-111111111111",
                                     "22222222-2222-2222-2222-222222222222",
                                     {Outcome::unsupported, "no VK_KHR_external_memory_fd"}});
    EXPECT_EQ(judge(report)[3].summary, "unavailable: llvmpipe: no VK_KHR_external_memory_fd");
    report.vulkan_devices.push_back({"NVIDIA H200", "33333333-3333-3333-3333-333333333333",
                                     "44444444-4444-4444-4444-444444444444",
                                     {Outcome::works, "exportable and importable"}});
    verdicts = judge(report);
    EXPECT_FALSE(verdicts[3].works);
    EXPECT_EQ(verdicts[3].summary,
              "possible with a peer on the same device and driver: the driver exports and imports RGBA8 "
              "optimal-tiling images as OPAQUE_FD on NVIDIA H200 (device UUID "
              "33333333-3333-3333-3333-333333333333, driver UUID 44444444-4444-4444-4444-444444444444) (the "
              "driver's word, not a round trip)");
    EXPECT_EQ(best_path(verdicts), "shared memory (sealed memfd)");
    const std::string text = render_text(report);
    EXPECT_TRUE(contains(text, "Vulkan devices (2):\n  llvmpipe: device UUID 11111111-1111-1111-1111-111111111111, "
                               "driver UUID 22222222-2222-2222-2222-222222222222\n"))
        << text;
    EXPECT_TRUE(contains(text, "  Vulkan opaque memory, same device and driver: possible with a peer")) << text;
    const auto json = parse(render_json(report));
    EXPECT_EQ(json["vulkan"]["devices"][1]["driver_uuid"], "44444444-4444-4444-4444-444444444444");
    EXPECT_EQ(json["vulkan"]["devices"][1]["opaque_fd"]["outcome"], "works");
    EXPECT_EQ(json["verdicts"][3]["path"], "Vulkan opaque memory, same device and driver");
}

TEST(TexshareInfoText, HeapsAndUdmabufAreListedWithEveryImport) {
    const std::string text = render_text(refused_udmabuf_report());
    EXPECT_TRUE(
        contains(text, "\nDMA-BUF exporters without a GPU:\n  DMA-BUF heaps (1):\n    system: works: 64x64"))
        << text;
    EXPECT_TRUE(contains(text, "\n  udmabuf: works: 64x64 ARGB8888 sealed memfd converted")) << text;
    EXPECT_TRUE(contains(text,
                         "\n    import by EGL gbm on /dev/dri/card1 (virtio_gpu): FAILED at import: "
                         "eglCreateImageKHR failed: EGL_BAD_ALLOC\n"))
        << text;
    EXPECT_TRUE(contains(text, "\n    import by EGL gbm on /dev/dri/card0 (vgem): FAILED at read back: "))
        << text;
    EXPECT_TRUE(contains(text, "\n    import by EGL surfaceless: untested: no EGL importer: ")) << text;
    EXPECT_TRUE(contains(text, "\n  shared memory through udmabuf: does not work: converts, but")) << text;

    const std::string none = render_text(no_drm_report());
    EXPECT_TRUE(contains(none, "\n  DMA-BUF heaps: none: list DMA-BUF heaps in /dev/dma_heap: No such file"))
        << none;
    EXPECT_TRUE(contains(none, "\n  udmabuf: unsupported: open udmabuf device /dev/udmabuf: No such file"))
        << none;
}

TEST(TexshareInfoJson, HeapsAndUdmabufCarryEveryOutcome) {
    const nlohmann::json json = parse(render_json(refused_udmabuf_report()));
    const auto& exporters = json["dma_buf_exporters"];
    EXPECT_EQ(exporters["heaps"]["available"], true);
    EXPECT_TRUE(exporters["heaps"]["error"].is_null());
    ASSERT_EQ(exporters["heaps"]["list"].size(), 1U);
    EXPECT_EQ(exporters["heaps"]["list"][0]["name"], "system");
    EXPECT_EQ(exporters["heaps"]["list"][0]["allocation"]["outcome"], "works");
    EXPECT_EQ(exporters["udmabuf"]["conversion"]["outcome"], "works");
    ASSERT_EQ(exporters["udmabuf"]["imports"].size(), 3U);
    EXPECT_EQ(exporters["udmabuf"]["imports"][1]["api"], "EGL gbm on /dev/dri/card0 (vgem)");
    EXPECT_EQ(exporters["udmabuf"]["imports"][1]["outcome"], "failed");
    EXPECT_EQ(exporters["udmabuf"]["imports"][1]["stage"], "read back");
    EXPECT_TRUE(exporters["udmabuf"]["imports"][2]["stage"].is_null());
    EXPECT_EQ(json["verdicts"][1]["path"], "shared memory through udmabuf");
    EXPECT_EQ(json["verdicts"][1]["works"], false);

    const nlohmann::json none = parse(render_json(no_drm_report()));
    EXPECT_EQ(none["dma_buf_exporters"]["heaps"]["available"], false);
    EXPECT_TRUE(none["dma_buf_exporters"]["heaps"]["error"].is_string());
    EXPECT_EQ(none["dma_buf_exporters"]["udmabuf"]["conversion"]["outcome"], "unsupported");
    EXPECT_TRUE(none["dma_buf_exporters"]["udmabuf"]["imports"].empty());
}

TEST(TexshareInfoText, NoDrmIsSaidPlainlyAndShowsTheSharedMemoryPath) {
    const std::string text = render_text(no_drm_report());
    EXPECT_TRUE(contains(text, "DRM devices: none: this machine has no DRM device (no /dev/dri), so"))
        << text;
    EXPECT_TRUE(
        contains(text, "\n  zero-copy GBM->EGL: unavailable: this machine has no DRM device (no /dev/dri)\n"))
        << text;
    EXPECT_TRUE(contains(text, "\n  fallback: shared memory: works (sealed memfd")) << text;
    EXPECT_TRUE(contains(text, "\nbest path here: shared memory (sealed memfd)\n")) << text;
    EXPECT_TRUE(contains(text, "EGL surfaceless platform: EGL 1.5, llvmpipe")) << text;
    EXPECT_TRUE(contains(text, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE: untested: no DMA-BUF to ask")) << text;
    EXPECT_TRUE(contains(text, "memfd sealing: works")) << text;
}

TEST(TexshareInfoText, TwoDevicesListNodesFormatsAndRoundTrips) {
    const std::string text = render_text(two_device_report());
    EXPECT_TRUE(contains(text, "DRM devices (2 nodes):\n")) << text;
    EXPECT_TRUE(contains(text, "  /dev/dri/card0: vgem, primary node, dev_t 226:0\n")) << text;
    EXPECT_TRUE(contains(text, "  /dev/dri/card1: virtio_gpu, primary node, dev_t 226:1\n")) << text;
    EXPECT_TRUE(contains(text, "GBM allocates: ARGB8888 (LINEAR, INVALID), XRGB8888 (LINEAR, INVALID),"))
        << text;
    EXPECT_TRUE(contains(text, "NV12 (LINEAR (external only))")) << text;
    EXPECT_TRUE(contains(text, "      ARGB8888/LINEAR   works\n")) << text;
    EXPECT_TRUE(contains(text, "      NV12/LINEAR       not allocatable here: gbm: cannot allocate NV12\n"))
        << text;
    EXPECT_TRUE(contains(text,
                         "  zero-copy GBM->EGL: works with ARGB8888/LINEAR on /dev/dri/card0 (vgem), "
                         "/dev/dri/card1 (virtio_gpu) (8 of 8 round trips passed)\n"))
        << text;
    EXPECT_TRUE(contains(text, "best path here: zero-copy GBM->EGL (ARGB8888/LINEAR)\n")) << text;
    for (std::size_t start = 0, end = 0; start < text.size(); start = end + 1) {
        end = text.find('\n', start);
        if (contains(text.substr(start, end - start), "GBM allocates:")) {
            EXPECT_LE(end - start, 100U);
        }
    }
}

TEST(TexshareInfoText, AFailedRoundTripShowsItsStage) {
    const std::string text = render_text(failed_round_trip_report());
    EXPECT_TRUE(contains(text, "ARGB8888/LINEAR   FAILED at compare: 3 of 4096 pixels differ\n")) << text;
    EXPECT_TRUE(contains(text, "  zero-copy GBM->EGL: does not work: /dev/dri/card0 (vgem)")) << text;
    EXPECT_TRUE(contains(text, "best path here: shared memory (sealed memfd)\n")) << text;
}

TEST(TexshareInfoJson, NoDrmHasEveryField) {
    const nlohmann::json json = parse(render_json(no_drm_report()));
    EXPECT_EQ(json["texshare_version"], "0.1.0");
    EXPECT_EQ(json["kernel_release"], "6.18.0-test");
    EXPECT_EQ(json["drm"]["available"], false);
    EXPECT_EQ(json["drm"]["reason"], "this machine has no DRM device (no /dev/dri)");
    EXPECT_TRUE(json["drm"]["error"].is_null());
    EXPECT_TRUE(json["drm"]["nodes"].is_array());
    EXPECT_TRUE(json["drm"]["nodes"].empty());
    EXPECT_EQ(json["egl_surfaceless"]["platform"], "surfaceless");
    EXPECT_EQ(json["egl_surfaceless"]["opened"], true);
    EXPECT_EQ(json["egl_surfaceless"]["imports"], false);
    EXPECT_TRUE(json["egl_surfaceless"]["importer_error"].is_string());
    EXPECT_EQ(json["egl_surfaceless"]["extensions"],
              nlohmann::json::array({"EGL_KHR_image_base", "EGL_MESA_query_driver"}));
    EXPECT_EQ(json["kernel"]["export_sync_file"]["outcome"], "untested");
    EXPECT_EQ(json["kernel"]["memfd_sealing"]["outcome"], "works");
    EXPECT_EQ(json["shared_memory"]["outcome"], "works");
    ASSERT_EQ(json["verdicts"].size(), 4U);
    EXPECT_EQ(json["verdicts"][3]["path"], "Vulkan opaque memory, same device and driver");
    EXPECT_EQ(json["verdicts"][3]["works"], false);
    EXPECT_TRUE(json["vulkan"]["error"].is_null());
    EXPECT_TRUE(json["vulkan"]["devices"].is_array());
    EXPECT_EQ(json["verdicts"][0]["path"], "zero-copy GBM->EGL");
    EXPECT_EQ(json["verdicts"][0]["works"], false);
    EXPECT_TRUE(json["verdicts"][0]["choice"].is_null());
    EXPECT_EQ(json["verdicts"][1]["path"], "shared memory through udmabuf");
    EXPECT_EQ(json["verdicts"][1]["works"], false);
    EXPECT_EQ(json["verdicts"][2]["path"], "shared memory");
    EXPECT_EQ(json["verdicts"][2]["fallback"], true);
    EXPECT_EQ(json["verdicts"][2]["works"], true);
    EXPECT_EQ(json["best_path"], "shared memory (sealed memfd)");
}

// Where DRM cannot be used, the JSON says why, as the text does.
TEST(TexshareInfoJson, NoUsableDrmGivesTheReason) {
    Report empty_dri = no_drm_report();
    empty_dri.dri_directory = true;
    const nlohmann::json json = parse(render_json(empty_dri));
    EXPECT_EQ(json["drm"]["reason"],
              "libdrm lists no DRM node in /dev/dri (in a container, the devices may not be passed in)");
    EXPECT_TRUE(contains(render_text(empty_dri), "DRM devices: none: libdrm lists no DRM node in /dev/dri"));
    Report unlisted = no_drm_report();
    unlisted.drm_error = "drmGetDevices2: Permission denied";
    const nlohmann::json failed = parse(render_json(unlisted));
    EXPECT_EQ(failed["drm"]["reason"],
              "libdrm could not list DRM devices: drmGetDevices2: Permission denied");
    EXPECT_EQ(failed["drm"]["error"], "drmGetDevices2: Permission denied");
}

TEST(TexshareInfoJson, TwoDevicesCarryNodesFormatsAndRoundTrips) {
    const nlohmann::json json = parse(render_json(two_device_report()));
    EXPECT_EQ(json["drm"]["available"], true);
    EXPECT_TRUE(json["drm"]["reason"].is_null());
    const auto& nodes = json["drm"]["nodes"];
    ASSERT_EQ(nodes.size(), 2U);
    EXPECT_EQ(nodes[0]["path"], "/dev/dri/card0");
    EXPECT_EQ(nodes[0]["driver"], "vgem");
    EXPECT_EQ(nodes[1]["driver"], "virtio_gpu");
    EXPECT_EQ(nodes[1]["dev_t"], "226:1");
    EXPECT_EQ(nodes[1]["device_number"], makedev(226, 1));
    EXPECT_EQ(nodes[0]["render_node"], false);
    EXPECT_EQ(nodes[0]["gbm"]["allocates"], true);
    EXPECT_EQ(nodes[0]["gbm"]["formats"][0]["name"], "ARGB8888");
    EXPECT_EQ(nodes[0]["gbm"]["formats"][0]["fourcc"], "0x34325241");
    EXPECT_EQ(nodes[0]["gbm"]["formats"][0]["modifiers"][0]["name"], "LINEAR");
    EXPECT_EQ(nodes[0]["gbm"]["formats"][0]["modifiers"][1]["value"], "0x00ffffffffffffff");
    EXPECT_EQ(nodes[0]["egl"]["platform"], "gbm");
    EXPECT_EQ(nodes[0]["egl"]["imports"], true);
    EXPECT_EQ(nodes[0]["egl"]["import_formats"][4]["name"], "NV12");
    EXPECT_EQ(nodes[0]["egl"]["import_formats"][4]["modifiers"][0]["external_only"], true);
    ASSERT_EQ(nodes[0]["round_trips"].size(), 5U);
    EXPECT_EQ(nodes[0]["round_trips"][0]["format"], "ARGB8888");
    EXPECT_EQ(nodes[0]["round_trips"][0]["modifier"], "LINEAR");
    EXPECT_EQ(nodes[0]["round_trips"][0]["outcome"], "works");
    EXPECT_TRUE(nodes[0]["round_trips"][0]["stage"].is_null());
    EXPECT_EQ(nodes[0]["round_trips"][4]["outcome"], "not_allocatable");
    EXPECT_EQ(json["verdicts"][0]["works"], true);
    EXPECT_EQ(json["verdicts"][0]["choice"], "ARGB8888/LINEAR");
    EXPECT_EQ(json["best_path"], "zero-copy GBM->EGL (ARGB8888/LINEAR)");
}

TEST(TexshareInfoJson, AFailedRoundTripKeepsItsStageAndDetail) {
    const nlohmann::json json = parse(render_json(failed_round_trip_report()));
    const auto& trip_json = json["drm"]["nodes"][0]["round_trips"][0];
    EXPECT_EQ(trip_json["outcome"], "failed");
    EXPECT_EQ(trip_json["stage"], "compare");
    EXPECT_EQ(trip_json["detail"], "3 of 4096 pixels differ");
    EXPECT_EQ(json["verdicts"][0]["works"], false);
}

TEST(TexshareInfoJson, DriverStringsAreEscaped) {
    Report report = two_device_report();
    report.nodes[0].driver = "a \"quoted\"\\ name\nwith\ttabs\x01 and a bad byte \xff";
    report.nodes[0].egl.reset();
    const nlohmann::json json = parse(render_json(report));
    EXPECT_EQ(json["drm"]["nodes"][0]["driver"],
              "a \"quoted\"\\ name\nwith\ttabs\x01 and a bad byte \xEF\xBF\xBD");
    EXPECT_TRUE(json["drm"]["nodes"][0]["egl"].is_null());
}

}  // namespace
}  // namespace texshare::info
