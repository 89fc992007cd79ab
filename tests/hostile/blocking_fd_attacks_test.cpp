// Attacks with fds whose close() blocks: a loopback TCP socket with SO_LINGER 30 s and a
// send queue the other end never reads. Its last close waits out the linger time
// (tcp_close -> sk_stream_wait_close), and a peer that sends it makes that last close the
// host's. Sent as a plane, a fence, a format table, or an extra fd of a refused message,
// dispatch() must return at once (well under its bound) with the message refused; the fd
// is closed on texshare's closer thread (detail/fd_closer.hpp), which the test then
// unblocks by reading the stuck queue, and the fd count is back where it was.
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <string>

#include "hostile/hostile_peer.hpp"

namespace texshare::hostile {
namespace {

using Clock = std::chrono::steady_clock;
// The bound the README states for dispatch(): no call waits on a peer's file; this is the
// generous test form of it (the calls below take well under a millisecond).
constexpr auto dispatch_bound = std::chrono::seconds(1);

// A connected pair of loopback TCP sockets; `lingering` has SO_LINGER 30 s and a full send
// queue that `stuck_reader` never reads, so the last close of `lingering` blocks ~30 s.
struct LingeringSocket {
    UniqueFd lingering, stuck_reader;

    LingeringSocket() {
        UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        EXPECT_TRUE(listener);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        socklen_t length = sizeof address;
        EXPECT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
        EXPECT_EQ(::listen(listener.get(), 1), 0);
        lingering.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int small = 4096;
        EXPECT_EQ(::setsockopt(lingering.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
        EXPECT_EQ(::connect(lingering.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        stuck_reader.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        EXPECT_TRUE(stuck_reader);
        EXPECT_EQ(::setsockopt(stuck_reader.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
        const linger thirty{1, 30};
        EXPECT_EQ(::setsockopt(lingering.get(), SOL_SOCKET, SO_LINGER, &thirty, sizeof thirty), 0);
        // Fill both buffers until the kernel takes no more: the send queue is stuck.
        char chunk[4096] = {};
        std::size_t queued = 0;
        for (int i = 0; i < 10000; ++i) {
            const ssize_t n = ::send(lingering.get(), chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n <= 0) break;
            queued += static_cast<std::size_t>(n);
        }
        EXPECT_GT(queued, 0U);
        int unsent = 0;
        EXPECT_EQ(::ioctl(lingering.get(), SIOCOUTQ, &unsent), 0);
        EXPECT_GT(unsent, 0) << "the send queue is not stuck: close() would not linger";
    }

    // Reads the stuck queue to its end, so that a close lingering on it (the closer
    // thread's) completes: EOF comes once the lingering end's FIN has gone through.
    void unstick() {
        if (lingering) {  // never sent: close it here without lingering
            const linger off{0, 0};
            ::setsockopt(lingering.get(), SOL_SOCKET, SO_LINGER, &off, sizeof off);
            lingering.reset();
        }
        const timeval limit{10, 0};
        ::setsockopt(stuck_reader.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        char chunk[65536];
        while (::recv(stuck_reader.get(), chunk, sizeof chunk, 0) > 0) {
        }
    }
};

// dispatch() once, timed: it must refuse with `code` and `needle` within the bound.
template <typename Victim>
void expect_prompt_refusal(Victim& victim, Errc code, const std::string& needle) {
    const auto start = Clock::now();
    auto handled = victim.dispatch();
    const auto took = Clock::now() - start;
    EXPECT_LT(took, dispatch_bound) << "dispatch() blocked on the peer's fd for "
                                    << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
    ASSERT_FALSE(handled) << "the attack was accepted";
    testing::expect_error(handled.error(), code, needle);
}

class BlockingFdAttack : public ConsumerUnderAttack {
protected:
    // The attacker's copy goes once the message is queued: the host's is then the last.
    void send_socket(const FrameMessage& message, std::uint8_t mask, int slot_count = 1) {
        std::vector<int> fds(static_cast<std::size_t>(slot_count), socket_->lingering.get());
        send(message, mask, fds);
        socket_->lingering.reset();
    }
    void SetUp() override {
        ConsumerUnderAttack::SetUp();  // counts fds first: the socket pair is the test's
        socket_.emplace();
    }
    void TearDown() override {
        socket_->unstick();
        socket_.reset();
        ConsumerUnderAttack::TearDown();
    }
    std::optional<LingeringSocket> socket_;
};

class BlockingFdAttackOnProducer : public ProducerUnderAttack {
protected:
    void send_socket(const FrameMessage& message, std::uint8_t mask) {
        send(message, mask, {socket_->lingering.get()});
        socket_->lingering.reset();
    }
    void SetUp() override {
        ProducerUnderAttack::SetUp();  // counts fds first: the socket pair is the test's
        socket_.emplace();
    }
    void TearDown() override {
        socket_->unstick();
        socket_.reset();
        ProducerUnderAttack::TearDown();
    }
    std::optional<LingeringSocket> socket_;
};

TEST_F(BlockingFdAttack, LingeringSocketAsAPlane) {
    send_socket(add_image_message(1), 0b1);
    expect_prompt_refusal(*victim_, Errc::rejected, "is not a memfd of the kernel's shm mount");
    EXPECT_EQ(victim_->image(1), nullptr);
    expect_still_usable();
}

TEST_F(BlockingFdAttack, LingeringSocketAsADmaBufPlane) {
    FrameMessage message = add_image_message(1);
    message.descriptor.backing = static_cast<std::uint8_t>(Backing::dma_buf);
    send_socket(message, 0b1);
    expect_prompt_refusal(*victim_, Errc::rejected, "is declared dma_buf but its fd is not a DMA-BUF");
    expect_still_usable();
}

// An add_image of the wrong kind: a cpu_only image carries no fds, so the socket is an fd
// it may not have (refused before any fd is probed).
TEST_F(BlockingFdAttack, LingeringSocketInAnAddImageOfTheWrongKind) {
    FrameMessage message = add_image_message(1);
    message.descriptor.backing = static_cast<std::uint8_t>(Backing::cpu_only);
    message.descriptor.fd_plane_mask = 1;
    send_socket(message, 0b1);
    expect_prompt_refusal(*victim_, Errc::rejected, "needs fd mask 0x0");
    expect_still_usable();
}

TEST_F(BlockingFdAttack, LingeringSocketAsAnAcquireFence) {
    send_image(1);
    ASSERT_TRUE(victim_->dispatch());
    send_socket(make_frame_message(FrameKind::present, 1, 1), 0b10000);
    expect_prompt_refusal(*victim_, Errc::rejected, "present of image 1 as frame 1: fence fd");
    EXPECT_FALSE(victim_->current()) << "shown with a fence the host cannot safely poll or close";
    EXPECT_FALSE(victim_->take_acquire_fence().valid());
    expect_still_usable();
}

// An extra fd in a message the envelope check refuses (a retire carries no fds).
TEST_F(BlockingFdAttack, LingeringSocketAsAnExtraFdOfARefusedMessage) {
    send_socket(make_frame_message(FrameKind::retire, 7), 0b1);
    expect_prompt_refusal(*victim_, Errc::protocol, "carries an fd in slot 0");
    expect_still_usable();
}

// A record the channel itself refuses (bad magic): its fds never reach the endpoint.
TEST_F(BlockingFdAttack, LingeringSocketInARecordWithABadMagic) {
    const auto bytes = frame_bytes(make_frame_message(FrameKind::present, 1, 1), 0b10000, 0xdeadbeef);
    ASSERT_EQ(send_raw(attacker_.get(), bytes, {rights({socket_->lingering.get()})}),
              static_cast<ssize_t>(bytes.size()));
    socket_->lingering.reset();
    expect_prompt_refusal(*victim_, Errc::protocol, "header magic 0xdeadbeef");
    expect_still_usable();
}

// More fds than the record declares: refused by the channel, every one closed off-thread.
TEST_F(BlockingFdAttack, LingeringSocketsBeyondTheDeclaredSlots) {
    send_socket(make_frame_message(FrameKind::present, 1, 1), 0b10000, 3);
    expect_prompt_refusal(*victim_, Errc::protocol, "declares 1 fds but carried 3");
    expect_still_usable();
}

TEST_F(BlockingFdAttackOnProducer, LingeringSocketAsAReleaseFence) {
    probe_usable();  // image 1, presented
    send_socket(make_frame_message(FrameKind::release, 1), 0b10000);
    expect_prompt_refusal(*victim_, Errc::rejected, "release of image 1: fence fd");
    EXPECT_EQ(victim_->state(1), FrameImageState::presented);
    EXPECT_FALSE(victim_->take_release_fence(1).valid());
}

TEST_F(BlockingFdAttackOnProducer, LingeringSocketAsAFormatTable) {
    send_socket(make_frame_message(FrameKind::capabilities, 0), 0b1);
    expect_prompt_refusal(*victim_, Errc::rejected, "format table fd");
    EXPECT_EQ(victim_->peer_formats(), nullptr);
    expect_still_usable();
}

// A peer that sends faster than the host reads cannot keep dispatch() from returning: it
// handles at most dispatch_limit messages per call, and the rest stay for the next.
TEST_F(BlockingFdAttack, AFloodOfMessagesEndsEachDispatchAtItsLimit) {
    send_image(1);
    send_image(2);
    const std::size_t presents = FrameReceiver::dispatch_limit + 36;
    for (std::size_t frame = 1; frame <= presents; ++frame) {
        send(make_frame_message(FrameKind::present, frame % 2 == 0 ? 2 : 1, frame));
    }
    auto first = victim_->dispatch();
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(*first, FrameReceiver::dispatch_limit);
    auto second = victim_->dispatch();
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(*second, presents + 2 - FrameReceiver::dispatch_limit);
    EXPECT_EQ(victim_->current()->frame_number, presents);
}

}  // namespace
}  // namespace texshare::hostile
