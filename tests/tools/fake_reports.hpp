// Hand-made texshare-info reports for the renderer and verdict tests: the machines the
// issue names (no DRM, two devices, a failed round trip) without needing any of them.
#pragma once

#include <sys/sysmacros.h>

#include <string>

#include "report.hpp"

namespace texshare::info::testing {

// A machine without DRM whose shared-memory path works: what the host lane runs on.
inline Report no_drm_report() {
    Report report;
    report.version = "0.1.0";
    report.kernel_release = "6.18.0-test";
    report.surfaceless.platform = "surfaceless";
    report.surfaceless.version = "1.5";
    report.surfaceless.renderer = "llvmpipe (LLVM 15.0.6, 256 bits)";
    report.surfaceless.extensions = {"EGL_KHR_image_base", "EGL_MESA_query_driver"};
    report.surfaceless.importer_error = "EGL_EXT_image_dma_buf_import is missing on the surfaceless display";
    report.export_sync_file = {Outcome::untested, "no DMA-BUF to ask"};
    report.import_sync_file = {Outcome::untested, "no DMA-BUF to ask"};
    report.memfd_sealing = {Outcome::works, "sealed"};
    report.shared_memory = {Outcome::works, "64x64 ARGB8888 read back"};
    report.heaps_error = "list DMA-BUF heaps in /dev/dma_heap: No such file or directory (errno 2)";
    report.udmabuf.conversion = {Outcome::unsupported,
                                 "open udmabuf device /dev/udmabuf: No such file or directory (errno 2)"};
    return report;
}

inline RoundTrip trip(std::uint32_t fourcc, Outcome outcome, std::string stage = "",
                      std::string detail = "") {
    return RoundTrip{fourcc, DRM_FORMAT_MOD_LINEAR, outcome, std::move(stage), std::move(detail)};
}

// A primary node whose GBM allocates the four 32-bit RGB formats and whose EGL GBM platform
// imports them; every round trip works, NV12 does not allocate (as on kms_swrast).
inline DrmNodeReport working_node(std::string path, std::string driver, unsigned minor_number) {
    DrmNodeReport node;
    node.path = std::move(path);
    node.driver = std::move(driver);
    node.device_number = makedev(226, minor_number);
    EglPlatformReport egl;
    egl.platform = "gbm";
    egl.version = "1.4";
    egl.renderer = "llvmpipe (LLVM 15.0.6, 256 bits)";
    egl.dma_buf_import = egl.import_modifiers = egl.dma_buf_export_listed = true;
    for (std::uint32_t fourcc :
         {DRM_FORMAT_ARGB8888, DRM_FORMAT_XRGB8888, DRM_FORMAT_ABGR8888, DRM_FORMAT_XBGR8888}) {
        node.gbm_formats.push_back(
            {fourcc, {{DRM_FORMAT_MOD_LINEAR, false}, {DRM_FORMAT_MOD_INVALID, false}}});
        egl.import_formats.push_back({fourcc, {}});
        node.round_trips.push_back(trip(fourcc, Outcome::works));
    }
    egl.import_formats.push_back({DRM_FORMAT_NV12, {{DRM_FORMAT_MOD_LINEAR, true}}});
    node.egl = egl;
    node.round_trips.push_back(
        trip(DRM_FORMAT_NV12, Outcome::not_allocatable, "", "gbm: cannot allocate NV12"));
    return node;
}

// The VM guest: vgem and virtio_gpu, zero-copy working on both.
inline Report two_device_report() {
    Report report = no_drm_report();
    report.nodes.push_back(working_node("/dev/dri/card0", "vgem", 0));
    report.nodes.push_back(working_node("/dev/dri/card1", "virtio_gpu", 1));
    report.export_sync_file = {Outcome::works, "on a DMA-BUF from /dev/dri/card0 (vgem)"};
    report.import_sync_file = {Outcome::works, "on a DMA-BUF from /dev/dri/card0 (vgem)"};
    return report;
}

// One device whose only allocatable format allocates and imports but reads back wrong.
inline Report failed_round_trip_report() {
    Report report = no_drm_report();
    DrmNodeReport node = working_node("/dev/dri/card0", "vgem", 0);
    node.round_trips = {trip(DRM_FORMAT_ARGB8888, Outcome::failed, "compare", "3 of 4096 pixels differ"),
                        trip(DRM_FORMAT_XRGB8888, Outcome::not_allocatable, "", "errno 22"),
                        trip(DRM_FORMAT_NV12, Outcome::not_allocatable, "", "errno 22")};
    report.nodes.push_back(std::move(node));
    return report;
}

// The 6.12 guest: heaps and udmabuf work, but EGL refuses the udmabuf (virtio_gpu,
// surfaceless) or accepts it and reads nothing back (vgem).
inline Report refused_udmabuf_report() {
    Report report = two_device_report();
    report.heaps_error.clear();
    report.heaps = {{"system", {Outcome::works, "64x64 ARGB8888, stride 256: read back exactly"}}};
    report.udmabuf.conversion = {Outcome::works,
                                 "64x64 ARGB8888 sealed memfd converted and read back exactly"};
    report.udmabuf.imports = {{"EGL gbm on /dev/dri/card1 (virtio_gpu)", Outcome::failed, "import",
                               "eglCreateImageKHR failed: EGL_BAD_ALLOC"},
                              {"EGL gbm on /dev/dri/card0 (vgem)", Outcome::failed, "read back",
                               "glReadPixels failed: GL_OUT_OF_MEMORY"},
                              {"EGL surfaceless", Outcome::untested, "",
                               "no EGL importer: EGL_EXT_image_dma_buf_import is missing"}};
    return report;
}

}  // namespace texshare::info::testing
