// collect_report(): everything texshare-info says about this machine, found out by trying.
//
// Use it once per run. It tries a udmabuf conversion, lists DRM nodes with libdrm, and on
// each node opens GBM, lists what GBM allocates, opens the node's EGL GBM platform and runs
// the round trips (and a udmabuf import); then the surfaceless EGL platform (and its udmabuf
// import), the kernel features, the shared-memory path and the DMA-BUF heaps. It never
// fails as a whole: whatever does not work is recorded in the Report with its error.
// Every device, display, image and fd it opens is closed before it returns. Mesa may print
// its own complaints to stderr while probing (e.g. "KMS: DRM_IOCTL_MODE_CREATE_DUMB failed"
// on a render node); the report is on stdout.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "report.hpp"

namespace texshare::info {

Report collect_report();

// EGL_EXTENSIONS split at spaces (the string ends in one on Mesa).
std::vector<std::string> split_extensions(std::string_view extensions);

// `message` without the " (display extensions: ...)" that texshare::egl::Importer::create
// appends when an extension is missing: the report lists the extensions once, on their own.
std::string without_extension_list(std::string_view message);

}  // namespace texshare::info
