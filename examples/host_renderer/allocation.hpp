// Where the renderer's swapchain comes from: DMA-BUFs from GBM on a DRM device, or sealed
// memfds where there is no such device (or the user asked for them).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "options.hpp"
#include "protocol.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"

namespace host_renderer {

struct Allocation {
    SwapchainImages images;
    std::uint64_t device = 0;  // st_rdev of the DRM node GBM allocated on; 0 for memfd
    // For the renderer's log line: "3 gbm images on /dev/dri/card0 (vgem), AR24 (ARGB8888)
    // LINEAR", or for memfd images why GBM was not used.
    std::string description;
};

// auto: GBM when a DRM device allocates CPU-writable LINEAR ARGB8888 (or ABGR8888) images,
// memfd ARGB8888 otherwise. gbm: the GBM path or an error saying why not. memfd: memfd.
texshare::Result<Allocation> allocate_swapchain(const Options& options);

}  // namespace host_renderer
