// The limit for section 1: a SOCK_SEQPACKET ping-pong written directly against the kernel,
// blocking, with messages of a frame message's size. Nothing a library could leave out:
// the pong is received whole into a buffer, received fds are closed (MSG_CMSG_CLOEXEC).
// Also the limit of a paced frame: its 4 messages (begin_frame, present, presented,
// release) exchanged the same way.
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <array>

#include "raw_socket.hpp"
#include "children.hpp"
#include "round_trip.hpp"

namespace bench {
namespace {

using texshare::UniqueFd;

class RawRoundTrip final : public RoundTrip {
public:
    explicit RawRoundTrip(bool with_fd) {
        auto [mine, theirs] = socket_pair(SOCK_SEQPACKET);
        socket_ = std::move(mine);
        std::vector<UniqueFd> fds;
        fds.push_back(std::move(theirs));
        child_ = spawn_child("raw", std::move(fds));
        if (with_fd) fence_.reset(::eventfd(0, EFD_CLOEXEC));
        bytes_.fill(std::byte{0x5a});
    }
    ~RawRoundTrip() override {
        socket_.reset();
        expect_clean_exit(child_, "raw");
    }

    [[gnu::hot]] void run(std::size_t iterations) override {
        for (std::size_t i = 0; i < iterations; ++i) {
            const int fence = fence_.get();
            raw_send(socket_.get(), bytes_, fence_ ? std::span<const int>(&fence, 1) : std::span<const int>());
            if (raw_receive(socket_.get(), bytes_) == 0) fail("the raw child hung up");
        }
    }

private:
    UniqueFd socket_;
    UniqueFd fence_;
    texshare::ChildProcess child_;
    std::array<std::byte, frame_wire_bytes> bytes_{};
};

// A paced frame's pattern: the parent (host) sends begin_frame, receives present, sends
// presented and release; the child (producer) does the opposite.
class RawPacedRoundTrip final : public RoundTrip {
public:
    RawPacedRoundTrip() {
        auto [mine, theirs] = socket_pair(SOCK_SEQPACKET);
        socket_ = std::move(mine);
        std::vector<UniqueFd> fds;
        fds.push_back(std::move(theirs));
        child_ = spawn_child("raw_paced", std::move(fds));
        bytes_.fill(std::byte{0x5a});
    }
    ~RawPacedRoundTrip() override {
        socket_.reset();
        expect_clean_exit(child_, "raw_paced");
    }

    [[gnu::hot]] void run(std::size_t iterations) override {
        for (std::size_t i = 0; i < iterations; ++i) {
            raw_send(socket_.get(), bytes_);  // begin_frame
            if (raw_receive(socket_.get(), bytes_) == 0) fail("the raw_paced child hung up");  // present
            raw_send(socket_.get(), bytes_);  // presented
            raw_send(socket_.get(), bytes_);  // release
        }
    }

private:
    UniqueFd socket_;
    texshare::ChildProcess child_;
    std::array<std::byte, frame_wire_bytes> bytes_{};
};

}  // namespace

std::unique_ptr<RoundTrip> make_raw_round_trip(bool with_fd) { return std::make_unique<RawRoundTrip>(with_fd); }
std::unique_ptr<RoundTrip> make_raw_paced_round_trip() { return std::make_unique<RawPacedRoundTrip>(); }

[[gnu::hot]] int raw_round_trip_child(const ChildArgs&) {
    const UniqueFd socket = inherited_fd(0);
    std::array<std::byte, frame_wire_bytes> bytes{};
    while (raw_receive(socket.get(), bytes) > 0) raw_send(socket.get(), bytes);
    return 0;
}

[[gnu::hot]] int raw_paced_round_trip_child(const ChildArgs&) {
    const UniqueFd socket = inherited_fd(0);
    std::array<std::byte, frame_wire_bytes> bytes{};
    while (raw_receive(socket.get(), bytes) > 0) {  // begin_frame
        raw_send(socket.get(), bytes);              // present
        // presented, then release
        if (raw_receive(socket.get(), bytes) == 0 || raw_receive(socket.get(), bytes) == 0) {
            fail("the raw_paced parent hung up mid-frame");
        }
    }
    return 0;
}

}  // namespace bench
