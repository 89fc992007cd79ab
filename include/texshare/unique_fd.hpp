// UniqueFd owns a file descriptor; BorrowedFd names one it does not own.
//
// Use UniqueFd for every fd texshare hands you or takes from you: it closes exactly once,
// and "no fd" is its empty state (-1), never a number like 0 that is also a real fd. Use
// BorrowedFd to pass an fd to a function that only looks at it or sends it; it never closes.
// Neither converts to or from int implicitly, so ownership is always visible at call sites.
//
// IO-safety check: with TEXSHARE_FD_SAFETY_CHECKS on (the default when NDEBUG is not
// defined), a UniqueFd whose close() fails with EBADF aborts with a message naming the fd
// number. That is the check Rust's OwnedFd makes, and it has the same reach: it fires when
// the number is not open at the moment this owner closes it, i.e. someone closed it behind
// this owner's back and nothing has reused the number since. If the number WAS reused in
// between (another open() got it), the wrong close silently closed the new file instead,
// and the abort comes later, from the NEW owner of that number when it closes, so the
// message names the later owner's close, not the culprit. Either way a double close
// crashes a test instead of corrupting an unrelated fd in production; to find the culprit,
// look for the earlier close of the same number (strace -e close).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "texshare/result.hpp"

#ifndef TEXSHARE_FD_SAFETY_CHECKS
#ifdef NDEBUG
#define TEXSHARE_FD_SAFETY_CHECKS 0
#else
#define TEXSHARE_FD_SAFETY_CHECKS 1
#endif
#endif

namespace texshare {

class BorrowedFd {
public:
    constexpr BorrowedFd() noexcept = default;
    // Any negative number is "no fd", so a failed call's -1 can be passed through unchanged.
    constexpr explicit BorrowedFd(int fd) noexcept : fd_(fd < 0 ? -1 : fd) {}

    constexpr int get() const noexcept { return fd_; }
    constexpr bool valid() const noexcept { return fd_ >= 0; }
    constexpr explicit operator bool() const noexcept { return valid(); }
    friend constexpr bool operator==(BorrowedFd, BorrowedFd) noexcept = default;

private:
    int fd_ = -1;
};

// Whether fd names an open descriptor in this process right now.
inline bool is_open(BorrowedFd fd) noexcept {
    return fd.valid() && ::fcntl(fd.get(), F_GETFD) != -1;
}

namespace detail {
[[noreturn]] inline void report_closed_fd(int fd) noexcept {
    std::fprintf(stderr,
                 "texshare: IO safety violation: UniqueFd closed fd %d, which was not open "
                 "(it was closed elsewhere: a double close or a borrowed fd that was closed)\n",
                 fd);
    std::abort();
}

inline void close_owned(int fd) noexcept {
    // Linux releases the fd even when close fails with EINTR, so retrying could close an
    // fd another thread has just been given. Close once, ignore the result.
    if (::close(fd) == -1 && errno == EBADF && TEXSHARE_FD_SAFETY_CHECKS) {
        report_closed_fd(fd);
    }
}
}  // namespace detail

class UniqueFd {
public:
    constexpr UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd < 0 ? -1 : fd) {}
    ~UniqueFd() {
        if (fd_ >= 0) close_keeping_errno();
    }

    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }
    BorrowedFd borrow() const noexcept { return BorrowedFd(fd_); }

    // Gives up ownership; the caller must close the returned fd (or it leaks).
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    // Closes the owned fd (if any) and takes new_fd. errno is preserved so that
    // `fd.reset(); return make_sys_error(errno, ...)` reports the original failure.
    void reset(int new_fd = -1) noexcept {
        if (new_fd < 0) new_fd = -1;
        if (TEXSHARE_FD_SAFETY_CHECKS && new_fd != -1 && new_fd == fd_) {
            std::fprintf(stderr, "texshare: UniqueFd::reset(%d) given the fd it already owns\n", new_fd);
            std::abort();
        }
        // Resetting an empty owner (most fd slots of most messages) touches nothing, errno included.
        if (fd_ >= 0) close_keeping_errno();
        fd_ = new_fd;
    }

    // A new owner of the same open file, close-on-exec, numbered 3 or above so it never
    // lands on stdin/stdout/stderr by accident when those happen to be closed.
    Result<UniqueFd> dup() const { return dup(borrow()); }
    static Result<UniqueFd> dup(BorrowedFd fd) {
        if (!fd.valid()) return make_error(Errc::invalid_argument, "dup: no fd to duplicate");
        const int copy = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
        if (copy < 0) return make_sys_error(errno, "dup: fcntl(F_DUPFD_CLOEXEC) of fd {}", fd.get());
        return UniqueFd(copy);
    }

private:
    void close_keeping_errno() noexcept {
        const int saved_errno = errno;
        detail::close_owned(fd_);
        errno = saved_errno;
    }

    int fd_ = -1;
};

}  // namespace texshare
