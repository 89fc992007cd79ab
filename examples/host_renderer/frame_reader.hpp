// How the host looks at the frames the renderer presents into its images.
//
// DMA-BUF images are imported into EGL once, when the host adds them to its FrameReceiver
// (egl::ImportListener), on the GBM device that allocated them, and each frame is read
// back through an FBO: the path a compositor's GPU takes. Where that is not possible
// (memfd images, no EGL in this build, a driver that cannot import) frames are read
// through a CPU mapping instead, bracketed with DMA_BUF_IOCTL_SYNC for DMA-BUFs, and
// method() says why. Heap images (--allocator=heap) are imported on the first DRM device's
// EGL (or surfaceless EGL); memfd images of the udmabuf path (--allocator=udmabuf) are turned
// into DMA-BUFs once each (egl::ImportListener's convert_shared_memory) and imported there
// too, else read through the CPU, a copy per frame, with method() saying why.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "allocation.hpp"
#include "texshare/frame/image_listener.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace host_renderer {

class FrameReader {
public:
    // Never fails: any problem with the GPU path only makes the reader use the CPU. The
    // allocator (its GBM device) must outlive the reader.
    static FrameReader create(const Allocator& allocator);

    FrameReader(FrameReader&&) noexcept;
    FrameReader& operator=(FrameReader&&) noexcept;
    ~FrameReader();  // releases the EGL imports and the display

    // Set it on the FrameReceiver before adding images (and unset it, or destroy the
    // receiver, before this reader goes): it imports each image once. nullptr on the CPU path.
    texshare::FrameImageListener* listener() noexcept;
    // After the listener refused an image (EGL could not import it): read through the CPU
    // from now on. Unset the listener on the receiver first: this destroys it.
    void fall_back_to_cpu(const texshare::Error& why);

    // "EGL import + FBO readback (gbm display, llvmpipe ...)" or "CPU mapping (...why...)".
    const std::string& method() const noexcept { return method_; }

    // After the receiver added image `id` (the listener has seen it): an image the udmabuf
    // path could not import goes to the CPU, and method() says so (once, for the first).
    void image_added(std::uint64_t id);

    // Whether image `id`'s frames are sampled in place (EGL import: presented_flag_zero_copy)
    // rather than read through a CPU mapping into the host's memory (presented_flag_copied).
    bool samples_in_place(std::uint64_t id) const;

    // Waits for the renderer's acquire fence (empty: nothing to wait for) before reading:
    // through EGL (egl::wait_for_peer) or on the CPU (wait_fence).
    texshare::Result<void> wait_for_renderer(texshare::UniqueFd fence, const texshare::DmaBufImage& image);

    // The pixels of image `id` as packed RGBA rows, top row first.
    texshare::Result<std::vector<std::uint8_t>> read_rgba(std::uint64_t id,
                                                          const texshare::DmaBufImage& image);

private:
    struct Gpu;  // the EGL display, importer, listener and sync mode
    FrameReader() = default;

    std::unique_ptr<Gpu> gpu_;
    std::string method_;
};

}  // namespace host_renderer
