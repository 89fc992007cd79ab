// Sections 1-4 put together: which benchmarks run side by side, how often, and what each
// row is compared with. The measuring is in the files each section names. Section 1 ends
// with the paced frame (begin_frame -> present -> presented + release, feedback taken),
// against the same 4 messages sent raw and against the plain raw ping-pong.
#include "sections.hpp"

#include <drm_fourcc.h>
#include <sched.h>

#include <algorithm>

#include "first_share.hpp"
#include "round_trip.hpp"
#include "texshare/memfd_allocator.hpp"

namespace bench {

namespace {
std::size_t count(double base, double scale) { return std::max<std::size_t>(static_cast<std::size_t>(base * scale), 2); }
}  // namespace

PinnedToOneCpu::PinnedToOneCpu() {
    if (::sched_getaffinity(0, sizeof previous_, &previous_) != 0) fail("sched_getaffinity");
    cpu_ = 0;
    while (cpu_ < CPU_SETSIZE && !CPU_ISSET(cpu_, &previous_)) ++cpu_;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu_, &one);
    if (::sched_setaffinity(0, sizeof one, &one) != 0) fail("sched_setaffinity");
}

PinnedToOneCpu::~PinnedToOneCpu() { (void)::sched_setaffinity(0, sizeof previous_, &previous_); }

Table round_trip_section(double scale, bool pinned) {
    // Children inherit the affinity when they are spawned, so pinning first puts both
    // processes of every row on one CPU: a round trip is then the protocol's own work, with no
    // idle CPU to wake (a wake-up of an idle vCPU costs more than the whole exchange).
    std::optional<PinnedToOneCpu> pin;
    if (pinned) pin.emplace();
    auto raw = make_raw_round_trip(false);
    auto texshare = make_texshare_round_trip(false, 64, 64);
    auto wayland = make_wayland_round_trip(WaylandRoundTrip::display_roundtrip);
    auto raw_fd = make_raw_round_trip(true);
    auto texshare_fd = make_texshare_round_trip(true, 64, 64);
    auto wayland_fd = make_wayland_round_trip(WaylandRoundTrip::request_with_fd);
    auto raw_paced = make_raw_paced_round_trip();
    auto paced = make_paced_frame_round_trip();
    const std::size_t n = count(10000, scale), repetitions = 9;
    const Samples t = run_interleaved({{raw.get(), n}, {texshare.get(), n}, {wayland.get(), n},
                                       {raw_fd.get(), n}, {texshare_fd.get(), n}, {wayland_fd.get(), n},
                                       {raw_paced.get(), n}, {paced.get(), n}},
                                      repetitions);
    Table table(pinned ? fmt::format("1. Round trip between two processes (present -> received -> release -> "
                                     "received), both pinned to CPU {}",
                                     pin->cpu())
                       : std::string("1b. The same round trips unpinned (the scheduler splits the two processes "
                                     "across CPUs)"));
    const auto row = [&](std::string what, std::size_t i, std::size_t baseline, std::string of,
                         std::optional<Target> target = {}) {
        table.rows.push_back({std::move(what), format_seconds(t.median_of(i)), t.ratio(i, baseline), std::move(of), target});
    };
    row(fmt::format("raw SOCK_SEQPACKET ping-pong, {} B each way (the limit)", frame_wire_bytes), 0, 0, "");
    row("texshare: present -> FrameReceiver -> release -> sender sees it free", 1, 0, "of raw", Target{1.05, true});
    row("libwayland: wl_display_roundtrip", 2, 0, "of raw");
    row("texshare against libwayland's wl_display_roundtrip", 1, 2, "of libwayland", Target{1.0, true});
    row(fmt::format("raw ping-pong, {} B + 1 fd each ping (the limit)", frame_wire_bytes), 3, 3, "");
    row("texshare: present with an acquire fence fd -> release", 4, 3, "of raw + fd", Target{1.05, true});
    row("libwayland: request carrying an fd -> event (wayland-scanner protocol)", 5, 3, "of raw + fd");
    row("texshare against libwayland's request with an fd", 4, 5, "of libwayland", Target{1.0, true});
    row(fmt::format("raw: a paced frame's 4 messages (begin_frame, present, presented, release), {} B each "
                    "(the limit)", frame_wire_bytes),
        6, 6, "");
    // 1.10x, not the 1.05x above: per frame the producer's wait makes one recvmsg more than
    // raw (it drains after the presented it woke for, and finds nothing: EAGAIN), a syscall
    // worth ~6 % of a frame where syscalls trap to a hypervisor (1.2 us each).
    row("texshare paced frame: begin_frame -> present with damage -> presented + release -> feedback taken", 7, 6,
        "of raw 4 messages", Target{1.10, true});
    // No target: 4 messages against 2, so about 1.7x is the floor here, not a cost.
    row("texshare paced frame against the raw ping-pong (row 1)", 7, 0, "of raw");
    table.notes.push_back(fmt::format(
        "Medians of {} interleaved repetitions of {} round trips each; a ratio is the median of the "
        "ratios within each repetition. One child process per row; messages of the protocol's own size "
        "(libwayland's are 8-16 B). The first eight rows run with presentation feedback off, as before it "
        "existed (a consumer that never says presented() would send `discarded` with every release); the "
        "paced frame has pacing and feedback on, its host stepping the target time by 16.67 ms without "
        "reading a clock.", repetitions, n));
    if (!pinned) {
        table.notes.push_back(
            "Unpinned, each message wakes the other process on another, idle CPU: these times are mostly that "
            "wake-up (a vCPU leaving idle), not the protocol's cost; the pinned table is the protocol's cost.");
    }
    return table;
}

Table first_share_section(double scale) {
    using texshare::MemfdAllocator;
    const auto argb = must(MemfdAllocator().allocate(1920, 1080, DRM_FORMAT_ARGB8888), "allocate ARGB8888");
    const auto yuv = must(MemfdAllocator().allocate(1920, 1080, DRM_FORMAT_YUV420), "allocate YUV420");
    Table table("2. First share: descriptor + fds in one message, validated on receipt (in one process)");
    table.rows = measure_first_share({{"1-plane ARGB8888 memfd", &argb}, {"3-plane YUV420 memfd", &yuv}}, 5,
                                     0.2 * scale);
    table.notes.push_back(
        "A shared-memory image has at most 3 planes (a linear layout has only its format's planes, and no "
        "format texshare knows has 4); the 4-plane DMA-BUF case runs in the VM lane (section 2b), where "
        "DMA-BUFs exist. Google Benchmark, 5 repetitions randomly interleaved, medians.");
    return table;
}

Table zero_copy_section(double scale) {
    constexpr std::uint32_t width = 3840, height = 2160;
    auto by_id = make_texshare_round_trip(false, width, height);
    auto socket = make_copy_round_trip(CopyKind::socket, width, height);
    auto shm = make_copy_round_trip(CopyKind::shared_memory, width, height);
    const Samples t = run_interleaved({{by_id.get(), count(2000, scale)}, {socket.get(), count(10, scale)},
                                       {shm.get(), count(10, scale)}},
                                      5);
    Table table{"3. Zero copy against copying: a 3840x2160 ARGB8888 frame (33.2 MB) to the other process",
                "copying costs"};
    table.rows.push_back({"texshare: present by id -> release (zero copy)", format_seconds(t.median_of(0)), 1.0, "", {}});
    table.rows.push_back({"its pixels written through a stream socket, read by the other process",
                          format_seconds(t.median_of(1)), t.ratio(1, 0), "the by-id time", {}});
    table.rows.push_back({"its pixels memcpy'd into shared memory, the other process told",
                          format_seconds(t.median_of(2)), t.ratio(2, 0), "the by-id time", {}});
    table.notes.push_back("Each row is a round trip: the frame handed over, then a one-byte (or release) answer.");
    return table;
}

Table throughput_section(double scale) {
    Table table("4. Throughput and scale (frames carry no pixel work: the protocol's own cost)");
    measure_one_channel(table, scale);
    measure_many_children(table, scale);
    table.notes.push_back(
        "One channel: the median of 3 runs of 1 s, each with a fresh consumer process. 64 children: one run "
        "of 2 s once all 64 have shared their swapchains; the memory is measured then. A host's memory per "
        "channel is its resident growth over the 64 divided by 64 (the kernel's socket buffers are in no "
        "process's RSS); a renderer's RSS is mostly shared libraries, which PSS divides among their users.");
    return table;
}

}  // namespace bench
