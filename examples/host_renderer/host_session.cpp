// One renderer's life as the host sees it: spawn it on a fresh channel, pace it with
// begin_frame from the frame clock, show its frames as they come (a wait on the channel, the
// renderer's pidfd and the clock: the pidfd tells its death at once, the channel only when
// every copy of its end is closed), report each shown frame as presented, resize or kill it
// on cue, and account for every present it made.
#include <poll.h>
#include <signal.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <span>

#include <fmt/format.h>

#include "host.hpp"
#include "pacing.hpp"
#include "pattern.hpp"
#include "tally.hpp"
#include "texshare/child_process.hpp"

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;
using Clock = std::chrono::steady_clock;

// Waits for the renderer's writes, reads the frame and checks every pixel against the
// picture it must be; the copy becomes the host's screen. A live renderer is then told the
// frame was presented, which gives its latency from the begin_frame it answered.
Result<void> show(Host& host, const texshare::FrameReceiver::Frame& frame, const BeginFrameLog& begin_frames) {
    const texshare::DmaBufImage& image = *frame.image;
    texshare::UniqueFd fence = host.receiver->take_acquire_fence();
    host.report.acquire_fences += fence ? 1 : 0;
    if (auto waited = host.reader.wait_for_renderer(std::move(fence), image); !waited) return waited;
    auto rgba = host.reader.read_rgba(frame.image_id, image);
    if (!rgba) return std::move(rgba).error();
    constexpr ByteOrder packed_rgba{0, 1, 2, 3};
    const std::uint64_t mismatches =
        Pattern(frame.frame_number, image.width(), image.height())
            .count_mismatches(std::as_bytes(std::span(*rgba)), image.width() * 4, packed_rgba);
    Report& report = host.report;
    ++report.shown;
    report.verified += mismatches == 0 ? 1 : 0;
    report.mismatched_pixels += mismatches;
    report.screen = std::move(*rgba);
    report.screen_size = {image.width(), image.height()};
    report.screen_frame = frame.frame_number;
    report.damaged_pixels += texshare::damaged_pixel_count(frame.metadata, image.width(), image.height());
    report.shown_pixels += std::uint64_t{image.width()} * image.height();
    if (frame.producer_gone) return {};  // a dead renderer's kept frame: nobody to tell
    const std::int64_t shown_at = monotonic_ns();
    const std::uint32_t how = host.reader.samples_in_place(frame.image_id) ? texshare::presented_flag_zero_copy
                                                                             : texshare::presented_flag_copied;
    if (auto told = host.receiver->presented(shown_at, how); !told) {
        return told.error().code == Errc::peer_closed ? Result<void>() : told;  // gone: nothing was reported
    }
    if (const auto latency = begin_frames.latency(frame.metadata.begin_frame_sequence, shown_at)) {
        report.latencies_ns.push_back(*latency);
    }
    return {};
}

// What woke the host: the renderer (a message, its channel closed, its exit) or the clock.
struct Wake {
    bool channel = false;
    bool exited = false;
    bool tick = false;
};

// ChildProcess::wait_for_event() with the frame clock beside the channel and the pidfd:
// until one is readable, or Errc::timed_out at `deadline` (a renderer silent that long).
Result<Wake> wait(const texshare::ChildProcess& child, texshare::BorrowedFd channel, const FrameClock& clock,
                  Clock::time_point deadline) {
    while (true) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return make_error(Errc::timed_out, "the renderer sent nothing for 10 s");
        // An empty clock fd is -1, which poll skips.
        std::array<pollfd, 3> entries{{{channel.get(), POLLIN, 0}, {child.pidfd().get(), POLLIN, 0},
                                       {clock.fd().get(), POLLIN, 0}}};
        const int ready = ::poll(entries.data(), entries.size(), static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return texshare::make_sys_error(errno, "poll of the channel, pidfd and frame clock");
        if (ready == 0) continue;
        return Wake{entries[0].revents != 0, entries[1].revents != 0, entries[2].revents != 0};
    }
}

// A tick of the frame clock: begin_frame for the next vsync, once the renderer's hello said
// it wants pacing (a renderer gone meanwhile is the channel's news, not the clock's).
Result<void> tick(Host& host, FrameClock& clock, BeginFrameLog& begin_frames) {
    auto ticks = clock.take_ticks();
    if (!ticks) return std::move(ticks).error();
    if (*ticks == 0 || !host.receiver->producer_paced()) return {};
    const std::int64_t now = monotonic_ns();
    auto sequence =
        host.receiver->begin_frame(now + static_cast<std::int64_t>(clock.interval_ns()), clock.interval_ns());
    if (!sequence) return sequence.error().code == Errc::peer_closed ? Result<void>() : std::move(sequence).error();
    begin_frames.sent(*sequence, now);
    ++host.report.begin_frames;
    return {};
}

// The host's window changed size: new images for the renderer, the old ones retired. The
// renderer draws at the size of whatever image it gets next.
Result<void> resize(Host& host) {
    auto images = host.allocator.allocate(host.options.resize_to);
    if (!images) return std::move(images).error();
    for (const std::uint64_t id : host.ids) {
        if (auto retired = host.receiver->retire(id); !retired) return retired;
        ++host.report.images_retired;
    }
    if (auto added = add_swapchain(host, std::move(*images)); !added) return added;
    host.report.resized = true;
    host.report.events.push_back(
        fmt::format("resized after {} presents: retired 3 images of {}x{}, added 3 of {}x{}", host.seen(),
                    host.options.size.width, host.options.size.height, host.options.resize_to.width,
                    host.options.resize_to.height));
    return {};
}

struct Kill {
    Clock::time_point at;
    std::uint64_t seen = 0;  // presents received when the signal went out
    Clock::time_point seen_gone;
    const char* seen_by = "";  // what told the host: the pidfd or the channel
};

// Until the renderer is gone: show the newest frame after each dispatch and carry out the
// plan. Gone is its bye, its end of the channel closed (every copy of it), or its exit,
// which its pidfd reports at once even while a process it forked still holds its end: the
// host reads what it sent before, then closes its side (a grandchild's copy is not a
// renderer). Returns the kill if this renderer was the one killed.
Result<std::optional<Kill>> serve(Host& host, texshare::ChildProcess& child) {
    std::optional<Kill> kill;
    std::uint64_t shown_frame = 0;  // frame numbers start at 1 with every renderer
    auto clock = FrameClock::start(host.options.rate_hz);
    if (!clock) return std::move(clock).error();
    BeginFrameLog begin_frames;  // sequences start at 1 with every renderer too
    auto heard = Clock::now();
    while (true) {
        auto ready = wait(child, host.receiver->native_handle(), *clock, heard + std::chrono::seconds(10));
        if (!ready) return std::move(ready).error();  // timed_out: a stuck renderer (the caller kills it)
        if (ready->tick) {
            if (auto ticked = tick(host, *clock, begin_frames); !ticked) return std::move(ticked).error();
        }
        if (!ready->channel && !ready->exited) continue;
        heard = Clock::now();
        auto handled = host.receiver->dispatch();  // its messages, its last ones too
        const bool closed = !handled && handled.error().code == Errc::peer_closed;
        if (!handled && !closed) return std::move(handled).error();  // a broken protocol: the caller kills it
        const bool gone = closed || ready->exited;
        if (gone && !closed) host.receiver->close();  // it exited; whoever holds its end is not heard
        if (gone && kill) {
            kill->seen_gone = Clock::now();
            kill->seen_by = ready->exited ? "its pidfd" : "the channel";
        }
        // Presents that arrived together leave only the newest current (the others were
        // released unseen, as a compositor drops frames it has no vsync for). A dead
        // renderer's last frame stays current (keep_last_frame): it is shown like any other.
        auto frame = host.receiver->current();
        if (frame && frame->frame_number > shown_frame && (gone || !frame->producer_gone)) {
            if (auto shown = show(host, *frame, begin_frames); !shown) return std::move(shown).error();
            shown_frame = frame->frame_number;
        }
        if (gone) return kill;
        const Options& plan = host.options;
        if (!host.report.resized && plan.resize_at != 0 && host.seen() >= plan.resize_at) {
            if (auto resized = resize(host); !resized) return std::move(resized).error();
        }
        if (!host.report.killed && plan.kill_at != 0 && host.seen() >= plan.kill_at) {
            if (auto signalled = child.signal(SIGKILL); !signalled) return std::move(signalled).error();
            host.report.killed = true;
            kill = Kill{Clock::now(), host.seen(), {}};
        }
    }
}

// A fresh channel for the next renderer: the first one gets the receiver and the swapchain,
// later ones resume it (the host's images are shared again, all free but a kept frame).
Result<texshare::FrameChannel> connect(Host& host, SwapchainImages& first_images) {
    auto pair = texshare::FrameChannel::create_pair();
    if (!pair) return std::move(pair).error();
    if (host.receiver) {
        if (auto resumed = host.receiver->resume(std::move(pair->first)); !resumed)
            return std::move(resumed).error();
        return std::move(pair->second);
    }
    auto receiver = texshare::FrameReceiver::create(std::move(pair->first), {.keep_last_frame = true});
    if (!receiver) return std::move(receiver).error();
    host.receiver.emplace(std::move(*receiver));
    host.receiver->set_listener(host.reader.listener());
    if (auto added = add_swapchain(host, std::move(first_images)); !added) return std::move(added).error();
    return std::move(pair->second);
}

}  // namespace

Result<void> add_swapchain(Host& host, SwapchainImages images) {
    for (std::size_t i = 0; i < swapchain_length; ++i) {
        auto id = host.receiver->add_image(std::move(images[i]));
        if (!id && host.reader.listener() != nullptr) {  // EGL refused it: read every image on the CPU
            host.receiver->set_listener(nullptr);
            host.reader.fall_back_to_cpu(id.error());
            id = host.receiver->add_image(std::move(images[i]));  // on error the image stayed with us
        }
        if (!id) return std::move(id).error();
        host.reader.image_added(*id);
        host.ids[i] = *id;
        ++host.report.images_added;
    }
    return {};
}

Result<void> serve_renderer(Host& host, std::uint64_t frames, SwapchainImages& first_images) {
    auto channel = connect(host, first_images);
    if (!channel) return std::move(channel).error();
    auto tally = Tally::create();
    if (!tally) return std::move(tally).error();
    auto tally_copy = tally->dup();
    if (!tally_copy) return std::move(tally_copy).error();
    // The renderer gets the channel on fd 3 and its tally page on fd 4, nothing else.
    std::vector<texshare::UniqueFd> inherited;
    inherited.push_back(channel->take_socket());
    inherited.push_back(std::move(*tally_copy));
    auto child = texshare::ChildProcess::spawn("/proc/self/exe", renderer_arguments(frames, host.options), inherited,
                                               {.argv0 = host.program});
    if (!child) return std::move(child).error();
    const std::size_t number = ++host.report.renderers;
    const std::uint64_t seen_before = host.seen();

    auto kill = serve(host, *child);  // on error, ~ChildProcess kills and reaps it
    if (!kill) return std::move(kill).error();
    const pid_t pid = child->pid();
    auto status = child->wait(std::chrono::seconds(5));
    if (!status) return std::move(status).error();
    const TallyCounts counts = tally->read();  // final: the renderer is reaped
    host.report.presented += counts.presented;
    host.report.released += counts.released;
    host.report.feedback_presented += counts.feedback_presented;
    host.report.feedback_discarded += counts.feedback_discarded;
    std::string what = fmt::format("renderer {} (pid {}): {}, {} frames presented, {} released", number, pid,
                                   status->describe(), counts.presented, counts.released);
    if (*kill) {
        // Presented but not yet received when the signal went out. The kernel keeps what a
        // dead renderer sent queued, so they still arrive; lost= in the summary checks that.
        const std::uint64_t received_before = (*kill)->seen - seen_before;
        const std::uint64_t in_flight =
            counts.presented > received_before ? counts.presented - received_before : 0;
        host.report.in_flight_at_kill += in_flight;
        for (const std::uint64_t id : host.ids)
            host.report.images_reclaimed += host.receiver->is_local(id) ? 1 : 0;
        what += fmt::format(
            "; SIGKILLed when the host had received {} presents, its death seen {:.2f} ms later (by {}); {} in "
            "flight at the kill, {} received after it; its last frame stays on screen",
            (*kill)->seen, std::chrono::duration<double, std::milli>((*kill)->seen_gone - (*kill)->at).count(),
            (*kill)->seen_by, in_flight,
            host.seen() - (*kill)->seen);
    }
    const bool as_planned = *kill ? !status->exited && status->code == SIGKILL : status->ok();
    host.report.renderers_as_planned = host.report.renderers_as_planned && as_planned;
    host.report.events.push_back(std::move(what));
    return {};
}

}  // namespace host_renderer
