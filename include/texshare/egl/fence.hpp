// Fences for the frame protocol, made and waited on with EGL.
//
// Use these around GL work on shared images: after rendering into an image (or sampling
// it), fence_for_peer() gives the fence to send with present (or release); before touching
// an image the peer used, wait_for_peer() waits on the fence that came with it. How depends
// on what the display can do, chosen once by choose_sync_mode():
// - native_fence: EGL_ANDROID_native_fence_sync + EGL_KHR_wait_sync. A sync_file from the
//   GPU's own timeline; the wait is queued on the GPU (no CPU stall).
// - implicit_dma_buf: a hardware driver without that extension still fences the buffers it
//   writes (Linux implicit sync). The fence is exported from the DMA-BUF after glFlush
//   (DMA_BUF_IOCTL_EXPORT_SYNC_FILE); a received fence is imported into the DMA-BUF
//   (IMPORT_SYNC_FILE) so the driver's implicit sync waits on it.
// - finish: software rasterisers (llvmpipe, softpipe) render on the calling thread, so the
//   only safe point is after glFinish: no fence is sent (the work is done when present() is
//   called) and a received fence is waited on by the CPU, with a timeout. Slower, never torn.
//   Chosen for them even where they offer native fences (Mesa 25's llvmpipe does): their
//   "GPU-side" wait blocks the GL thread until a peer's fence signals, without a bound.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <chrono>
#include <string_view>

#include "texshare/dma_buf_image.hpp"
#include "texshare/egl/display.hpp"
#include "texshare/image_mapping.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare::egl {

enum class SyncMode { native_fence, implicit_dma_buf, finish };

constexpr std::string_view to_string(SyncMode mode) noexcept {
    switch (mode) {
        case SyncMode::native_fence:
            return "native_fence";
        case SyncMode::implicit_dma_buf:
            return "implicit_dma_buf";
        case SyncMode::finish:
            return "finish";
    }
    return "unknown";
}

SyncMode choose_sync_mode(const Display& display);

// After this side's GL commands on `image` (`done`: write after rendering, read after
// sampling): the fence to send. Empty under SyncMode::finish, which has waited already.
Result<UniqueFd> fence_for_peer(const Display& display, SyncMode mode, const DmaBufImage& image, Access done);

// Before this side's GL commands on `image` (`next`: write to render, read to sample):
// makes them wait for the peer's `fence` (empty: nothing to wait for). Waits on the CPU, up
// to cpu_timeout, where the GPU cannot wait itself.
Result<void> wait_for_peer(const Display& display, SyncMode mode, UniqueFd fence, const DmaBufImage& image,
                           Access next, std::chrono::milliseconds cpu_timeout);

}  // namespace texshare::egl
