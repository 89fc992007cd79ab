// What kind of file an fd is and how big it is, asked of the kernel without ever blocking on
// the file: every probe here is safe on any fd a peer sent. Private to texshare.
//
// Why that matters: some files do their work in another process. stat() of a FUSE file asks
// its daemon (FUSE_GETATTR), statfs() asks it too (FUSE_STATFS), an ioctl or a poll() is
// forwarded to it, and the daemon may never answer; NFS does the same over the network. So
// the order here is fixed: first statx(AT_STATX_DONT_SYNC), which answers from the inode the
// kernel has cached and never asks the file's owner (fs/fuse/dir.c fuse_update_get_attr:
// DONT_SYNC means no request; the same flag in nfs_getattr skips revalidation); then only
// probes that the first answer has shown to be safe for that file:
//   - a memfd lives on the kernel's one internal shm mount (mm/shmem.c shm_mnt, used by
//     memfd_create through shmem_file_setup), whose device number this process learns from a
//     memfd of its own. A /dev/shm file or a MFD_HUGETLB memfd is on another mount.
//   - fcntl(F_GET_SEALS) touches only shmem and hugetlbfs inodes (mm/memfd.c
//     memfd_file_seals_ptr) and fails with EINVAL for every other file, without calling it.
//   - a DMA-BUF's inode comes from alloc_anon_inode() on the DMA-BUF pseudo file system: its
//     statx mode has no file type bits (S_IFMT 0) on 6.1 and 6.12, and since 6.15
//     ("anon_inode: use a proper mode internally") the kernel hides the type it keeps
//     inside. Such inodes are on pseudo file systems whose statfs is simple_statfs, so
//     fstatfs is asked only of them (for the magic), never of a file with a type.
//   - a sync_file is made by anon_inode_getfile(), which gives every such file (sync_file,
//     eventfd, epoll, timerfd, DRM syncobj, ...) the one shared anonymous inode: its device
//     and inode number, learned from an eventfd of this process's own, prove the kind.
// close() of any of these four kinds never waits for another process (their release
// handlers free memory and drop fence references); of any other kind it may (a TCP socket
// lingering on unsent data, a FUSE file's FLUSH): see detail/fd_closer.hpp.
#pragma once

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

namespace texshare::detail {

struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

// One statx: who the file is (two fds of one file compare equal), its size and its type.
struct FileFacts {
    FileIdentity identity;
    std::uint64_t size = 0;
    mode_t type = 0;  // st_mode & S_IFMT; 0 for an anonymous inode (DMA-BUF, sync_file, eventfd)
};

// statx(fd, AT_EMPTY_PATH | AT_STATX_DONT_SYNC): never asks a FUSE daemon or an NFS server.
// A NULL path is the kernel's fast path since 6.11 (no lookup of ""); older kernels answer
// EFAULT to it, and from then on "" is passed (a lookup of the empty name, the same answer).
inline int statx_fd(int fd, unsigned mask, struct statx* info) {
    // The raw syscall: glibc declares statx's path nonnull, and the NULL is the point.
    static std::atomic<bool> null_path_refused{false};
    constexpr int flags = AT_EMPTY_PATH | AT_STATX_DONT_SYNC;
    if (!null_path_refused.load(std::memory_order_relaxed)) {
        const auto result = ::syscall(SYS_statx, fd, static_cast<const char*>(nullptr), flags, mask, info);
        if (result == 0 || errno != EFAULT) return static_cast<int>(result);
        null_path_refused.store(true, std::memory_order_relaxed);
    }
    return static_cast<int>(::syscall(SYS_statx, fd, "", flags, mask, info));
}

inline Result<FileFacts> file_facts(BorrowedFd fd) {
    struct statx info {};
    if (statx_fd(fd.get(), STATX_TYPE | STATX_INO | STATX_SIZE, &info) != 0) {
        return make_sys_error(errno, "statx of fd {}", fd.get());
    }
    return FileFacts{{makedev(info.stx_dev_major, info.stx_dev_minor), static_cast<ino_t>(info.stx_ino)},
                     info.stx_size, static_cast<mode_t>(info.stx_mode & S_IFMT)};
}

inline Result<FileIdentity> file_identity(BorrowedFd fd) {
    auto facts = file_facts(fd);
    if (!facts) return std::move(facts).error();
    return facts->identity;
}

inline Result<void> expect_regular(BorrowedFd fd, const FileFacts& facts) {
    if (facts.type == S_IFREG) return {};
    return make_error(Errc::rejected, "fd {} is not a regular file (mode 0{:o})", fd.get(), facts.type);
}

// fstatfs: may block on a FUSE or NFS file. Only for fds known to be of a local file system
// (this process's own, an anonymous inode, a shmem or hugetlbfs memfd).
inline Result<std::uint64_t> file_system_magic(BorrowedFd fd) {
    struct statfs info {};
    if (::fstatfs(fd.get(), &info) != 0) return make_sys_error(errno, "fstatfs of fd {}", fd.get());
    return static_cast<std::uint64_t>(info.f_type);
}

// For this process's own fds (the EGL exporter's); a peer's goes through dma_buf_size_if_dma_buf.
inline Result<bool> is_dma_buf(BorrowedFd fd) {
    auto magic = file_system_magic(fd);
    if (!magic) return std::move(magic).error();
    return *magic == DMA_BUF_MAGIC;
}

// The seals of a memfd; EINVAL (not a file that supports sealing) comes back as an error.
inline Result<unsigned> memfd_seals(BorrowedFd fd) {
    const int seals = ::fcntl(fd.get(), F_GET_SEALS);
    if (seals < 0) return make_sys_error(errno, "fcntl(F_GET_SEALS) of fd {}", fd.get());
    return static_cast<unsigned>(seals);
}

// A device number learned once per process from a file of its own; 0 = not learned yet
// (anonymous device numbers start at 1), -1 as dev_t = learning failed this time. A failure
// is never kept: a process at its fd limit (EMFILE) must not refuse every later memfd or
// fence once fds are free again, so the next probe tries again.
inline constexpr dev_t device_unknown = 0;
inline constexpr dev_t device_unlearnable = static_cast<dev_t>(-1);

// The device of the kernel's internal shm mount, where every memfd_create() file lives
// (unless MFD_HUGETLB): learned from a memfd this process creates and closes once.
inline dev_t shm_mount_device() {
    static std::atomic<dev_t> learned{device_unknown};
    dev_t device = learned.load(std::memory_order_relaxed);
    if (device != device_unknown) return device;
    UniqueFd own(::memfd_create("texshare-shm-probe", MFD_CLOEXEC));
    auto facts = own ? file_facts(own.borrow()) : Result<FileFacts>(make_error(Errc::system, "memfd_create"));
    if (!facts) return device_unlearnable;
    device = facts->identity.device;
    learned.store(device, std::memory_order_relaxed);
    return device;
}

// The shared anonymous inode of anon_inode_getfile() (fs/anon_inodes.c anon_inode_inode):
// learned from an eventfd this process creates and closes once.
inline FileIdentity shared_anon_inode() {
    static std::atomic<dev_t> device{device_unknown};
    static std::atomic<ino_t> inode{0};
    if (const dev_t known = device.load(std::memory_order_acquire); known != device_unknown) {
        return {known, inode.load(std::memory_order_relaxed)};
    }
    UniqueFd own(::eventfd(0, EFD_CLOEXEC));
    auto facts = own ? file_facts(own.borrow()) : Result<FileFacts>(make_error(Errc::system, "eventfd"));
    if (!facts) return FileIdentity{device_unlearnable, 0};
    const FileIdentity identity = facts->identity;
    inode.store(identity.inode, std::memory_order_relaxed);
    device.store(identity.device, std::memory_order_release);
    return identity;
}

// Whether `facts` (of a peer's fd) are those of a file made by anon_inode_getfile(): a
// sync_file, or another file of the shared anonymous inode (eventfd, epoll, timerfd, a DRM
// syncobj). None of them blocks in poll() or close(). Which one it is, the wait or the
// import of the fence tells (a non-sync_file is refused there).
inline bool is_shared_anon_inode(const FileFacts& facts) {
    return facts.type == 0 && facts.identity == shared_anon_inode();
}

// "device 0:17" for an error message.
inline std::string device_name(dev_t device) {
    return fmt::format("device {}:{}", major(device), minor(device));
}

// Ok when a peer's fence fd is of a sync_file's kind (is_shared_anon_inode): the host may
// poll and close it on its event loop. One statx; this runs per fenced frame, so the
// success path builds nothing (no zeroed statx buffer, no FileFacts). Errc::rejected
// otherwise, saying what the fd is.
[[gnu::noinline, gnu::cold]] inline Error fence_kind_error(BorrowedFd fd) {
    auto facts = file_facts(fd);
    if (!facts) return std::move(facts).error();
    return make_error(Errc::rejected,
                      "fence fd {} is not of a sync_file's kind: mode 0{:o} on {}, not the anonymous inode every "
                      "sync_file shares ({})",
                      fd.get(), facts->type, device_name(facts->identity.device),
                      device_name(shared_anon_inode().device));
}
inline Result<void> require_fence_kind(BorrowedFd fd) {
    struct statx info;  // the kernel writes the fields asked for; nothing else is read
    if (statx_fd(fd.get(), STATX_TYPE | STATX_INO, &info) == 0 && (info.stx_mode & S_IFMT) == 0) {
        const FileIdentity anon = shared_anon_inode();
        if (makedev(info.stx_dev_major, info.stx_dev_minor) == anon.device && info.stx_ino == anon.inode) return {};
    }
    return fence_kind_error(fd);
}

// Every DMA-BUF lives in one pseudo file system per boot, so they all share its st_dev, and
// since Linux 5.3 a DMA-BUF's inode carries its size. Once one fd has proved to be a DMA-BUF
// by its file system magic, one statx tells both for the next (no two mounted file systems
// share a device number, and the kernel's DMA-BUF one is never unmounted).
inline std::atomic<dev_t>& learned_dma_buf_device() {
    static std::atomic<dev_t> device{device_unknown};
    return device;
}

// A DMA-BUF's size by lseek(SEEK_END), which works on every kernel (statx knows it only since
// 5.3). It returns the size without moving the file position (dma_buf_llseek sets none, and
// refuses SEEK_CUR), so there is nothing to put back. Only for a proven DMA-BUF.
inline Result<std::uint64_t> dma_buf_size(BorrowedFd fd) {
    const off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0) return make_sys_error(errno, "lseek(SEEK_END) of DMA-BUF fd {}", fd.get());
    return static_cast<std::uint64_t>(end);
}

// A DMA-BUF's size, or nullopt if `fd` is no DMA-BUF. One statx once a DMA-BUF has been seen;
// fstatfs too for the first one, asked only of an anonymous inode (no file type), never of a
// file whose statfs could block.
inline Result<std::optional<std::uint64_t>> dma_buf_size_if_dma_buf(BorrowedFd fd) {
    auto facts = file_facts(fd);
    if (!facts) return std::move(facts).error();
    const dev_t device = facts->identity.device;
    auto& known = learned_dma_buf_device();
    if (device == device_unknown || device != known.load(std::memory_order_relaxed)) {
        if (facts->type != 0) return std::optional<std::uint64_t>{};  // a typed file: no DMA-BUF
        auto magic = file_system_magic(fd);
        if (!magic) return std::move(magic).error();
        if (*magic != DMA_BUF_MAGIC) return std::optional<std::uint64_t>{};
        known.store(device, std::memory_order_relaxed);
    }
    if (facts->size > 0) return std::optional<std::uint64_t>{facts->size};
    auto size = dma_buf_size(fd);  // a kernel older than 5.3 leaves the inode's size at 0
    if (!size) return std::move(size).error();
    return std::optional<std::uint64_t>{*size};
}

// A regular file's size from statx, which (unlike lseek) leaves the shared file position alone.
inline Result<std::uint64_t> regular_file_size(BorrowedFd fd) {
    auto facts = file_facts(fd);
    if (!facts) return std::move(facts).error();
    if (auto regular = expect_regular(fd, *facts); !regular) return std::move(regular).error();
    return facts->size;
}

// What a peer's shared-memory fd is, for a refusal: "a regular file on device 254:0, no
// seals (F_GET_SEALS: EINVAL)", "file system magic 0x958458f6 (hugetlbfs), device 0:17,
// seals 0xd". The magic is asked only of a shmem or hugetlbfs file (F_GET_SEALS answered).
inline std::string describe_memory_fd(BorrowedFd fd, const FileFacts& facts) {
    const int seals = ::fcntl(fd.get(), F_GET_SEALS);
    if (seals < 0) {
        return fmt::format("mode 0{:o} on {}, no seals (F_GET_SEALS: errno {}: not a shmem or hugetlbfs file; "
                           "its file system is not asked, a statfs could block)",
                           facts.type, device_name(facts.identity.device), errno);
    }
    auto magic = file_system_magic(fd);
    const std::uint64_t found = magic ? *magic : 0;
    return fmt::format("file system magic 0x{:x}{} on {}, seals 0x{:x}", found,
                       found == HUGETLBFS_MAGIC ? " (hugetlbfs)"
                       : found == TMPFS_MAGIC   ? " (tmpfs, but not the kernel's memfd mount)"
                                                : "",
                       device_name(facts.identity.device), static_cast<unsigned>(seals));
}

// Ok with the memfd's size when `fd` is a memfd safe to map: a regular file on the kernel's
// internal shm mount (never a hugetlbfs memfd, whose owner can punch a page out under the
// reader, SIGBUS; nor a tmpfs file of a mount with a size limit, where a fault after a
// punched hole fails with SIGBUS when the mount is full) carrying every seal in `required`.
// Errc::rejected otherwise, saying what the fd is instead; `what` starts the message
// ("format table" gives "format table fd 7 is not a memfd ...").
inline Result<std::uint64_t> require_shm_memfd(BorrowedFd fd, unsigned required, std::string_view what) {
    auto facts = file_facts(fd);
    if (!facts) return std::move(facts).error();
    const dev_t shm = shm_mount_device();
    if (shm == device_unlearnable) {
        return make_error(Errc::rejected, "{} fd {}: this process could not create a memfd of its own to learn "
                          "the kernel's shm mount, so no peer memory is proven safe to map", what, fd.get());
    }
    if (facts->type != S_IFREG || facts->identity.device != shm) {
        return make_error(Errc::rejected, "{} fd {} is not a memfd of the kernel's shm mount ({}): {}", what,
                          fd.get(), device_name(shm), describe_memory_fd(fd, *facts));
    }
    auto seals = memfd_seals(fd);
    if (!seals) return std::move(seals).error();
    if ((*seals & required) != required) {
        return make_error(Errc::rejected, "{} fd {} is a memfd with seals 0x{:x}, missing 0x{:x}", what, fd.get(), *seals,
                          required & ~*seals);
    }
    return facts->size;
}

}  // namespace texshare::detail
