// How the host looks at the frames the renderer presents.
//
// DMA-BUF images are imported into EGL once (on the renderer's own DRM device, which the
// host opens itself) and each frame is read back through an FBO: the path a compositor's
// GPU would take. Where that is not possible (memfd images, no EGL in this build, a driver
// that cannot import) every frame is read through a CPU mapping instead, bracketed with
// DMA_BUF_IOCTL_SYNC for DMA-BUFs, and method() says why.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol.hpp"
#include "texshare/result.hpp"

namespace host_renderer {

class FrameReader {
public:
    // Never fails: any problem with the GPU path only makes the reader fall back to the CPU.
    // `device` is the renderer's `source` device (0 for memfd images). The images must stay
    // alive and unchanged for as long as the reader is used.
    static FrameReader create(const SwapchainImages& images, std::uint64_t device);

    FrameReader(FrameReader&&) noexcept;
    FrameReader& operator=(FrameReader&&) noexcept;
    ~FrameReader();  // releases EGL imports, the EGL display and the host's device fd

    // "gbm on /dev/dri/card0, vgem", or "" for memfd images.
    const std::string& device() const noexcept { return device_; }
    // "EGL import + FBO readback (gbm display, llvmpipe ...)" or "CPU mapping (...why...)".
    const std::string& method() const noexcept { return method_; }
    bool uses_egl() const noexcept { return gpu_ != nullptr; }

    // The pixels of image `id` (1..swapchain_length) as packed RGBA rows, top row first.
    texshare::Result<std::vector<std::uint8_t>> read_rgba(std::uint64_t id, const SwapchainImages& images);

private:
    struct Gpu;  // the host's GBM device, EGL display and importer
    FrameReader() = default;

    std::unique_ptr<Gpu> gpu_;
    std::string device_;
    std::string method_;
};

}  // namespace host_renderer
