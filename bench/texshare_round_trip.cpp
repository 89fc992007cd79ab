// texshare's per-frame round trip: the parent is a FrameSender with one image it shared
// once; each round trip presents it (optionally with an acquire fence), the child's
// FrameReceiver sees the frame, releases it, and the sender waits until it is free again.
// Both endpoints are used as an application uses them, waiting through
// wait_for_free_image() / wait_for_frame() without a time limit: each wait is one blocking
// recvmsg that returns with the answer (no poll, and no SO_RCVTIMEO timer since the wait
// has no limit; the answer is handled as it arrives, later messages wait for the next
// call). Results are checked where they lie (check()), as a frame loop would.
// Feedback is off on both ends (it is on by default): a consumer that never says
// presented() would send `discarded` before every release, one more message than the raw
// ping-pong this row is compared with. The paced frame (paced_frame_round_trip.cpp) is the
// per-frame path with pacing and feedback on.
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "children.hpp"
#include "round_trip.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"

namespace bench {
namespace {

using namespace texshare;

// No kernel timer per wait. A function, not a variable: the constant is then an immediate
// rather than a load from .rodata (one more page the round trip would touch).
constexpr std::chrono::milliseconds forever() { return std::chrono::milliseconds::max(); }

class TexshareRoundTrip final : public RoundTrip {
public:
    TexshareRoundTrip(bool with_fence, std::uint32_t width, std::uint32_t height) {
        auto pair = must(FrameChannel::create_pair(), "FrameChannel::create_pair");
        std::vector<UniqueFd> fds;
        fds.push_back(pair.second.take_socket());
        child_ = spawn_child("texshare", std::move(fds));
        sender_ = must(FrameSender::create(std::move(pair.first), {.feedback = false}), "FrameSender::create");
        id_ = must(sender_->add_image(must(MemfdAllocator().allocate(width, height, DRM_FORMAT_ARGB8888), "allocate")),
                   "add_image");
        if (with_fence) fence_.reset(::eventfd(0, EFD_CLOEXEC));
    }
    ~TexshareRoundTrip() override {
        sender_->close();
        expect_clean_exit(child_, "texshare");
    }

    [[gnu::hot]] void run(std::size_t iterations) override {
        for (std::size_t i = 0; i < iterations; ++i) {
            check(sender_->present(id_, fence_.borrow()), "present");
            auto free_image = sender_->wait_for_free_image(forever());
            check(free_image, "wait_for_free_image");
            if (free_image->id != id_) fail("texshare: another image came back");
        }
    }

private:
    texshare::ChildProcess child_;
    std::optional<FrameSender> sender_;
    std::uint64_t id_ = 0;
    UniqueFd fence_;
};

}  // namespace

std::unique_ptr<RoundTrip> make_texshare_round_trip(bool with_fence, std::uint32_t width, std::uint32_t height) {
    return std::make_unique<TexshareRoundTrip>(with_fence, width, height);
}

[[gnu::hot]] int texshare_round_trip_child(const ChildArgs&) {
    auto channel = must(FrameChannel::adopt(inherited_fd(0)), "FrameChannel::adopt");
    auto receiver = must(FrameReceiver::create(std::move(channel), {.feedback = false}), "FrameReceiver::create");
    std::uint64_t last = 0;
    while (true) {
        auto frame = receiver.wait_for_frame(last, forever());
        if (!frame && frame.error().code == Errc::peer_closed) return 0;
        if (!frame) fail(fmt::format("wait_for_frame: {}", frame.error().message));
        last = frame->frame_number;
        UniqueFd acquire_fence = receiver.take_acquire_fence();  // closed at the end of the scope
        check(receiver.release(frame->image_id), "release");
    }
}

}  // namespace bench
