// texshare::gbm: DMA-BUF images allocated by a DRM device through Mesa's GBM.
//
// Use a gbm::Device when the images will be rendered or sampled by a GPU: the buffers live
// in device memory and cross to another process as DMA-BUF fds with no copy. Open one from
// an explicit node (/dev/dri/renderD128) or let open_default() discover DRM devices with
// libdrm and pick the first that can really allocate (render nodes first; a primary node
// only where the render node cannot, as on vgem and virtio_gpu, which refuse dumb buffers
// on render nodes). Where no DRM device exists, use MemfdAllocator instead.
//
// Allocation falls back the way wlroots' GBM allocator does: the caller's modifier list
// (gbm_bo_create_with_modifiers2, where the driver picks the best of them, e.g. the
// negotiated modifiers from negotiation.hpp), then LINEAR, then implicit (a driver-chosen
// layout whose modifier is recorded as DRM_FORMAT_MOD_INVALID), each only if the caller
// accepts it. What a device can allocate (allocatable_formats) comes from its EGL
// display's render formats: GBM itself cannot list modifiers.
// Planes are exported with drmPrimeHandleToFD(DRM_CLOEXEC | DRM_RDWR) so the image can be
// written through a CPU mapping; where the kernel refuses a writable export, the
// read-only gbm_bo_get_fd_for_plane() is used instead. The gbm_bo is released once its
// planes are exported: the DMA-BUF fds keep the memory alive.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "texshare/dma_buf_image.hpp"
#include "texshare/format_set.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

struct gbm_device;

namespace texshare::gbm {

struct AllocationRequest {
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    std::uint32_t fourcc = 0;
    // Acceptable modifiers; empty means "LINEAR or implicit". Include DRM_FORMAT_MOD_LINEAR
    // and/or DRM_FORMAT_MOD_INVALID (implicit) to allow those fallbacks.
    std::vector<std::uint64_t> modifiers;
    std::uint32_t usage = 0;  // GBM_BO_USE_* flags; 0 means GBM_BO_USE_RENDERING
};

struct DrmNode {
    std::string path;
    std::string driver;  // drmGetVersion's name ("i915", "vgem"...); filled by Device::open
    bool render_node = false;
    // st_rdev of the node. Nodes of one device differ (card0 226:0, renderD128 226:128):
    // compare devices with same_drm_device (negotiation.hpp), not these numbers.
    dev_t device_number = 0;
};

// Every DRM node libdrm finds, render nodes first.
Result<std::vector<DrmNode>> list_drm_nodes();

class Device {
public:
    Device(Device&&) noexcept;
    Device& operator=(Device&&) noexcept;
    ~Device();

    static Result<Device> open(const std::string& node_path);
    // The first DRM node that allocates a 64x64 ARGB8888 (or ABGR8888) buffer; Errc::unsupported
    // with the list of what was tried when none does (e.g. no /dev/dri at all).
    static Result<Device> open_default();

    Result<DmaBufImage> allocate(const AllocationRequest& request) const;

    // The known formats (format.hpp) this device allocates, each with the modifiers a 64x64
    // probe allocation succeeded with: first those of `render_formats` (the device's EGL
    // display's Display::render_formats(), in its order; GBM has no modifier query of its
    // own), then LINEAR, then implicit (INVALID). Without `render_formats` only LINEAR and
    // implicit are known, so negotiation can never pick a tiled modifier.
    FormatSet allocatable_formats(const FormatSet& render_formats = {}) const;

    const DrmNode& node() const noexcept { return node_; }
    BorrowedFd drm_fd() const noexcept { return drm_fd_.borrow(); }
    ::gbm_device* native() const noexcept { return device_; }

private:
    Device(UniqueFd drm_fd, ::gbm_device* device, DrmNode node);

    UniqueFd drm_fd_;
    ::gbm_device* device_ = nullptr;
    DrmNode node_;
};

}  // namespace texshare::gbm
