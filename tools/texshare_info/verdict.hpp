// texshare-info's verdicts: one line per way of sharing images, judged from a Report.
//
// Use judge() wherever the report must be summed up (both renderers print its lines, and
// --check-zero-copy exits by the first one). Verdicts are a pure function of the Report,
// so each wording is tested on hand-made reports.
#pragma once

#include <string>
#include <vector>

#include "report.hpp"

namespace texshare::info {

inline constexpr const char* zero_copy_path = "zero-copy GBM->EGL";
inline constexpr const char* shared_memory_path = "shared memory";
inline constexpr const char* udmabuf_path = "shared memory through udmabuf";
// SharingPath::opaque_fd's name (negotiation.hpp).
inline constexpr const char* opaque_fd_path = "Vulkan opaque memory, same device and driver";

struct Verdict {
    std::string path;       // zero_copy_path, udmabuf_path, shared_memory_path or opaque_fd_path
    bool fallback = false;  // printed as "fallback: shared memory: ..."
    bool works = false;
    std::string choice;  // what works best on this path, e.g. "ARGB8888/LINEAR"; empty if nothing
    // "works with ARGB8888/LINEAR on /dev/dri/card0 (vgem) (4 of 4 round trips passed)",
    // "unavailable: this machine has no DRM device (no /dev/dri)", ...
    std::string summary;
};

// Why no DRM device can be used here, e.g. "this machine has no DRM device (no /dev/dri)";
// empty when the report lists DRM nodes. The JSON's drm.reason, and what the text and the
// zero-copy verdict say.
std::string drm_unavailable_reason(const Report& report);

// Zero-copy first, then shared memory imported through udmabuf (no copy, no GPU on the
// producer), then the shared-memory fallback: the order a program should try them in. Last
// the Vulkan opaque-memory line: it holds only between two processes on one device and
// driver (negotiate() compares their UUIDs), and what it says is the driver's word, not a
// round trip, so it never "works" and never is this machine's best path by itself.
std::vector<Verdict> judge(const Report& report);

// The first working path and its choice, e.g. "zero-copy GBM->EGL (ARGB8888/LINEAR)" or
// "shared memory (sealed memfd)"; "none" when nothing works.
std::string best_path(const std::vector<Verdict>& verdicts);

}  // namespace texshare::info
