// Waiting for one fd to become readable, with a deadline. Private to texshare.
#pragma once

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare::detail {

using Clock = std::chrono::steady_clock;

// The deadline `timeout` from now. A timeout of 2^30 ms (12 days) or more is "forever"
// (milliseconds::max() is the usual way to say it): now + timeout would overflow.
inline Clock::time_point deadline_after(std::chrono::milliseconds timeout) {
    if (timeout >= std::chrono::milliseconds(1 << 30)) return Clock::time_point::max();
    return Clock::now() + timeout;
}

// True once `fd` is readable or hung up (both mean "read now and see"), false when the
// deadline passes first. EINTR restarts the wait with the time that is left.
inline Result<bool> wait_readable(BorrowedFd fd, Clock::time_point deadline) {
    while (true) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        const int timeout_ms = static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(left.count(), 0, 1 << 30));
        pollfd entry{fd.get(), POLLIN, 0};
        const int ready = ::poll(&entry, 1, timeout_ms);
        if (ready > 0) {
            if (entry.revents & POLLNVAL) {
                return make_error(Errc::invalid_argument, "poll: fd {} is not open", fd.get());
            }
            return true;
        }
        if (ready == 0) return false;
        if (errno != EINTR) return make_sys_error(errno, "poll of fd {}", fd.get());
    }
}

}  // namespace texshare::detail
