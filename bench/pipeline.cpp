#include "pipeline.hpp"

#include <unistd.h>

#include <cerrno>

namespace bench {

using namespace texshare;

std::uint64_t produce_until(FrameSender& sender, Clock::time_point deadline) {
    std::uint64_t presented = 0;
    while (Clock::now() < deadline) {
        auto free_image = sender.acquire_free_image();
        if (!free_image && free_image.error().code == Errc::would_block) {
            free_image = sender.wait_for_free_image(std::chrono::hours(1));
        }
        (void)must(sender.present(must(std::move(free_image), "a free image").id), "present");
        ++presented;
    }
    return presented;
}

bool consume_pending(FrameReceiver& receiver) {
    auto handled = receiver.dispatch();
    if (!handled && handled.error().code == Errc::peer_closed) return false;
    (void)must(std::move(handled), "dispatch");
    if (auto frame = receiver.current(); frame && !frame->producer_gone) {
        must(receiver.release(frame->image_id), "release");
    }
    return true;
}

void send_report(BorrowedFd socket, const ChildReport& report) {
    if (::write(socket.get(), &report, sizeof report) != static_cast<ssize_t>(sizeof report)) {
        fail(fmt::format("sending a child's report: errno {}", errno));
    }
}

ChildReport receive_report(BorrowedFd socket) {
    ChildReport report;
    if (::read(socket.get(), &report, sizeof report) != static_cast<ssize_t>(sizeof report)) {
        fail(fmt::format("a child sent no report: errno {}", errno));
    }
    return report;
}

}  // namespace bench
