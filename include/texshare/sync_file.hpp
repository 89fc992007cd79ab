// Implicit-sync fences of a DMA-BUF as sync_file fds (Linux 6.0+).
//
// Use export_sync_file() when a producer only has implicit sync (a driver that fences the
// buffer itself) but the consumer wants an explicit acquire fence to pass along; use
// import_sync_file() to put a consumer's release fence back into the buffer so implicit-sync
// users wait for it. Kernels before 6.0, and fds that are not DMA-BUFs, answer ENOTTY: that
// comes back as Errc::unsupported, and the caller falls back to what works everywhere:
// DMA_BUF_IOCTL_SYNC around CPU access, or a full GPU finish (glFinish) before signalling.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <linux/dma-buf.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <chrono>

#include "texshare/detail/poll_wait.hpp"
#include "texshare/image_mapping.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

namespace detail {
inline Error sync_file_error(int err, const char* what, BorrowedFd dma_buf) {
    Error error = make_sys_error(err, "{} on fd {}", what, dma_buf.get());
    if (err == ENOTTY || err == EINVAL) {
        error.code = Errc::unsupported;
        error.message += " (not a DMA-BUF, or a kernel without sync_file import/export)";
    }
    return error;
}
}  // namespace detail

// A sync_file that signals when the buffer's current users (writers for Access::read,
// everyone for a write) are done. The fd is close-on-exec.
inline Result<UniqueFd> export_sync_file(BorrowedFd dma_buf, Access access) {
    dma_buf_export_sync_file request{};
    request.flags = static_cast<__u32>(detail::dma_buf_sync_flags(access));
    request.fd = -1;
    if (::ioctl(dma_buf.get(), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &request) != 0) {
        return detail::sync_file_error(errno, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE", dma_buf);
    }
    if (request.fd < 0) {
        return make_error(Errc::unsupported, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE on fd {} gave no fd",
                          dma_buf.get());
    }
    UniqueFd fence(request.fd);
    // The kernel sets O_CLOEXEC on the new fd, but make sure: it must not leak into children.
    if (::fcntl(fence.get(), F_SETFD, FD_CLOEXEC) != 0) return make_sys_error(errno, "F_SETFD on sync_file");
    return fence;
}

// Adds a fence to the buffer. `access` is what the fence's owner does with the buffer, not
// what comes next: a read fence (a consumer's release) holds up later writers only; a write
// fence (a producer's acquire) holds up everyone, readers included.
inline Result<void> import_sync_file(BorrowedFd dma_buf, BorrowedFd sync_file, Access access) {
    if (!sync_file.valid()) return make_error(Errc::invalid_argument, "import_sync_file: no sync_file fd");
    dma_buf_import_sync_file request{};
    request.flags = static_cast<__u32>(detail::dma_buf_sync_flags(access));
    request.fd = sync_file.get();
    if (::ioctl(dma_buf.get(), DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &request) != 0) {
        return detail::sync_file_error(errno, "DMA_BUF_IOCTL_IMPORT_SYNC_FILE", dma_buf);
    }
    return {};
}

// Waits on the CPU until `fence` signals: a sync_file is readable once signalled (as is
// anything a peer may use in its place, e.g. an eventfd). The fallback where the GPU cannot
// wait itself (no EGL_ANDROID_native_fence_sync). Errc::timed_out when it does not signal
// within `timeout`; an empty fd means "no fence" and returns at once.
inline Result<void> wait_fence(BorrowedFd fence, std::chrono::milliseconds timeout) {
    if (!fence.valid()) return {};
    auto signalled = detail::wait_readable(fence, detail::deadline_after(timeout));
    if (!signalled) return std::move(signalled).error();
    if (!*signalled) {
        return make_error(Errc::timed_out, "fence fd {} did not signal within {} ms", fence.get(),
                          timeout.count());
    }
    return {};
}

}  // namespace texshare
