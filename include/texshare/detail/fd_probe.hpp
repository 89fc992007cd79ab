// What kind of file an fd is and how big it is, asked of the kernel. Private to texshare.
#pragma once

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <optional>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare::detail {

struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

// One fstat: who the file is (two fds of one file compare equal), its size and its type.
struct FileFacts {
    FileIdentity identity;
    std::uint64_t size = 0;
    mode_t type = 0;  // st_mode & S_IFMT
};

// The fstat syscall itself on x86_64: glibc's fstat() is newfstatat(fd, "", AT_EMPTY_PATH),
// which kernels before 6.x (Debian 12's 6.1) treat as a path lookup of an empty name: 7.9 us
// against 1.6 us in the VM lane's guest, where fstatfs takes 1.1. Only where the kernel's
// struct stat is glibc's (32-bit ABIs have an older, smaller one behind SYS_fstat).
inline int fstat_fd(int fd, struct stat* info) {
#if defined(__x86_64__) && defined(__LP64__) && defined(SYS_fstat)
    return static_cast<int>(::syscall(SYS_fstat, fd, info));
#else
    return ::fstat(fd, info);
#endif
}

inline Result<FileFacts> file_facts(BorrowedFd fd) {
    struct stat info {};
    if (fstat_fd(fd.get(), &info) != 0) return make_sys_error(errno, "fstat of fd {}", fd.get());
    return FileFacts{{info.st_dev, info.st_ino}, static_cast<std::uint64_t>(info.st_size), info.st_mode & S_IFMT};
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

inline Result<bool> is_dma_buf(BorrowedFd fd) {
    struct statfs info {};
    if (::fstatfs(fd.get(), &info) != 0) return make_sys_error(errno, "fstatfs of fd {}", fd.get());
    return static_cast<std::uint64_t>(info.f_type) == DMA_BUF_MAGIC;
}

// The seals of a memfd; EINVAL (not a file that supports sealing) comes back as an error.
inline Result<unsigned> memfd_seals(BorrowedFd fd) {
    const int seals = ::fcntl(fd.get(), F_GET_SEALS);
    if (seals < 0) return make_sys_error(errno, "fcntl(F_GET_SEALS) of fd {}", fd.get());
    return static_cast<unsigned>(seals);
}

// Ok if `fd` is a memfd carrying every seal in `required`; otherwise an error whose message
// says what it has instead (its seals, or why it has none), for the caller's refusal.
inline Result<void> require_seals(BorrowedFd fd, unsigned required) {
    auto seals = memfd_seals(fd);
    if (!seals) return std::move(seals).error();
    if ((*seals & required) != required) return make_error(Errc::rejected, "seals 0x{:x}", *seals);
    return {};
}

// A DMA-BUF's size by lseek(SEEK_END), which works on every kernel (fstat knows it only since
// 5.3). It returns the size without moving the file position (dma_buf_llseek sets none, and
// refuses SEEK_CUR), so there is nothing to put back.
inline Result<std::uint64_t> dma_buf_size(BorrowedFd fd) {
    const off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0) return make_sys_error(errno, "lseek(SEEK_END) of DMA-BUF fd {}", fd.get());
    return static_cast<std::uint64_t>(end);
}

// Every DMA-BUF lives in one pseudo file system per boot, so they all share its st_dev, and
// since Linux 5.3 a DMA-BUF's inode carries its size. Once one fd has proved to be a DMA-BUF
// by its file system magic, one fstat tells both for the next (no two mounted file systems
// share a device number, and the kernel's DMA-BUF one is never unmounted), where fstatfs plus
// lseek take two syscalls per plane. 0 means not learned yet: anonymous device numbers start
// at 1.
inline std::atomic<dev_t>& learned_dma_buf_device() {
    static std::atomic<dev_t> device{0};
    return device;
}

// A DMA-BUF's size, or nullopt if `fd` is no DMA-BUF. One fstat once a DMA-BUF has been seen;
// fstatfs too for the first one, and for every fd that is not one.
inline Result<std::optional<std::uint64_t>> dma_buf_size_if_dma_buf(BorrowedFd fd) {
    auto facts = file_facts(fd);
    if (!facts) return std::move(facts).error();
    const dev_t device = facts->identity.device;
    auto& known = learned_dma_buf_device();
    if (device == 0 || device != known.load(std::memory_order_relaxed)) {
        auto dma_buf = is_dma_buf(fd);
        if (!dma_buf) return std::move(dma_buf).error();
        if (!*dma_buf) return std::optional<std::uint64_t>{};
        known.store(device, std::memory_order_relaxed);
    }
    if (facts->size > 0) return std::optional<std::uint64_t>{facts->size};
    auto size = dma_buf_size(fd);  // a kernel older than 5.3 leaves the inode's size at 0
    if (!size) return std::move(size).error();
    return std::optional<std::uint64_t>{*size};
}

// A regular file's size from fstat, which (unlike lseek) leaves the shared file position alone.
inline Result<std::uint64_t> regular_file_size(BorrowedFd fd) {
    auto facts = file_facts(fd);
    if (!facts) return std::move(facts).error();
    if (auto regular = expect_regular(fd, *facts); !regular) return std::move(regular).error();
    return facts->size;
}

}  // namespace texshare::detail
