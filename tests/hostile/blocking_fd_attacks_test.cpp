// Attacks with fds whose close() blocks: a loopback TCP socket with SO_LINGER 30 s and a
// send queue the other end never reads. Its last close waits out the linger time
// (tcp_close -> sk_stream_wait_close), and a peer that sends it makes that last close the
// host's. Sent as a plane, a fence, a format table, or an extra fd of a refused message,
// dispatch() must return at once (well under its bound) with the message refused; the fd
// is closed on texshare's closer thread (detail/fd_closer.hpp), which the test then
// unblocks by reading the stuck queue, and the fd count is back where it was.
#include <sys/eventfd.h>
#include <chrono>
#include <optional>
#include <string>

#include "hostile/hostile_peer.hpp"
#include "support/lingering_socket.hpp"

namespace texshare::hostile {
namespace {

using testing::LingeringSocket;
using Clock = std::chrono::steady_clock;
// The bound the README states for dispatch(): no call waits on a peer's file; this is the
// generous test form of it (the calls below take well under a millisecond).
constexpr auto dispatch_bound = std::chrono::seconds(1);

// dispatch() once, timed: it must refuse with `code` and `needle` within the bound.
template <typename Victim>
void expect_prompt_refusal(Victim& victim, Errc code, const std::string& needle) {
    const auto start = Clock::now();
    auto handled = victim.dispatch();
    const auto took = Clock::now() - start;
    ::testing::Test::RecordProperty(
        "dispatch_us", static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
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
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.backing = static_cast<std::uint8_t>(Backing::dma_buf); });
    send_socket(message, 0b1);
    expect_prompt_refusal(*victim_, Errc::rejected, "is declared dma_buf but its fd is not a DMA-BUF");
    expect_still_usable();
}

// An add_image of the wrong kind: a cpu_only image carries no fds, so the socket is an fd
// it may not have (refused before any fd is probed).
TEST_F(BlockingFdAttack, LingeringSocketInAnAddImageOfTheWrongKind) {
    FrameMessage message = add_image_message(1);
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.backing = static_cast<std::uint8_t>(Backing::cpu_only); });
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.fd_plane_mask = 1; });
    send_socket(message, 0b1);
    expect_prompt_refusal(*victim_, Errc::rejected, "needs fd mask 0x0");
    expect_still_usable();
}

TEST_F(BlockingFdAttack, LingeringSocketAsAnAcquireFence) {
    send_image(1);
    ASSERT_TRUE(victim_->dispatch());
    send_socket(as_sync_file(make_frame_message(FrameKind::present, 1, 1)), 0b10000);
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

// More fds than the receiver's control buffer would hold: the kernel closes those that do not
// fit itself, in the receiving thread's recvmsg. The lingering socket comes last, after
// harmless eventfds, so that close would be the kernel's and its last: the channel takes
// every fd a message can carry (253) and hands the extras to the closer.
TEST_F(BlockingFdAttack, LingeringSocketBeyondTheFdsTheChannelTakes) {
    std::vector<UniqueFd> fillers;
    std::vector<int> fds;
    for (std::size_t i = 0; i < 2 * frame_fd_slots; ++i) {
        fillers.emplace_back(::eventfd(0, EFD_CLOEXEC));
        fds.push_back(fillers.back().get());
    }
    fds.push_back(socket_->lingering.get());
    send(make_frame_message(FrameKind::present, 1, 1), 0b10000, fds);
    fillers.clear();
    socket_->lingering.reset();
    expect_prompt_refusal(*victim_, Errc::protocol, "more fds than the");
    expect_still_usable();
}

TEST_F(BlockingFdAttackOnProducer, LingeringSocketAsAReleaseFence) {
    probe_usable();  // image 1, presented
    send_socket(as_sync_file(make_frame_message(FrameKind::release, 1)), 0b10000);
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
    const auto start = Clock::now();
    auto first = victim_->dispatch();
    const auto took = Clock::now() - start;
    EXPECT_LT(took, dispatch_bound);
    RecordProperty("first_dispatch_us",
                   static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(*first, FrameReceiver::dispatch_limit);
    auto second = victim_->dispatch();
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(*second, presents + 2 - FrameReceiver::dispatch_limit);
    EXPECT_EQ(victim_->current()->frame_number, presents);
}

}  // namespace
}  // namespace texshare::hostile
