// What kind of file an fd is and how big it is, asked of the kernel. Private to texshare.
#pragma once

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare::detail {

struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

inline Result<FileIdentity> file_identity(BorrowedFd fd) {
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) return make_sys_error(errno, "fstat of fd {}", fd.get());
    return FileIdentity{info.st_dev, info.st_ino};
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

// A DMA-BUF reports its size only through lseek(SEEK_END) (fstat says 0). That lseek
// returns the size without moving the file position (dma_buf_llseek sets none, and refuses
// SEEK_CUR), so there is nothing to put back: a second lseek was a syscall per plane on the
// receive path for nothing.
inline Result<std::uint64_t> dma_buf_size(BorrowedFd fd) {
    const off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0) return make_sys_error(errno, "lseek(SEEK_END) of DMA-BUF fd {}", fd.get());
    return static_cast<std::uint64_t>(end);
}

// A regular file's size from fstat, which (unlike lseek) leaves the shared file position alone.
inline Result<std::uint64_t> regular_file_size(BorrowedFd fd) {
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) return make_sys_error(errno, "fstat of fd {}", fd.get());
    if (!S_ISREG(info.st_mode)) {
        return make_error(Errc::rejected, "fd {} is not a regular file (mode 0{:o})", fd.get(),
                          info.st_mode & S_IFMT);
    }
    return static_cast<std::uint64_t>(info.st_size);
}

}  // namespace texshare::detail
