// Frames as fast as the protocol carries them (section 4): a producer that presents
// whenever an image is free and a consumer that gives each newest frame back at once, so
// with a 3-image swapchain up to three frames are in flight (pipelined, not ping-pong).
// Also what a child reports to its parent about its share of the work.
#pragma once

#include <cstdint>

#include "harness.hpp"
#include "texshare/frame/protocol.hpp"

namespace bench {

// Presents free images until `deadline`, waiting (dispatching releases) only when none is
// free; returns how many it presented.
std::uint64_t produce_until(texshare::FrameSender& sender, Clock::time_point deadline);

// Handles everything pending and releases the newest frame at once (a newer present
// already released the ones before it). false once the producer is gone.
bool consume_pending(texshare::FrameReceiver& receiver);

// A child's numbers, sent once on its report socket (SOCK_SEQPACKET).
struct ChildReport {
    std::uint64_t frames = 0;
    double cpu_seconds = 0;  // while it produced or consumed, startup excluded
};
void send_report(texshare::BorrowedFd socket, const ChildReport& report);
ChildReport receive_report(texshare::BorrowedFd socket);

}  // namespace bench
