// VM-lane support: real, unsignalled DMA-BUF fences from vgem, and GBM devices by driver name.
//
// Why vgem: the guest has no GPU, and llvmpipe attaches no fences to what it renders, so
// every sync_file exported there is already signalled. vgem is the one upstream driver whose
// fences userspace attaches and signals itself (it exists to test implicit sync), which
// turns "pending until the peer is done" into something a test can hold and then release.
//
// vgem fence rules (Linux 6.1, drivers/gpu/drm/vgem/vgem_fence.c): a fence lives in the
// reservation object of the buffer it is attached to, so it is what EXPORT_SYNC_FILE and
// DMA_BUF_IOCTL_SYNC see on every DMA-BUF fd of that buffer, in every process. It signals on
// FENCE_SIGNAL from the drm file that attached it, when that file closes, or by itself after
// 10 s (then FENCE_SIGNAL answers ETIMEDOUT): tests signal well within that.
#pragma once

#include <linux/types.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <xf86drm.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "texshare/gbm/allocator.hpp"
#include "texshare/sync_file.hpp"

namespace texshare::testing {

// From the kernel's include/uapi/drm/vgem_drm.h (Linux 4.10+), which neither libdrm-dev nor
// linux-libc-dev installs on Debian 12. Only vgem implements these numbers; on another
// driver the same number is that driver's own ioctl (on virtio_gpu, DRM_COMMAND_BASE + 1 with
// 16 bytes is DRM_IOCTL_VIRTGPU_MAP), so issue them on a vgem fd only.
namespace vgem_uapi {
struct drm_vgem_fence_attach {
    __u32 handle;
    __u32 flags;
    __u32 out_fence;
    __u32 pad;
};
struct drm_vgem_fence_signal {
    __u32 fence;
    __u32 flags;
};
inline constexpr __u32 fence_write = 0x1;  // VGEM_FENCE_WRITE
inline constexpr unsigned long ioctl_fence_attach =
    DRM_IOWR(DRM_COMMAND_BASE + 0x1, drm_vgem_fence_attach);  // DRM_IOCTL_VGEM_FENCE_ATTACH
inline constexpr unsigned long ioctl_fence_signal =
    DRM_IOW(DRM_COMMAND_BASE + 0x2, drm_vgem_fence_signal);  // DRM_IOCTL_VGEM_FENCE_SIGNAL
}  // namespace vgem_uapi

// The first primary node whose driver is `driver` ("vgem", "virtio_gpu"), as a GBM device.
// Primary, because both drivers refuse dumb buffers on their render nodes.
inline Result<gbm::Device> open_device_of(std::string_view driver) {
    auto nodes = gbm::list_drm_nodes();
    if (!nodes) return std::move(nodes).error();
    std::string seen;
    for (const gbm::DrmNode& node : *nodes) {
        if (node.render_node) continue;
        auto device = gbm::Device::open(node.path);
        if (!device) continue;
        if (device->node().driver == driver) return std::move(*device);
        seen += fmt::format(" {} ({})", node.path, device->node().driver);
    }
    return make_error(Errc::unsupported, "no primary DRM node of driver {}; found:{}", driver,
                      seen.empty() ? " none" : seen);
}

// FENCE_ATTACH through `drm_fd` on the buffer behind `dma_buf` (imported into that device
// for a handle); the fence's id. Exposed so a test can show that other drivers refuse it.
inline Result<std::uint32_t> attach_fence_on(BorrowedFd drm_fd, BorrowedFd dma_buf, Access access) {
    std::uint32_t handle = 0;
    if (drmPrimeFDToHandle(drm_fd.get(), dma_buf.get(), &handle) != 0) {
        return make_sys_error(errno, "drmPrimeFDToHandle of DMA-BUF fd {}", dma_buf.get());
    }
    vgem_uapi::drm_vgem_fence_attach request{handle, access == Access::read ? 0 : vgem_uapi::fence_write, 0,
                                             0};
    const int attached = ::ioctl(drm_fd.get(), vgem_uapi::ioctl_fence_attach, &request);
    const int attach_errno = errno;
    // The fence holds no reference to the handle: it lives in the buffer and the drm file.
    (void)drmCloseBufferHandle(drm_fd.get(), handle);
    if (attached != 0) return make_sys_error(attach_errno, "FENCE_ATTACH on handle {}", handle);
    return std::uint32_t{request.out_fence};
}

// Whether a sync_file (or any fence fd) has signalled, without waiting.
inline bool is_signalled(BorrowedFd fence) {
    pollfd entry{fence.get(), POLLIN, 0};
    return ::poll(&entry, 1, 0) == 1 && (entry.revents & POLLIN) != 0;
}

// Long enough to show a fence is pending, short enough to stay far from vgem's 10 s timeout.
inline constexpr std::chrono::milliseconds fence_probe{50};
inline constexpr std::chrono::seconds fence_patience{5};

// The buffer's implicit fences as a reader (Access::read: writers only) or a writer
// (everyone) would wait for them: signalled or not, right now.
inline bool export_signalled(const DmaBufImage& image, Access access) {
    auto fence = export_sync_file(image.plane_fd(0), access);
    EXPECT_TRUE(fence) << fence.error().message;
    return fence && is_signalled(fence->borrow());
}

class Vgem {
public:
    static Result<Vgem> open() {
        auto device = open_device_of("vgem");
        if (!device) return std::move(device).error();
        return Vgem(std::move(*device));
    }

    const gbm::Device& device() const noexcept { return device_; }

    Result<DmaBufImage> allocate(std::uint32_t width, std::uint32_t height) const {
        return device_.allocate({width, height, DRM_FORMAT_ABGR8888, {DRM_FORMAT_MOD_LINEAR}, 0});
    }

    // An unsignalled fence on the buffer behind `dma_buf` (vgem's own, or any driver's: vgem
    // imports it). Access::read attaches a read fence (later writers wait), else a write fence.
    Result<std::uint32_t> attach(BorrowedFd dma_buf, Access access) const {
        return attach_fence_on(device_.drm_fd(), dma_buf, access);
    }

    Result<void> signal(std::uint32_t fence) const {
        vgem_uapi::drm_vgem_fence_signal request{fence, 0};
        if (::ioctl(device_.drm_fd().get(), vgem_uapi::ioctl_fence_signal, &request) != 0) {
            return make_sys_error(
                errno, "FENCE_SIGNAL of vgem fence {}{}", fence,
                errno == ETIMEDOUT ? " (it signalled itself after vgem's 10 s timeout)" : "");
        }
        return {};
    }

    // A sync_file that stays pending until signal(id): a peer's fence for tests to hand over.
    struct Pending {
        UniqueFd sync_file;
        std::uint32_t id = 0;
    };
    Result<Pending> pending_fence() const {
        auto scratch = allocate(16, 16);  // the fence outlives it: the sync_file holds the fence
        if (!scratch) return std::move(scratch).error();
        auto id = attach(scratch->plane_fd(0), Access::write);
        if (!id) return std::move(id).error();
        auto sync_file = export_sync_file(scratch->plane_fd(0), Access::read);
        if (!sync_file) {
            (void)signal(*id);
            return std::move(sync_file).error();
        }
        return Pending{std::move(*sync_file), *id};
    }

private:
    explicit Vgem(gbm::Device device) : device_(std::move(device)) {}
    gbm::Device device_;
};

}  // namespace texshare::testing
