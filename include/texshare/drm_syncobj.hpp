// DRM syncobj timelines: one kernel fence object with a 64-bit point per frame, as Wayland's
// linux-drm-syncobj-v1 and PipeWire's SPA_META_SyncTimeline share them.
//
// Use a DrmSyncobj where two processes sync with timeline points instead of one sync_file per
// frame: the syncobj's fd crosses once (export_fd / import), then each side signals or
// attaches a fence at point N and the other waits for N. The frame protocol carries such
// points (FenceKind::drm_syncobj_timeline, frame/fence_kind.hpp); this header is the kernel
// object. Bridges to sync_file (export_sync_file / import_sync_file) connect it to EGL,
// Vulkan SYNC_FD and DMA-BUF implicit sync.
//
// Where the rules come from: the kernel's uAPI (include/uapi/drm/drm.h, the DRM_IOCTL_SYNCOBJ_*
// ioctls, drivers/gpu/drm/drm_syncobj.c), called through libdrm's drmSyncobj* wrappers. A
// syncobj handle belongs to one open DRM file (the device fd it was created or imported
// on), so a DrmSyncobj keeps its own dup of that fd: the handle stays valid as long as the
// object, whoever closes the caller's fd. A syncobj's fd is not tied to a device: any DRM
// device with DRM_CAP_SYNCOBJ_TIMELINE imports it. Timeline syncobjs need the device to have
// DRM_CAP_SYNCOBJ_TIMELINE (Linux 5.2+, drivers with DRIVER_SYNCOBJ_TIMELINE); measured in
// the VM lane (docs/vm-lane-facts.md): virtio_gpu on 6.12 has it; vgem never; 6.1's
// virtio_gpu has no syncobj at all. Everything here returns Errc::unsupported on such a
// device, naming it and the missing capability.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <string>
#include <utility>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

namespace detail {
// "/dev/dri/card1 (driver virtio_gpu)" for messages; cold: errors only.
[[gnu::cold]] inline std::string drm_device_name(BorrowedFd device) {
    char path[PATH_MAX]{};
    const std::string link = fmt::format("/proc/self/fd/{}", device.get());
    const ssize_t length = ::readlink(link.c_str(), path, sizeof path - 1);
    std::string name =
        length > 0 ? std::string(path, static_cast<std::size_t>(length)) : fmt::format("fd {}", device.get());
    if (drmVersionPtr version = drmGetVersion(device.get()); version != nullptr) {
        name += fmt::format(" (driver {})", version->name != nullptr ? version->name : "?");
        drmFreeVersion(version);
    } else {
        name += " (not a DRM device)";
    }
    return name;
}

// A libdrm call failed with errno `err`: Errc::system naming the call, the device and the point.
[[gnu::cold]] inline Error syncobj_error(int err, const char* call, BorrowedFd device, std::uint64_t point) {
    return make_sys_error(err, "{} at point {} on {}", call, point, drm_device_name(device));
}

// CLOCK_MONOTONIC now + timeout, in ns, as DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT wants it (an
// absolute time: drm_timeout_abs_to_jiffies); 0 stays 0 (only check), far ones saturate.
inline std::int64_t syncobj_deadline(std::chrono::nanoseconds timeout) noexcept {
    if (timeout.count() == 0) return 0;
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const std::int64_t now_ns = std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
    if (timeout.count() > INT64_MAX - now_ns) return INT64_MAX;
    return now_ns + timeout.count();
}
}  // namespace detail

// Ok when `device` (an open DRM device fd, primary or render node) can hold timeline
// syncobjs: DRM_CAP_SYNCOBJ and DRM_CAP_SYNCOBJ_TIMELINE are both 1 (drmGetCap; the caps are
// in include/uapi/drm/drm.h). Errc::unsupported otherwise, naming the device, its driver and
// the first missing capability; a fd that is not a DRM device fails the first query and is
// named as such.
inline Result<void> require_syncobj_timeline(BorrowedFd device) {
    for (auto [cap, name] :
         {std::pair{std::uint64_t{DRM_CAP_SYNCOBJ}, "DRM_CAP_SYNCOBJ"},
          std::pair{std::uint64_t{DRM_CAP_SYNCOBJ_TIMELINE}, "DRM_CAP_SYNCOBJ_TIMELINE"}}) {
        std::uint64_t value = 0;
        if (drmGetCap(device.get(), cap, &value) != 0) {
            const int err = errno;
            Error error = make_sys_error(err, "{}: drmGetCap({})", detail::drm_device_name(device), name);
            error.code = Errc::unsupported;
            return error;
        }
        if (value == 0) {
            return make_error(Errc::unsupported, "{} has no {}: no DRM syncobj timelines on this device",
                              detail::drm_device_name(device), name);
        }
    }
    return {};
}

class DrmSyncobj {
public:
    DrmSyncobj() = default;
    DrmSyncobj(DrmSyncobj&& other) noexcept
        : device_(std::move(other.device_)), handle_(std::exchange(other.handle_, 0)) {}
    DrmSyncobj& operator=(DrmSyncobj&& other) noexcept {
        if (this != &other) {
            destroy();
            device_ = std::move(other.device_);
            handle_ = std::exchange(other.handle_, 0);
        }
        return *this;
    }
    DrmSyncobj(const DrmSyncobj&) = delete;
    DrmSyncobj& operator=(const DrmSyncobj&) = delete;
    ~DrmSyncobj() { destroy(); }

    // A new syncobj on `device` (borrowed; dup'ed with F_DUPFD_CLOEXEC), with no point
    // signalled yet (its payload is 0). Errc::unsupported without timeline syncobjs
    // (require_syncobj_timeline), Errc::system when the dup or drmSyncobjCreate fails.
    static Result<DrmSyncobj> create(BorrowedFd device) {
        auto opened = adopt_device(device);
        if (!opened) return std::move(opened).error();
        DrmSyncobj syncobj;
        syncobj.device_ = std::move(*opened);
        if (drmSyncobjCreate(syncobj.device_.get(), 0, &syncobj.handle_) != 0) {
            return detail::syncobj_error(errno, "drmSyncobjCreate", device, 0);
        }
        return syncobj;
    }

    // The syncobj behind `syncobj_fd` (borrowed: a peer's fd stays the caller's to close), on
    // `device`. Errc::unsupported as for create(); Errc::rejected when the kernel refuses the
    // fd (DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: EINVAL for any file that is not a syncobj).
    static Result<DrmSyncobj> import(BorrowedFd device, BorrowedFd syncobj_fd) {
        auto opened = adopt_device(device);
        if (!opened) return std::move(opened).error();
        DrmSyncobj syncobj;
        syncobj.device_ = std::move(*opened);
        if (drmSyncobjFDToHandle(syncobj.device_.get(), syncobj_fd.get(), &syncobj.handle_) != 0) {
            const int err = errno;
            syncobj.handle_ = 0;
            Error error = make_sys_error(err, "drmSyncobjFDToHandle of fd {} on {}", syncobj_fd.get(),
                                         detail::drm_device_name(device));
            if (err == EINVAL || err == EBADF) error.code = Errc::rejected;
            return error;
        }
        return syncobj;
    }

    bool valid() const noexcept { return handle_ != 0; }
    std::uint32_t handle() const noexcept { return handle_; }
    BorrowedFd device() const noexcept { return device_.borrow(); }

    // A new fd of this syncobj (close-on-exec: the kernel opens it O_CLOEXEC), the caller's to
    // send and close. Errc::system when DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD fails.
    Result<UniqueFd> export_fd() const {
        int fd = -1;
        if (drmSyncobjHandleToFD(device_.get(), handle_, &fd) != 0) {
            return detail::syncobj_error(errno, "drmSyncobjHandleToFD", device(), 0);
        }
        return UniqueFd(fd);
    }

    // Signals `point` from the CPU now (DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL: a signalled fence
    // is added at the point). Points should increase: the kernel accepts a lower one but then
    // answers queries with 0 (drm_syncobj_add_point), so the frame protocol refuses them.
    Result<void> signal(std::uint64_t point) {
        std::uint32_t handle = handle_;
        if (drmSyncobjTimelineSignal(device_.get(), &handle, &point, 1) != 0) {
            return detail::syncobj_error(errno, "drmSyncobjTimelineSignal", device(), point);
        }
        return {};
    }

    // Waits until `point` has signalled; with `for_submit` also for a point that has no fence
    // yet (DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: the peer may attach it later), without it
    // such a point is Errc::invalid_argument (the kernel's EINVAL). timeout > 0 waits at most
    // that long, 0 only checks, < 0 is Errc::invalid_argument; Errc::timed_out when it did
    // not signal in time (ETIME).
    Result<void> wait(std::uint64_t point, std::chrono::nanoseconds timeout, bool for_submit = true) const {
        if (timeout.count() < 0) {
            return make_error(Errc::invalid_argument, "DrmSyncobj::wait: negative timeout {} ns",
                              timeout.count());
        }
        std::uint32_t handle = handle_;
        const unsigned flags = for_submit ? DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT : 0;
        if (drmSyncobjTimelineWait(device_.get(), &handle, &point, 1, detail::syncobj_deadline(timeout),
                                   flags, nullptr) != 0) {
            const int err = errno;
            if (err == ETIME || err == ETIMEDOUT) {
                return make_error(Errc::timed_out, "DRM syncobj point {} did not signal within {} ns", point,
                                  timeout.count());
            }
            Error error = detail::syncobj_error(err, "drmSyncobjTimelineWait", device(), point);
            if (err == EINVAL && !for_submit) error.code = Errc::invalid_argument;
            return error;
        }
        return {};
    }

    // The highest signalled point (DRM_IOCTL_SYNCOBJ_QUERY: the timeline's payload), without
    // waiting.
    Result<std::uint64_t> signalled_point() const {
        std::uint32_t handle = handle_;
        std::uint64_t point = 0;
        if (drmSyncobjQuery(device_.get(), &handle, &point, 1) != 0) {
            return detail::syncobj_error(errno, "drmSyncobjQuery", device(), 0);
        }
        return point;
    }

    // A sync_file of the fence at `point` (signalled already, or pending until the fence
    // attached there signals), the caller's. Done the way the kernel offers it: the point's
    // fence is moved into a temporary binary syncobj (DRM_IOCTL_SYNCOBJ_TRANSFER), which is
    // exported with DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE. Errc::would_block when
    // no fence is at the point yet (nobody signalled or attached it: the kernel's EINVAL);
    // Errc::system for any other failure.
    Result<UniqueFd> export_sync_file(std::uint64_t point) const {
        auto binary = temporary();
        if (!binary) return std::move(binary).error();
        if (drmSyncobjTransfer(device_.get(), binary->handle_, 0, handle_, point, 0) != 0) {
            const int err = errno;
            if (err == EINVAL) {
                return make_error(
                    Errc::would_block,
                    "DRM syncobj point {} has no fence yet (not signalled or attached): nothing to "
                    "export as a sync_file",
                    point);
            }
            return detail::syncobj_error(err, "drmSyncobjTransfer (to binary)", device(), point);
        }
        int fd = -1;
        if (drmSyncobjExportSyncFile(device_.get(), binary->handle_, &fd) != 0) {
            return detail::syncobj_error(errno, "drmSyncobjExportSyncFile", device(), point);
        }
        return UniqueFd(fd);
    }

    // Attaches `sync_file` (borrowed) at `point`: the point signals when the sync_file does.
    // The reverse of export_sync_file: imported into a temporary binary syncobj
    // (DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE), then transferred to the point.
    // Errc::rejected when the kernel refuses the fd as a sync_file (EINVAL).
    Result<void> import_sync_file(std::uint64_t point, BorrowedFd sync_file) {
        auto binary = temporary();
        if (!binary) return std::move(binary).error();
        if (drmSyncobjImportSyncFile(device_.get(), binary->handle_, sync_file.get()) != 0) {
            const int err = errno;
            Error error = make_sys_error(err, "drmSyncobjImportSyncFile of fd {} for point {} on {}",
                                         sync_file.get(), point, detail::drm_device_name(device()));
            if (err == EINVAL || err == EBADF) error.code = Errc::rejected;
            return error;
        }
        if (drmSyncobjTransfer(device_.get(), handle_, point, binary->handle_, 0, 0) != 0) {
            return detail::syncobj_error(errno, "drmSyncobjTransfer (to timeline)", device(), point);
        }
        return {};
    }

private:
    static Result<UniqueFd> adopt_device(BorrowedFd device) {
        if (auto capable = require_syncobj_timeline(device); !capable) return std::move(capable).error();
        const int copy = ::fcntl(device.get(), F_DUPFD_CLOEXEC, 3);
        if (copy < 0) return make_sys_error(errno, "F_DUPFD_CLOEXEC of DRM device fd {}", device.get());
        return UniqueFd(copy);
    }

    // A binary syncobj on the same DRM file, for the sync_file bridges; destroyed with it.
    Result<DrmSyncobj> temporary() const {
        const int copy = ::fcntl(device_.get(), F_DUPFD_CLOEXEC, 3);
        if (copy < 0) return make_sys_error(errno, "F_DUPFD_CLOEXEC of DRM device fd {}", device_.get());
        DrmSyncobj binary;
        binary.device_ = UniqueFd(copy);
        if (drmSyncobjCreate(binary.device_.get(), 0, &binary.handle_) != 0) {
            return detail::syncobj_error(errno, "drmSyncobjCreate (binary)", device(), 0);
        }
        return binary;
    }

    void destroy() noexcept {
        if (handle_ != 0) (void)drmSyncobjDestroy(device_.get(), handle_);
        handle_ = 0;
        device_.reset();
    }

    UniqueFd device_;
    std::uint32_t handle_ = 0;
};

}  // namespace texshare
