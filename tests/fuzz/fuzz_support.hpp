// Shared by the fuzz targets: turning fuzzer bytes into fds and checking none leaked.
//
// Each target is a plain LLVMFuzzerTestOneInput: built with clang -fsanitize=fuzzer it is a
// libFuzzer binary; built with replay_main.cpp it replays a corpus directory (the seeds and
// every crash found so far, kept as regression cases) with any compiler.
#pragma once

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "texshare/detail/fd_closer.hpp"

namespace texshare::fuzz {

// Reads fields off the input; past the end everything reads as zero.
class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    template <typename T>
    T take() {
        T value{};
        const std::size_t n = std::min(sizeof(T), size_ - offset_);
        std::memcpy(&value, data_ + offset_, n);
        offset_ += n;
        return value;
    }
    std::span<const std::uint8_t> rest() const { return {data_ + offset_, size_ - offset_}; }
    bool empty() const { return offset_ >= size_; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t offset_ = 0;
};

// An fd chosen by the input: a sealed memfd of a chosen size, an unsealed one, a pipe, or
// /dev/null (kind 7: a character device, what an opaque_fd image carries).
inline int make_fd(std::uint8_t kind, std::uint32_t size) {
    size %= 1 << 20;
    if (kind % 8 == 4) return ::eventfd(0, EFD_CLOEXEC);               // a sync_file's kind (the anonymous inode)
    if (kind % 8 == 5 || kind % 8 == 7) {
        return ::open("/dev/null", O_RDWR | O_CLOEXEC);  // a character device: an OPAQUE_FD semaphore's or opaque_fd image's kind
    }
    if (kind % 4 == 3) {
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC) != 0) return -1;
        ::close(ends[1]);
        return ends[0];
    }
    const int fd = ::memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    (void)::ftruncate(fd, size);
    if (kind % 4 != 2) (void)::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    return fd;
}

// The lowest free fd when a run starts must be free again when it ends: fds are handed out
// lowest first, so any fd the code under test leaked would sit there.
class LeakCheck {
public:
    LeakCheck() : probe_(::fcntl(0, F_DUPFD_CLOEXEC, 0)) { ::close(probe_); }
    ~LeakCheck() {
        // Refused fds are closed on texshare's closer thread (detail/fd_closer.hpp): wait for it.
        if (!texshare::detail::drain_peer_fd_closes(std::chrono::seconds(10))) {
            std::fprintf(stderr, "texshare's closer thread did not drain\n");
            std::abort();
        }
        if (::fcntl(probe_, F_GETFD) != -1) {
            std::fprintf(stderr, "fd %d leaked by this input\n", probe_);
            std::abort();
        }
    }

private:
    int probe_;
};

}  // namespace texshare::fuzz
