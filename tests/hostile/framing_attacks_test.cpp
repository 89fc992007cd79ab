// Attacks on the message envelope: sizes, magic, slot masks, fd counts, control messages.
// The victim is a FrameReceiver (a host's end); AuxChannel does these checks for every
// channel type, so they hold for ImageChannel and user channels too.
#include <sys/eventfd.h>
#include <sys/resource.h>

#include "hostile/hostile_peer.hpp"

namespace texshare::hostile {
namespace {

using Framing = ConsumerUnderAttack;

std::vector<std::byte> bytes_of_size(std::size_t size) { return std::vector<std::byte>(size, std::byte{0x5a}); }

// Item 6: a zero-length SEQPACKET record reads like EOF (recvmsg returns 0), and a host that
// respawns on peer_closed would start a second renderer while the first lives. A live peer
// sending one is a protocol error; the session goes on.
TEST_F(Framing, ZeroLengthRecordFromALivePeerIsAProtocolErrorNotEOF) {
    ASSERT_EQ(send_raw(attacker_.get(), {}), 0);
    expect_refused(Errc::protocol, "zero-length record from a peer that is still connected");
    EXPECT_TRUE(victim_->is_open());
    expect_still_usable();
}

TEST_F(Framing, ZeroLengthRecordThenCloseIsTheEndOfThePeer) {
    ASSERT_EQ(send_raw(attacker_.get(), {}), 0);
    attacker_.reset();
    expect_refused(Errc::peer_closed, "closed");
    EXPECT_FALSE(victim_->is_open());
}

TEST_F(Framing, OneByteMessage) {
    ASSERT_EQ(send_raw(attacker_.get(), bytes_of_size(1)), 1);
    expect_refused(Errc::protocol, "message of 1 bytes");
    expect_still_usable();
}

TEST_F(Framing, HeaderOnlyMessage) {
    auto bytes = frame_bytes(add_image_message(1), 0);
    bytes.resize(9);
    ASSERT_EQ(send_raw(attacker_.get(), bytes), 9);
    expect_refused(Errc::protocol, "message of 9 bytes");
    expect_still_usable();
}

TEST_F(Framing, MessageOneByteShortCarryingAnFd) {
    auto bytes = frame_bytes(add_image_message(1), 1);
    bytes.pop_back();
    UniqueFd memory = sealed_memfd(1024);
    ASSERT_GT(send_raw(attacker_.get(), bytes, {rights({memory.get()})}), 0);
    expect_refused(Errc::protocol, fmt::format("message of {} bytes", bytes.size()));
    expect_still_usable();
}

TEST_F(Framing, MessageOneByteLong) {
    auto bytes = frame_bytes(add_image_message(1), 0);
    bytes.push_back(std::byte{0});
    ASSERT_GT(send_raw(attacker_.get(), bytes), 0);
    expect_refused(Errc::truncated, "MSG_TRUNC");
    expect_still_usable();
}

TEST_F(Framing, SixtyFourKilobyteMessage) {
    const auto bytes = bytes_of_size(64 * 1024);
    ASSERT_EQ(send_raw(attacker_.get(), bytes), static_cast<ssize_t>(bytes.size()));
    expect_refused(Errc::truncated, "MSG_TRUNC");
    expect_still_usable();
}

TEST_F(Framing, WrongMagic) {
    const auto bytes = frame_bytes(add_image_message(1), 0, 0xdeadbeef);
    ASSERT_GT(send_raw(attacker_.get(), bytes), 0);
    expect_refused(Errc::protocol, "magic 0xdeadbeef");
    expect_still_usable();
}

TEST_F(Framing, UnknownVersionAsADifferentPayloadSize) {
    const auto bytes = frame_bytes(add_image_message(1), 0, aux_channel_magic, sizeof(FrameMessage) + 8);
    ASSERT_GT(send_raw(attacker_.get(), bytes), 0);
    expect_refused(Errc::protocol, fmt::format("payload {} bytes", sizeof(FrameMessage) + 8));
    expect_still_usable();
}

TEST_F(Framing, DeclaredFdSlotsWithoutFds) {
    send(add_image_message(1), 0b1);
    expect_refused(Errc::protocol, "declares 1 fds but carried 0");
    expect_still_usable();
}

TEST_F(Framing, FdsWithoutDeclaredSlots) {
    UniqueFd memory = sealed_memfd(1024);
    send(make_frame_message(FrameKind::retire, 1), 0, {memory.get(), memory.get()});
    expect_refused(Errc::protocol, "declares 0 fds but carried 2");
    expect_still_usable();
}

TEST_F(Framing, SlotMaskNamesSlotsBeyondTheChannel) {
    UniqueFd memory = sealed_memfd(1024);
    send(add_image_message(1), 0b1000'0001, {memory.get(), memory.get()});
    expect_refused(Errc::protocol, "slots beyond the 5");
    expect_still_usable();
}

TEST_F(Framing, SixFdsOnAFiveSlotChannel) {
    UniqueFd memory = sealed_memfd(1024);
    const int fd = memory.get();
    send(add_image_message(1), 0b11111, {fd, fd, fd, fd, fd, fd});
    expect_refused(Errc::protocol, "more fds than the 5 this channel takes");
    expect_still_usable();
}

TEST_F(Framing, TwoHundredFiftyThreeFds) {
    UniqueFd memory = sealed_memfd(1024);
    send(add_image_message(1), 0b11111, std::vector<int>(253, memory.get()));
    expect_refused(Errc::protocol, "more fds than the 5 this channel takes");
    expect_still_usable();
}

TEST_F(Framing, TwoScmRightsMessagesInOneMessage) {
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    const auto bytes = frame_bytes(add_image_message(1), 0b1);
    // The kernel merges the two lists into one: 2 fds arrive for 1 declared slot.
    ASSERT_GT(send_raw(attacker_.get(), bytes, {rights({memory.get()}), rights({memory.get()})}), 0);
    expect_refused(Errc::protocol, "declares 1 fds but carried 2");
    expect_still_usable();
}

TEST_F(Framing, ScmCredentialsMixedInAreNeverSeen) {
    // Credentials reach a receiver only with SO_PASSCRED, which texshare never sets; the
    // kernel drops them and the frame is handled as if they were not there.
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    ControlMessage credentials{SOL_SOCKET, SCM_CREDENTIALS, std::vector<std::byte>(sizeof(ucred))};
    const ucred own{::getpid(), ::getuid(), ::getgid()};
    std::memcpy(credentials.data.data(), &own, sizeof own);
    const auto bytes = frame_bytes(add_image_message(1), 0b1);
    ASSERT_GT(send_raw(attacker_.get(), bytes, {credentials, rights({memory.get()})}), 0);
    auto handled = victim_->dispatch();
    ASSERT_TRUE(handled) << handled.error().message;
    EXPECT_NE(victim_->image(1), nullptr);
}

TEST_F(Framing, UnknownKind) {
    send(make_frame_message(static_cast<FrameKind>(99), 1));
    expect_refused(Errc::protocol, "unknown kind 99");
    expect_still_usable();
}

TEST_F(Framing, KindZero) {
    send(make_frame_message(static_cast<FrameKind>(0), 1));
    expect_refused(Errc::protocol, "unknown kind 0");
    expect_still_usable();
}

TEST_F(Framing, ReservedFieldSet) {
    FrameMessage message = make_frame_message(FrameKind::retire, 1);
    message.reserved = 1;
    send(message);
    expect_refused(Errc::protocol, "reserved field is 1");
    expect_still_usable();
}

TEST_F(Framing, PresentSmugglingFdsInPlaneSlots) {
    send_image(1);
    ASSERT_TRUE(victim_->dispatch());
    UniqueFd memory = sealed_memfd(1024);
    send(make_frame_message(FrameKind::present, 1, 1), 0b11, {memory.get(), memory.get()});
    expect_refused(Errc::protocol, "carries an fd in slot 0, which it may not use");
    expect_still_usable();
}

TEST_F(Framing, AddImageWithAFenceSlot) {
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    send(add_image_message(1), 0b10001, {memory.get(), memory.get()});
    expect_refused(Errc::protocol, "slot 4, which it may not use");
    expect_still_usable();
}

TEST_F(Framing, PayloadBytesPastAPresentsMetadata) {
    send_image(1);
    ASSERT_TRUE(victim_->dispatch());
    FrameMessage message = make_frame_message(FrameKind::present, 1, 1);
    message.payload[frame_payload_bytes - 1] = std::byte{7};
    send(message);
    expect_refused(Errc::protocol, "payload byte");
    expect_still_usable();
}

TEST_F(Framing, FrameNumberOnARetire) {
    send(make_frame_message(FrameKind::retire, 1, 5));
    expect_refused(Errc::protocol, "frame number 5 where none belongs");
    expect_still_usable();
}

TEST_F(Framing, ProducerOnlyKindSentByTheConsumerSide) {
    send(make_frame_message(FrameKind::release, 1));
    expect_refused(Errc::protocol, "release of image 1 sent to a consumer");
    expect_still_usable();
}

TEST_F(Framing, TruncatedMessageThenSilenceDoesNotHang) {
    // SEQPACKET delivers whole messages, so "half a message" is a short one; the receiver
    // refuses it and, with nothing more to read, returns instead of waiting for the rest.
    auto bytes = frame_bytes(add_image_message(1), 0);
    bytes.resize(bytes.size() / 2);
    ASSERT_GT(send_raw(attacker_.get(), bytes), 0);
    expect_refused(Errc::protocol, "bytes, expected");
    auto idle = victim_->dispatch();
    ASSERT_TRUE(idle);
    EXPECT_EQ(*idle, 0U);
}

TEST_F(Framing, FdsSentWhileTheReceiverIsAtItsFdLimit) {
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    const int count_before = testing::open_fd_count();
    rlimit old_limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old_limit), 0);
    std::vector<UniqueFd> fillers;  // every hole below the new limit, so no fd can be installed
    while (true) {
        UniqueFd filler(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!filler || filler.get() >= count_before + 8) break;
        fillers.push_back(std::move(filler));
    }
    rlimit tight = old_limit;
    tight.rlim_cur = static_cast<rlim_t>(count_before);
    send(add_image_message(1), 0b1, {memory.get()});
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
    auto handled = victim_->dispatch();
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old_limit), 0);
    fillers.clear();
    ASSERT_FALSE(handled);
    EXPECT_EQ(handled.error().code, Errc::truncated) << handled.error().message;
    EXPECT_NE(handled.error().message.find("open-file limit"), std::string::npos);
    expect_still_usable();
}

TEST_F(Framing, PeerClosesMidStream) {
    send_image(1);
    send(make_frame_message(FrameKind::present, 1, 1));
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    send(add_image_message(2), 0b1, {memory.get()});
    attacker_.reset();
    expect_refused(Errc::peer_closed, "closed");
    EXPECT_EQ(victim_->image_count(), 0U) << "every image of the dead producer is dropped";
    EXPECT_FALSE(victim_->current());
}

TEST_F(Framing, MessagesAfterByeAreNeverRead) {
    send(make_frame_message(FrameKind::bye, 0));
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    send(add_image_message(1), 0b1, {memory.get()});  // in flight when the victim closes: the kernel frees it
    expect_refused(Errc::peer_closed, "said bye");
    EXPECT_FALSE(victim_->is_open());
    EXPECT_EQ(victim_->image_count(), 0U);
}

}  // namespace
}  // namespace texshare::hostile
