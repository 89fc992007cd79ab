#include "pacing.hpp"

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace host_renderer {

using texshare::make_sys_error;
using texshare::Result;

std::int64_t monotonic_ns() noexcept {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

Result<FrameClock> FrameClock::start(std::uint32_t rate_hz) {
    FrameClock clock;
    if (rate_hz == 0) return clock;
    clock.timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!clock.timer_) return make_sys_error(errno, "timerfd_create for the {} Hz frame clock", rate_hz);
    clock.interval_ns_ = 1'000'000'000 / rate_hz;
    const timespec interval{static_cast<time_t>(clock.interval_ns_ / 1'000'000'000),
                            static_cast<long>(clock.interval_ns_ % 1'000'000'000)};
    const itimerspec spec{interval, interval};  // first tick one interval from now, then periodic
    if (::timerfd_settime(clock.timer_.get(), 0, &spec, nullptr) != 0) {
        return make_sys_error(errno, "timerfd_settime ({} ns period)", clock.interval_ns_);
    }
    return clock;
}

Result<std::uint64_t> FrameClock::take_ticks() {
    std::uint64_t ticks = 0;
    const ssize_t got = ::read(timer_.get(), &ticks, sizeof ticks);  // timerfd(2): an 8-byte count
    if (got < 0 && errno == EAGAIN) return std::uint64_t{0};
    if (got != static_cast<ssize_t>(sizeof ticks)) return make_sys_error(errno, "read of the frame clock's timerfd");
    return ticks;
}

std::int64_t percentile(std::vector<std::int64_t> values, unsigned p) {
    if (values.empty()) return 0;
    // Nearest rank: the smallest value with at least p % of the values at or below it.
    const std::size_t rank = (values.size() * std::min(p, 100U) + 99) / 100;
    const std::size_t index = rank == 0 ? 0 : rank - 1;
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
    return values[index];
}

}  // namespace host_renderer
