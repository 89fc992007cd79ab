// texshare-info's report: what one run found out about this machine, as plain data.
//
// Use it as the one thing between probing and printing: collect_report() (collect.hpp)
// fills it on a real machine, tests fill it by hand (a machine without DRM, two devices, a
// failed round trip), and the renderers (text_renderer.hpp, json_renderer.hpp) and the
// verdicts (verdict.hpp) are pure functions of it. Every "why not" is kept as the message
// of the texshare Error that said so, so the output names the failed check and its values.
#pragma once

#include <drm_fourcc.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace texshare::info {

// The image size every probe allocates: small, so a software driver under TCG is quick.
inline constexpr std::uint32_t probe_width = 64;
inline constexpr std::uint32_t probe_height = 64;

struct Modifier {
    std::uint64_t value = DRM_FORMAT_MOD_INVALID;
    bool external_only = false;  // EGL samples it only as GL_TEXTURE_EXTERNAL_OES
};

// A format and the modifiers something (GBM allocation, EGL import) accepts it with.
struct FormatModifiers {
    std::uint32_t fourcc = 0;
    std::vector<Modifier> modifiers;
};

struct EglPlatformReport {
    std::string platform;                 // "gbm" or "surfaceless"
    std::string error;                    // why the display did not open; empty when it did
    std::string version;                  // EGL_VERSION
    std::string renderer;                 // GL_RENDERER
    std::vector<std::string> extensions;  // EGL_EXTENSIONS of the display, in its order
    bool dma_buf_import = false;          // EGL_EXT_image_dma_buf_import
    bool import_modifiers = false;        // EGL_EXT_image_dma_buf_import_modifiers
    bool dma_buf_export_listed = false;   // EGL_MESA_image_dma_buf_export (listed is not working)
    std::string importer_error;           // why no texshare::egl::Importer; empty when one was made
                                          // (without the extension list: `extensions` has it)
    std::vector<FormatModifiers> import_formats;

    bool opened() const noexcept { return error.empty(); }
    bool imports() const noexcept { return opened() && importer_error.empty(); }
};

enum class Outcome {
    works,
    failed,           // `stage` failed; `detail` says how
    not_allocatable,  // GBM cannot allocate the format (with LINEAR) on this node
    untested,         // not checked (nothing to check it on, or a format this probe cannot
                      // write); `detail` says why
    unsupported,      // a kernel feature the kernel or driver lacks (ENOTTY)
};

constexpr std::string_view to_string(Outcome outcome) noexcept {
    switch (outcome) {
        case Outcome::works:
            return "works";
        case Outcome::failed:
            return "failed";
        case Outcome::not_allocatable:
            return "not_allocatable";
        case Outcome::untested:
            return "untested";
        case Outcome::unsupported:
            return "unsupported";
    }
    return "unknown";
}

// allocate (GBM, LINEAR) -> write a pattern through a CPU mapping -> send over a socket
// pair (SCM_RIGHTS, receive-side validation) -> import with EGL -> read back -> compare.
struct RoundTrip {
    std::uint32_t fourcc = 0;
    std::uint64_t modifier = DRM_FORMAT_MOD_INVALID;  // what GBM allocated with, when it did
    Outcome outcome = Outcome::untested;
    std::string stage;   // the step that failed: allocate, map, share, import, read back, compare
    std::string detail;  // the error, the first mismatching pixel, or why untested
};

struct DrmNodeReport {
    std::string path;
    std::string driver;  // empty when the node could not be opened
    bool render_node = false;
    std::uint64_t device_number = 0;  // st_rdev
    std::string gbm_error;            // GBM did not open, or allocates nothing here; empty otherwise
    std::string note;                 // a known explanation of gbm_error, when there is one
    std::vector<FormatModifiers> gbm_formats;
    std::optional<EglPlatformReport> egl;  // this node's GBM platform, when GBM allocates
    std::vector<RoundTrip> round_trips;
};

// A kernel feature, found out by using it (never by version number alone).
struct Feature {
    Outcome outcome = Outcome::untested;
    std::string detail;
};

// A DMA-BUF heap (/dev/dma_heap/NAME) and what a real allocation from it did: a
// probe_width x probe_height ARGB8888 image written through its mapping, sent over a socket
// pair (receive-side validation: DMA_BUF_MAGIC, size) and read back by the receiver's mapping.
struct HeapReport {
    std::string name;
    Feature allocation;
};

// A udmabuf DMA-BUF imported by one GPU API, its pixels read back and compared.
struct UdmabufImport {
    std::string api;  // "EGL gbm on /dev/dri/card1 (virtio_gpu)", "EGL surfaceless"
    Outcome outcome = Outcome::untested;
    std::string stage;   // import, read back, compare
    std::string detail;  // the error, the first mismatching pixel, or why untested
};

struct UdmabufReport {
    // /dev/udmabuf: a sealed memfd written by the CPU, converted, sent over a socket pair and
    // read back through the DMA-BUF's own mapping. unsupported when there is no device.
    Feature conversion;
    std::vector<UdmabufImport> imports;  // one per GPU API and display; empty unless conversion works
};

// A Vulkan device's identity and what its driver says of OPAQUE_FD memory for an RGBA8
// (R8G8B8A8_UNORM) optimal-tiling sampled image (vkGetPhysicalDeviceImageFormatProperties2
// with VkPhysicalDeviceExternalImageFormatInfo): what SharingPath::opaque_fd needs on both
// sides, with UUIDs equal there. The driver's word only: no memory is exported here.
struct VulkanOpaqueReport {
    std::string device;       // VkPhysicalDeviceProperties::deviceName
    std::string device_uuid;  // 8-4-4-4-12 hex (texshare::uuid_name)
    std::string driver_uuid;
    // works: exportable and importable; unsupported: the driver says not (detail: its answer);
    // failed: a Vulkan query failed.
    Feature opaque_fd;
};

struct Report {
    std::string version;         // texshare's
    std::string kernel_release;  // uname -r
    std::string drm_error;       // libdrm could not list devices; empty also when there are none
    bool dri_directory = false;  // /dev/dri exists (it may still hold no node libdrm lists)
    std::vector<DrmNodeReport> nodes;
    EglPlatformReport surfaceless;
    Feature export_sync_file;  // DMA_BUF_IOCTL_EXPORT_SYNC_FILE
    Feature import_sync_file;  // DMA_BUF_IOCTL_IMPORT_SYNC_FILE
    Feature memfd_sealing;     // memfd_create + F_ADD_SEALS, enforced
    Feature shared_memory;     // the fallback path's own round trip (sealed memfd, CPU mapping)
    std::string heaps_error;   // why no heap is listed (no /dev/dma_heap); empty when listed
    std::vector<HeapReport> heaps;
    UdmabufReport udmabuf;
    std::string vulkan_error;  // why no Vulkan device is listed; empty when listed
    std::vector<VulkanOpaqueReport> vulkan_devices;
};

}  // namespace texshare::info
