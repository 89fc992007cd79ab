// Section 4, scale: a host with 64 renderer children, each its own process with its own
// FrameChannel and a 3-image swapchain it allocated (64x64 memfds, never written: the
// protocol's cost, not rendering's). The host is a FrameReceiver per child on one epoll
// set, releasing each newest frame at once. Reported: frames per second summed over all
// children, CPU time per frame (host + every child), the host's resident memory per
// channel (its growth from before the first child to all 64 set up, divided by 64) and a
// renderer child's resident and proportional memory. Feedback off (on by default), as
// before it existed: the host never says presented(), so each release would bring a
// `discarded` with it.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "children.hpp"
#include "pipeline.hpp"
#include "sections.hpp"
#include "texshare/memfd_allocator.hpp"

namespace bench {

using namespace texshare;

namespace {
constexpr std::size_t children = 64;

struct Renderer {
    ChildProcess process;
    UniqueFd control;  // "go" goes out, the report comes back
    std::optional<FrameReceiver> receiver;
    bool open = true;
};
}  // namespace

void measure_many_children(Table& table, double scale) {
    const std::size_t host_before = resident_kib();
    std::vector<Renderer> renderers(children);
    UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    const std::string seconds = fmt::format("{}", 2.0 * scale);
    for (std::size_t i = 0; i < children; ++i) {
        auto pair = must(FrameChannel::create_pair(), "FrameChannel::create_pair");
        auto [control, child_control] = socket_pair(SOCK_SEQPACKET);
        std::vector<UniqueFd> fds;
        fds.push_back(pair.second.take_socket());
        fds.push_back(std::move(child_control));
        renderers[i].process = spawn_child("renderer", std::move(fds), {seconds});
        renderers[i].control = std::move(control);
        renderers[i].receiver =
            must(FrameReceiver::create(std::move(pair.first), {.feedback = false}), "FrameReceiver::create");
        epoll_event event{EPOLLIN, {.u64 = i}};
        if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, renderers[i].receiver->native_handle().get(), &event) != 0) {
            fail("epoll_ctl");
        }
    }
    for (Renderer& r : renderers) {  // every child's swapchain shared and validated
        while (r.receiver->image_count() < 3) {
            pollfd readable{r.receiver->native_handle().get(), POLLIN, 0};
            (void)::poll(&readable, 1, 10000);
            (void)must(r.receiver->dispatch(), "dispatch of a renderer's images");
        }
    }
    const std::size_t host_after = resident_kib();
    std::vector<double> child_rss, child_pss;
    for (Renderer& r : renderers) {
        child_rss.push_back(static_cast<double>(resident_kib(r.process.pid())));
        child_pss.push_back(static_cast<double>(proportional_kib(r.process.pid())));
    }

    const double cpu_before = cpu_seconds();
    const auto start = Clock::now();
    for (Renderer& r : renderers) {
        const char go = 1;
        if (::write(r.control.get(), &go, 1) != 1) fail("sending go to a renderer");
    }
    std::size_t open = children;
    std::array<epoll_event, 16> events{};
    while (open > 0) {
        const int ready = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), -1);
        if (ready < 0 && errno != EINTR) fail("epoll_wait");
        for (int e = 0; e < ready; ++e) {
            Renderer& r = renderers[events[static_cast<std::size_t>(e)].data.u64];
            if (!r.open || consume_pending(*r.receiver)) continue;
            r.open = false;  // closed: epoll forgets the socket when it is closed
            --open;
        }
    }
    const double wall = seconds_since(start);
    double cpu = cpu_seconds() - cpu_before;
    std::uint64_t presented = 0, received = 0;
    for (Renderer& r : renderers) {
        const ChildReport report = receive_report(r.control.borrow());
        presented += report.frames;
        cpu += report.cpu_seconds;
        received += r.receiver->received_count();
        expect_clean_exit(r.process, "renderer");
    }
    if (presented != received) fail(fmt::format("the host saw {} of {} frames", received, presented));
    const double frames = static_cast<double>(received);
    table.rows.push_back({"64 renderer children: frames per second, all together", fmt::format("{:.0f} frames/s", frames / wall), {}, {}, {}});
    table.rows.push_back({"64 renderer children: CPU time per frame (host + children)", format_seconds(cpu / frames), {}, {}, {}});
    table.rows.push_back({"host's resident memory per channel (FrameReceiver, socket, child handle)",
                          fmt::format("{:.1f} KiB", static_cast<double>(std::max(host_after, host_before) - host_before) / children),
                          {}, {}, {}});
    table.rows.push_back({"a renderer child's resident memory (RSS / PSS)",
                          fmt::format("{:.0f} / {:.0f} KiB", median(child_rss), median(child_pss)), {}, {}, {}});
}

// A renderer: shares its swapchain, waits for go, presents for the given seconds, reports.
int renderer_child(const ChildArgs& args) {
    if (args.size() != 1) fail("renderer child: expects the seconds to run");
    auto sender = must(
        FrameSender::create(must(FrameChannel::adopt(inherited_fd(0)), "adopt"), {.feedback = false}),
        "FrameSender::create");
    const UniqueFd control = inherited_fd(1);
    for (int i = 0; i < 3; ++i) {
        (void)must(sender.add_image(must(MemfdAllocator().allocate(64, 64, DRM_FORMAT_ARGB8888), "allocate")), "add_image");
    }
    char go = 0;
    if (::read(control.get(), &go, 1) != 1) fail("renderer: no go");
    const double cpu_before = cpu_seconds();
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::stod(args[0])));
    const std::uint64_t presented = produce_until(sender, deadline);
    const double cpu = cpu_seconds() - cpu_before;
    sender.close();
    send_report(control.borrow(), {presented, cpu});
    return 0;
}

}  // namespace bench
