// Section 4, one channel: frames per second through one FrameSender -> FrameReceiver pair
// across two processes with a 3-image swapchain, pipelined (the producer presents whenever
// an image is free, the consumer gives each newest frame back at once), and the CPU time
// both processes spend per frame. No pixels are written: this is the protocol's cost.
// Feedback off (on by default), as before it existed: this consumer never says presented(),
// so each release would bring a `discarded` with it.
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "children.hpp"
#include "pipeline.hpp"
#include "sections.hpp"
#include "texshare/memfd_allocator.hpp"

namespace bench {

using namespace texshare;

namespace {
struct Sample {
    double frames_per_second = 0;
    double cpu_per_frame = 0;
};

Sample run_once(double seconds) {
    auto pair = must(FrameChannel::create_pair(), "FrameChannel::create_pair");
    auto [report, child_report] = socket_pair(SOCK_SEQPACKET);
    std::vector<UniqueFd> fds;
    fds.push_back(pair.second.take_socket());
    fds.push_back(std::move(child_report));
    ChildProcess child = spawn_child("consumer", std::move(fds));
    auto sender = must(FrameSender::create(std::move(pair.first), {.feedback = false}), "FrameSender::create");
    for (int i = 0; i < 3; ++i) {
        (void)must(sender.add_image(must(MemfdAllocator().allocate(256, 256, DRM_FORMAT_ARGB8888), "allocate")),
                   "add_image");
    }
    const double cpu_before = cpu_seconds();
    const auto start = Clock::now();
    const std::uint64_t frames = produce_until(sender, start + std::chrono::duration_cast<Clock::duration>(
                                                                  std::chrono::duration<double>(seconds)));
    const double wall = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_before;
    sender.close();
    const ChildReport consumer = receive_report(report.borrow());
    expect_clean_exit(child, "consumer");
    if (consumer.frames != frames) fail(fmt::format("the consumer saw {} of {} frames", consumer.frames, frames));
    return {static_cast<double>(frames) / wall, (cpu + consumer.cpu_seconds) / static_cast<double>(frames)};
}
}  // namespace

void measure_one_channel(Table& table, double scale) {
    std::vector<double> rates, cpu;
    for (int repetition = 0; repetition < 3; ++repetition) {
        const Sample sample = run_once(1.0 * scale);
        rates.push_back(sample.frames_per_second);
        cpu.push_back(sample.cpu_per_frame);
    }
    table.rows.push_back({"one channel, 3-image swapchain, pipelined: frames per second",
                          fmt::format("{:.0f} frames/s", median(rates)), {}, {}, {}});
    table.rows.push_back({"one channel: CPU time per frame (producer + consumer)", format_seconds(median(cpu)), {}, {}, {}});
}

// The consumer: handles whatever arrived and gives the newest frame back, until bye.
int consumer_child(const ChildArgs&) {
    auto receiver = must(
        FrameReceiver::create(must(FrameChannel::adopt(inherited_fd(0)), "adopt"), {.feedback = false}),
        "FrameReceiver::create");
    const UniqueFd report = inherited_fd(1);
    const double cpu_before = cpu_seconds();
    do {
        pollfd readable{receiver.native_handle().get(), POLLIN, 0};
        if (::poll(&readable, 1, -1) < 0 && errno != EINTR) fail("poll");
    } while (consume_pending(receiver));
    send_report(report.borrow(), {receiver.received_count(), cpu_seconds() - cpu_before});
    return 0;
}

}  // namespace bench
