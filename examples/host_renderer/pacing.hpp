// The host's side of pacing: a timerfd standing in for the screen's vsync, which drives
// begin_frame, and the bookkeeping that turns each shown frame into a latency (begin_frame
// sent -> frame presented) and a damaged share. A real compositor has its vsync from KMS
// (the page-flip event) and does the same with it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace host_renderer {

// CLOCK_MONOTONIC now, in ns: the clock begin_frame and presented times are on.
std::int64_t monotonic_ns() noexcept;

// A periodic CLOCK_MONOTONIC timerfd at rate_hz (the "vsync"); rate 0: none (fd() empty,
// which poll ignores).
class FrameClock {
public:
    static texshare::Result<FrameClock> start(std::uint32_t rate_hz);

    texshare::BorrowedFd fd() const noexcept { return timer_.borrow(); }
    std::uint64_t interval_ns() const noexcept { return interval_ns_; }
    // After poll said fd() is readable: the ticks since the last call (> 1 when the host fell
    // behind; it still sends one begin_frame, for the next vsync). 0 if none was due.
    texshare::Result<std::uint64_t> take_ticks();

private:
    texshare::UniqueFd timer_;
    std::uint64_t interval_ns_ = 0;
};

// When each recent begin_frame went out, by sequence, so that the frame answering it
// (Frame::metadata.begin_frame_sequence) gives the latency. Sequences restart at 1 with
// every renderer (each session): start a new log for each.
class BeginFrameLog {
public:
    void sent(std::uint64_t sequence, std::int64_t time_ns) noexcept {
        entries_[sequence % entries_.size()] = {sequence, time_ns};
    }
    // presented_ns minus when `sequence` went out; nullopt for 0 (a present that answered no
    // begin_frame) or one too old to be remembered.
    std::optional<std::int64_t> latency(std::uint64_t sequence, std::int64_t presented_ns) const noexcept {
        const Entry& entry = entries_[sequence % entries_.size()];
        if (sequence == 0 || entry.sequence != sequence) return std::nullopt;
        return presented_ns - entry.time_ns;
    }

private:
    struct Entry {
        std::uint64_t sequence = 0;
        std::int64_t time_ns = 0;
    };
    std::array<Entry, 64> entries_{};
};

// The p-th percentile (0..100, nearest rank) of `values`; 0 for none.
std::int64_t percentile(std::vector<std::int64_t> values, unsigned p);

}  // namespace host_renderer
