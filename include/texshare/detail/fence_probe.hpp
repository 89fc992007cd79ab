// What a peer's fence fd may be, per FenceKind, asked with one statx (never blocking on the
// file: see detail/fd_probe.hpp for why statx(AT_STATX_DONT_SYNC) comes first). Private to
// texshare; the frame endpoints call require_fence() on every fence they receive.
//
// What can be checked, and what cannot:
// - sync_file: the fd is a file of the shared anonymous inode (require_fence_kind in
//   fd_probe.hpp), as before fence kinds existed. That inode is shared with eventfd, epoll,
//   timerfd and DRM syncobj files, none of which blocks in poll() or close(); which one it
//   is, the wait or the import tells (a SYNC_FD import checks SYNC_IOC_FILE_INFO first).
// - vulkan_opaque_semaphore: what a driver exports for OPAQUE_FD is the driver's business
//   (Vulkan spec, "External Semaphore Handle Types": an opaque handle only the same driver
//   on the same device understands). Measured or documented: NVIDIA's driver 580 exports
//   fds of /dev/nvidiactl (a character device, major 195); Mesa's drivers with a DRM device
//   (radv, anv, turnip) export a DRM syncobj, a file of the shared anonymous inode; Mesa 25
//   lavapipe exports no OPAQUE_FD semaphores at all (docs/vm-lane-facts.md). So an
//   OPAQUE_FD fence is accepted as a character device or a file of the shared anonymous
//   inode, and everything else is refused: a pipe, a socket, a regular file (a memfd, a
//   file on disk), a directory, a block device, a symlink (O_PATH), and an anonymous inode of
//   another pseudo file system (a DMA-BUF, a pidfd). Not checkable from the fd: that a
//   character device is the GPU driver's (a CUSE device, a tty or /dev/null pass the check;
//   the Vulkan import is what refuses them, and the close of such an fd may block: the
//   endpoints close an OPAQUE_FD fence nobody took off their thread, detail/fd_closer.hpp),
//   and that the semaphore belongs to this device and driver (negotiation's UUIDs say that,
//   which is why no endpoint accepts this kind unless the application says so).
#pragma once

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/magic.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "texshare/detail/fd_closer.hpp"
#include "texshare/detail/fd_probe.hpp"
#include "texshare/frame/fence_kind.hpp"

namespace texshare::detail {

// Names what a refused OPAQUE_FD fence fd is. Cold: only a broken or hostile peer gets here.
[[gnu::noinline, gnu::cold]] inline Error opaque_fence_error(BorrowedFd fd) {
    auto facts = file_facts(fd);
    if (!facts) return std::move(facts).error();
    const char* what = "a file";
    switch (facts->type) {
        case S_IFIFO:
            what = "a pipe";
            break;
        case S_IFSOCK:
            what = "a socket";
            break;
        case S_IFREG:
            what = facts->identity.device == shm_mount_device() ? "a memfd" : "a regular file";
            break;
        case S_IFDIR:
            what = "a directory";
            break;
        case S_IFBLK:
            what = "a block device";
            break;
        case S_IFLNK:
            what = "a symbolic link (O_PATH)";
            break;
        case 0: {
            // An anonymous inode of its own pseudo file system, whose statfs never blocks
            // (simple_statfs): safe to ask for the magic.
            auto magic = file_system_magic(fd);
            what = magic && *magic == DMA_BUF_MAGIC ? "a DMA-BUF"
                                                    : "an anonymous inode of another pseudo file system";
            break;
        }
        default:
            break;
    }
    return make_error(
        Errc::rejected,
        "fence fd {} is {} (mode 0{:o} on {}), not what a driver exports for an OPAQUE_FD semaphore "
        "(a character device, or a DRM syncobj of the anonymous inode on {})",
        fd.get(), what, facts->type, device_name(facts->identity.device),
        device_name(shared_anon_inode().device));
}

// Ok when a peer's OPAQUE_FD semaphore fd is of a kind a driver exports (see above). One
// statx; the success path builds nothing.
inline Result<void> require_opaque_semaphore_kind(BorrowedFd fd) {
    struct statx info;  // the kernel writes the fields asked for; nothing else is read
    if (statx_fd(fd.get(), STATX_TYPE | STATX_INO, &info) == 0) {
        const mode_t type = info.stx_mode & S_IFMT;
        if (type == S_IFCHR) return {};
        if (type == 0) {
            const FileIdentity anon = shared_anon_inode();
            if (makedev(info.stx_dev_major, info.stx_dev_minor) == anon.device && info.stx_ino == anon.inode)
                return {};
        }
    }
    return opaque_fence_error(fd);
}

// Ok when a peer's timeline fd (FrameKind::timeline) is a DRM syncobj. Checked: the fd is a
// file of the shared anonymous inode (one statx, as for a sync_file), and its name there is
// "anon_inode:syncobj_file" (readlink of /proc/self/fd/N: drm_syncobj.c names its files so;
// measured on 6.12, docs/vm-lane-facts.md), which tells it from a sync_file, an eventfd, an
// epoll or a timerfd of the same inode. Neither call can block on the file. Not checkable
// here: which device's driver made it (a syncobj fd is device-independent; the DRM import,
// DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, is what uses it) and whether it is a timeline or a binary
// syncobj (the kernel treats both alike for points). Without /proc (a sandbox that hides
// it) only the inode is checked, and the import refuses anything else (EINVAL). Once per
// session, never per frame.
inline Result<void> require_syncobj_fd(BorrowedFd fd) {
    if (auto anon = require_fence_kind(fd); !anon) {
        return make_error(Errc::rejected, "timeline fd {} is not a DRM syncobj: {}", fd.get(), anon.error().message);
    }
    char link[32];
    char name[64]{};
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd.get());
    const ssize_t length = ::readlink(link, name, sizeof name - 1);
    if (length < 0) return {};  // no /proc: the inode is all that can be checked (see above)
    constexpr std::string_view syncobj_name = "anon_inode:syncobj_file";
    if (std::string_view(name, static_cast<std::size_t>(length)) != syncobj_name) {
        return make_error(Errc::rejected, "timeline fd {} is {}, not a DRM syncobj ({})", fd.get(),
                          std::string_view(name, static_cast<std::size_t>(length)), syncobj_name);
    }
    return {};
}

[[gnu::noinline, gnu::cold]] inline Error fence_not_accepted(FenceKind kind, FenceKindSet accepted) {
    std::string names;
    for (auto k : {FenceKind::sync_file, FenceKind::vulkan_opaque_semaphore, FenceKind::drm_syncobj_timeline}) {
        if (!accepted.contains(k)) continue;
        if (!names.empty()) names += ", ";
        names += to_string(k);
    }
    return make_error(Errc::rejected, "a fence of kind {}, which this side does not accept (accepted: {})",
                      to_string(kind), names.empty() ? std::string("none") : names);
}

// Ok when `kind` is one this side accepts and `fd` is of that kind (the envelope check,
// check_frame_message, has made sure kind and fd come together and the kind is known).
// Errc::rejected otherwise, naming the kind and what the fd is. One statx per fence.
inline Result<void> require_fence(BorrowedFd fd, std::uint8_t kind, FenceKindSet accepted) {
    if (!accepted.contains_raw(kind)) [[unlikely]]
        return fence_not_accepted(static_cast<FenceKind>(kind), accepted);
    if (kind == static_cast<std::uint8_t>(FenceKind::sync_file)) [[likely]]
        return require_fence_kind(fd);
    return require_opaque_semaphore_kind(fd);
}

// Closes a fence fd that nobody took: at once for a sync_file (its close never blocks),
// off this thread for any other kind (a character device's close runs its driver's
// release, which a CUSE device forwards to a process).
inline void drop_fence(UniqueFd& fd, FenceKind kind) noexcept {
    if (kind == FenceKind::sync_file) {
        fd.reset();
    } else {
        close_peer_fd(fd);
    }
}

}  // namespace texshare::detail
