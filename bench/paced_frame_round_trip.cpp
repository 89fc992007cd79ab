// A paced frame (issue 16's per-frame path) as a round trip: the parent is the host, a
// FrameReceiver with pacing and feedback on (the defaults); the child is a paced
// FrameSender with feedback on that shared one 64x64 image once. Per frame:
//   host      begin_frame(target) -> wait_for_frame -> presented(target) -> release
//   producer  wait_for_begin_frame -> take_feedback (the previous frame's) -> present(damage)
// that is 4 messages (begin_frame, present, presented, release), as in the raw row it is
// compared with (make_raw_paced_round_trip). The host steps its target time by a fixed
// interval from a start time read once (a compositor knows its vsync times: no clock read
// per frame). Both wait without a time limit, as texshare_round_trip.cpp explains.
#include <poll.h>

#include <cerrno>

#include "children.hpp"
#include "round_trip.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"

namespace bench {
namespace {

using namespace texshare;

constexpr std::chrono::milliseconds forever() { return std::chrono::milliseconds::max(); }
constexpr std::int64_t interval_ns = 16'666'667;  // 60 Hz
constexpr std::uint32_t image_size = 64;

class PacedFrameRoundTrip final : public RoundTrip {
public:
    PacedFrameRoundTrip() {
        auto pair = must(FrameChannel::create_pair(), "FrameChannel::create_pair");
        std::vector<UniqueFd> fds;
        fds.push_back(pair.second.take_socket());
        child_ = spawn_child("paced", std::move(fds));
        receiver_ = must(FrameReceiver::create(std::move(pair.first)), "FrameReceiver::create");
        // begin_frame needs the producer's hello (it asks for pacing there).
        while (!receiver_->producer_paced()) {
            pollfd readable{receiver_->native_handle().get(), POLLIN, 0};
            if (::poll(&readable, 1, -1) < 0 && errno != EINTR) fail("poll");
            (void)must(receiver_->dispatch(), "dispatch (the producer's hello)");
        }
        target_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
    }
    ~PacedFrameRoundTrip() override {
        receiver_->close();
        expect_clean_exit(child_, "paced");
    }

    [[gnu::hot]] void run(std::size_t iterations) override {
        for (std::size_t i = 0; i < iterations; ++i) {
            target_ns_ += interval_ns;
            const auto sequence = receiver_->begin_frame(target_ns_, interval_ns);
            check(sequence, "begin_frame");
            const auto frame = receiver_->wait_for_frame(last_, forever());
            check(frame, "wait_for_frame");
            if (frame->metadata.begin_frame_sequence != *sequence) [[unlikely]] {
                fail("paced: the present answered another begin_frame");
            }
            last_ = frame->frame_number;
            check(receiver_->presented(target_ns_, presented_flag_zero_copy), "presented");
            check(receiver_->release(frame->image_id), "release");
        }
    }

private:
    texshare::ChildProcess child_;
    std::optional<FrameReceiver> receiver_;
    std::int64_t target_ns_ = 0;
    std::uint64_t last_ = 0;
};

}  // namespace

std::unique_ptr<RoundTrip> make_paced_frame_round_trip() { return std::make_unique<PacedFrameRoundTrip>(); }

[[gnu::hot]] int paced_frame_round_trip_child(const ChildArgs&) {
    auto channel = must(FrameChannel::adopt(inherited_fd(0)), "FrameChannel::adopt");
    auto sender = must(FrameSender::create(std::move(channel), {.paced = true}), "FrameSender::create");
    const std::uint64_t id = must(
        sender.add_image(must(MemfdAllocator().allocate(image_size, image_size, DRM_FORMAT_ARGB8888), "allocate")),
        "add_image");
    const DamageRect damage{8, 8, 16, 16};
    const PresentInfo info{.damage = {&damage, 1}};
    std::uint64_t answered = 0;      // the begin_frame the last present answered
    std::int64_t answered_at = 0;    // and its target time
    std::int64_t latency_ns = 0;     // what a producer measures: presented time - target, summed
    while (true) {
        const auto begin = sender.wait_for_begin_frame(forever());
        if (!begin && begin.error().code == Errc::peer_closed) break;
        check(begin, "wait_for_begin_frame");
        // The previous frame's presented and release came before this begin_frame and were
        // handled in order inside the wait: exactly one feedback, and the image free.
        std::size_t taken = 0;
        while (const auto feedback = sender.take_feedback()) {
            if (!feedback->presented || feedback->begin_frame_sequence != answered) [[unlikely]] {
                fail(fmt::format("paced: feedback {} for begin_frame {}, expected presented for {}",
                                 feedback->presented ? "presented" : "discarded", feedback->begin_frame_sequence,
                                 answered));
            }
            latency_ns += feedback->time_ns - answered_at;
            ++taken;
        }
        if (taken != (answered != 0 ? 1U : 0U)) [[unlikely]] {
            fail(fmt::format("paced: {} feedbacks in one frame", taken));
        }
        if (sender.state(id) != FrameImageState::free) [[unlikely]] {
            fail("paced: the image is not free at begin_frame");
        }
        check(sender.present(id, info), "present");
        answered = begin->sequence;
        answered_at = begin->target_time_ns;
    }
    // The host says presented at the target time: a producer would see no latency.
    if (latency_ns != 0) fail(fmt::format("paced: {} ns of latency summed, expected 0", latency_ns));
    return 0;
}

}  // namespace bench
