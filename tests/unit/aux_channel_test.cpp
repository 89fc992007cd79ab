#include "texshare/aux_channel.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <thread>
#include <vector>

#include "support/channel_pair.hpp"
#include "support/frame_fd_limit.hpp"
#include "support/raw_peer.hpp"

namespace texshare {
namespace {

struct Ping {
    std::uint64_t sequence = 0;
    std::uint32_t value = 0;
    std::uint32_t reserved = 0;
};

using PingChannel = AuxChannel<Ping, 3>;
using PlainChannel = AuxChannel<Ping, 0>;

// Compile-time rules: fds on an FdCount = 0 channel, or a non-trivially-copyable message.
template <typename Channel>
concept CanSendFds = requires(Channel channel, Ping ping, std::span<const BorrowedFd> fds) {
    channel.send(ping, fds);
};
static_assert(CanSendFds<PingChannel>);
static_assert(!CanSendFds<PlainChannel>, "sending fds on an FdCount = 0 channel must not compile");
static_assert(WireMessage<Ping>);
static_assert(!WireMessage<std::vector<int>>, "a message must be trivially copyable");
static_assert(!WireMessage<Ping*>);

class AuxChannelTest : public testing::ChannelPairTest<PingChannel> {
protected:
    void send_raw(std::span<const std::byte> bytes, std::span<const int> fds = {}) {
        ASSERT_GE(testing::raw_send(sender_.native_handle().get(), bytes, fds), 0) << std::strerror(errno);
    }
    void expect_receive_error(Errc code, const std::string& needle) {
        auto received = receiver_.receive();
        ASSERT_FALSE(received) << "expected: " << needle;
        EXPECT_EQ(received.error().code, code) << received.error().message;
        EXPECT_NE(received.error().message.find(needle), std::string::npos) << received.error().message;
    }
    void expect_still_usable() {
        ASSERT_TRUE(sender_.send(Ping{99, 1, 0}));
        auto received = receiver_.receive();
        ASSERT_TRUE(received) << received.error().message;
        EXPECT_EQ(received->message.sequence, 99U);
    }

};

UniqueFd make_memfd() {
    return UniqueFd(::memfd_create("aux-test", MFD_CLOEXEC));
}

TEST_F(AuxChannelTest, MessageWithoutFds) {
    ASSERT_TRUE(sender_.send(Ping{1, 42, 0}));
    auto received = receiver_.receive();
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->message.sequence, 1U);
    EXPECT_EQ(received->message.value, 42U);
    for (const UniqueFd& fd : received->fds) EXPECT_FALSE(fd.valid());
}

TEST_F(AuxChannelTest, FdsArriveInTheirSlotsCloexec) {
    UniqueFd a = make_memfd(), c = make_memfd();
    ASSERT_TRUE(sender_.send(Ping{2, 0, 0}, {a.borrow(), BorrowedFd(), c.borrow()}));
    auto received = receiver_.receive();
    ASSERT_TRUE(received) << received.error().message;
    ASSERT_TRUE(received->fds[0].valid());
    EXPECT_FALSE(received->fds[1].valid()) << "an empty slot stays empty, it is never fd 0";
    ASSERT_TRUE(received->fds[2].valid());
    EXPECT_EQ(::fcntl(received->fds[0].get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    struct stat sent {
    }, got{};
    ASSERT_EQ(::fstat(c.get(), &sent), 0);
    ASSERT_EQ(::fstat(received->fds[2].get(), &got), 0);
    EXPECT_EQ(sent.st_ino, got.st_ino);
}

// receive_into closes what the previous message left in any slot (nobody took it), and
// Received::close_fds does the same: checked per slot, the last one included, since the
// "all slots empty" test is one unrolled AND over the slots (issue 12 item 11).
TEST_F(AuxChannelTest, FdsNobodyTookAreClosedWhateverTheirSlot) {
    const int baseline = testing::open_fd_count();
    for (std::size_t slot = 0; slot < PingChannel::fd_capacity; ++slot) {
        PingChannel::Received into;
        {
            UniqueFd memfd = make_memfd();
            std::array<BorrowedFd, PingChannel::fd_capacity> fds{};
            fds[slot] = memfd.borrow();
            ASSERT_TRUE(sender_.send(Ping{slot, 0, 0}, fds));
            ASSERT_TRUE(sender_.send(Ping{slot + 100, 0, 0}));
        }
        auto first = receiver_.receive_into(into);
        ASSERT_TRUE(first && *first == ReceiveStatus::message);
        ASSERT_TRUE(into.fds[slot].valid()) << "slot " << slot;
        EXPECT_EQ(testing::open_fd_count(), baseline + 1);
        auto second = receiver_.receive_into(into);  // no fds: the one left in `slot` is closed
        ASSERT_TRUE(second && *second == ReceiveStatus::message);
        EXPECT_EQ(testing::open_fd_count(), baseline) << "the fd left in slot " << slot << " stayed open";

        UniqueFd memfd = make_memfd();
        into.fds[slot] = std::move(memfd);
        into.close_fds();
        EXPECT_FALSE(into.fds[slot].valid()) << "close_fds skipped slot " << slot;
        EXPECT_EQ(testing::open_fd_count(), baseline);
    }
}

TEST_F(AuxChannelTest, EmptySlotsAreSkippedBeforeSend) {
    ASSERT_TRUE(sender_.send(Ping{3, 0, 0}, {BorrowedFd(), BorrowedFd(-1), UniqueFd().borrow()}));
    auto received = receiver_.receive();
    ASSERT_TRUE(received);
    for (const UniqueFd& fd : received->fds) EXPECT_FALSE(fd.valid());
}

TEST_F(AuxChannelTest, ClosedFdFailsTheSendAndSendsNothing) {
    UniqueFd closed = make_memfd();
    const int number = closed.get();
    closed.reset();
    auto sent = sender_.send(Ping{4, 0, 0}, {BorrowedFd(), BorrowedFd(number)});
    ASSERT_FALSE(sent);
    EXPECT_EQ(sent.error().code, Errc::fd_not_open);
    EXPECT_EQ(
        sent.error().message,
        fmt::format("AuxChannel::send: slot 1 holds fd {}, which is not open; nothing was sent", number));
    ASSERT_TRUE(receiver_.set_nonblocking(true));
    expect_receive_error(Errc::would_block, "recvmsg");
    expect_still_usable();
}

// A message kept in place (Outgoing) leaves as the same bytes as send(const T&), in one
// record, with its one fd in the slot named; the receiver sees that slot in slot_mask()
// and finds the header in front of the message it received in place (issue 12 item 11).
TEST_F(AuxChannelTest, AnOutgoingMessageInPlaceIsTheSameFrameWithItsFdInItsSlot) {
    PingChannel::Outgoing out;
    out.message = Ping{7, 70, 0};
    ASSERT_TRUE(sender_.send(out));
    int raw_end[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, raw_end), 0);
    UniqueFd raw_sender(raw_end[0]), raw_receiver(raw_end[1]);
    auto raw = PingChannel::adopt(std::move(raw_sender));
    ASSERT_TRUE(raw);
    ASSERT_TRUE(raw->send(out));
    std::array<std::byte, 64> bytes{};
    const ssize_t length = ::recv(raw_receiver.get(), bytes.data(), bytes.size(), 0);
    const auto expected = testing::frame_bytes(Ping{7, 70, 0}, aux_channel_magic, sizeof(Ping), {0});
    ASSERT_EQ(length, static_cast<ssize_t>(expected.size()));
    EXPECT_EQ(std::memcmp(bytes.data(), expected.data(), expected.size()), 0) << "not the wire frame of send()";

    auto plain = receiver_.receive();
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_EQ(plain->message.value, 70U);
    EXPECT_EQ(plain->slot_mask(), 0U);

    UniqueFd memfd = make_memfd();
    out.message = Ping{8, 80, 0};
    ASSERT_TRUE(sender_.send(out, 2, memfd.borrow()));
    PingChannel::Received into;
    auto status = receiver_.receive_into(into);
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_EQ(into.message.sequence, 8U);
    EXPECT_EQ(into.slot_mask(), 0b100U);
    EXPECT_FALSE(into.fds[0].valid());
    EXPECT_FALSE(into.fds[1].valid());
    ASSERT_TRUE(into.fds[2].valid());
    struct stat sent {
    }, got{};
    ASSERT_EQ(::fstat(memfd.get(), &sent), 0);
    ASSERT_EQ(::fstat(into.fds[2].get(), &got), 0);
    EXPECT_EQ(sent.st_ino, got.st_ino);
    std::uint32_t magic = 0;
    std::memcpy(&magic, into.header.data() + into.header.size() - 9, sizeof magic);  // 8 header bytes + 1 mask byte
    EXPECT_EQ(magic, aux_channel_magic);

    // Slot 1 holds the fd now: the next message's header says so, and the fd is refused
    // if closed (naming the slot), with nothing sent.
    const int number = memfd.get();
    memfd.reset();
    auto closed = sender_.send(out, 1, BorrowedFd(number));
    ASSERT_FALSE(closed);
    EXPECT_EQ(closed.error().code, Errc::fd_not_open);
    EXPECT_NE(closed.error().message.find("slot 1"), std::string::npos) << closed.error().message;
    auto beyond = sender_.send(out, 3, into.fds[2].borrow());
    ASSERT_FALSE(beyond);
    EXPECT_EQ(beyond.error().code, Errc::invalid_argument);
    ASSERT_TRUE(receiver_.set_nonblocking(true));
    expect_receive_error(Errc::would_block, "recvmsg");
    expect_still_usable();
}

TEST_F(AuxChannelTest, TooManySlotsIsAnError) {
    UniqueFd fd = make_memfd();
    std::vector<BorrowedFd> four(4, fd.borrow());
    auto sent = sender_.send(Ping{}, four);
    ASSERT_FALSE(sent);
    EXPECT_EQ(sent.error().code, Errc::invalid_argument);
}

TEST_F(AuxChannelTest, PeerClosedIsReported) {
    sender_.close();
    expect_receive_error(Errc::peer_closed, "closed");
    auto sent = receiver_.send(Ping{});
    ASSERT_FALSE(sent);
    EXPECT_EQ(sent.error().code, Errc::peer_closed);
}

TEST_F(AuxChannelTest, APeerThatDiesWithMessagesUnreadStillDeliversWhatItSent) {
    // The kernel reports such a death as ECONNRESET, once, ahead of the peer's queued
    // messages; they must still arrive (a killed renderer's last presents), then EOF.
    ASSERT_TRUE(sender_.send(Ping{1, 0, 0}));
    ASSERT_TRUE(sender_.send(Ping{2, 0, 0}));
    ASSERT_TRUE(receiver_.send(Ping{3, 0, 0}));  // the peer dies without reading this
    sender_.close();
    for (const std::uint64_t sequence : {1U, 2U}) {
        auto received = receiver_.receive();
        ASSERT_TRUE(received) << received.error().message;
        EXPECT_EQ(received->message.sequence, sequence);
    }
    expect_receive_error(Errc::peer_closed, "closed");
}

TEST_F(AuxChannelTest, ClosedChannelFailsCleanly) {
    PingChannel closed;
    EXPECT_EQ(closed.send(Ping{}).error().code, Errc::invalid_argument);
    EXPECT_EQ(closed.receive().error().code, Errc::invalid_argument);
    EXPECT_FALSE(closed.is_open());
}

TEST_F(AuxChannelTest, NonBlockingReceiveWouldBlock) {
    ASSERT_TRUE(receiver_.set_nonblocking(true));
    expect_receive_error(Errc::would_block, "recvmsg");
    expect_still_usable();
}

TEST_F(AuxChannelTest, NativeHandlePollsReadable) {
    pollfd watch{receiver_.native_handle().get(), POLLIN, 0};
    EXPECT_EQ(::poll(&watch, 1, 0), 0);
    ASSERT_TRUE(sender_.send(Ping{8, 0, 0}));
    EXPECT_EQ(::poll(&watch, 1, 1000), 1);
    EXPECT_TRUE(watch.revents & POLLIN);
    EXPECT_TRUE(receiver_.receive());
}

TEST_F(AuxChannelTest, ReceiveRetriesWhenASignalInterruptsIt) {
    struct sigaction action {}, previous {};
    action.sa_handler = [](int) {};
    action.sa_flags = 0;  // no SA_RESTART: recvmsg really fails with EINTR
    ASSERT_EQ(::sigaction(SIGUSR1, &action, &previous), 0);
    const pthread_t receiving_thread = ::pthread_self();
    std::thread peer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ::pthread_kill(receiving_thread, SIGUSR1);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        (void)sender_.send(Ping{12, 0, 0});
    });
    auto received = receiver_.receive();
    peer.join();
    ::sigaction(SIGUSR1, &previous, nullptr);
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->message.sequence, 12U);
}

// Item 7: one timeout rule for every wait: > 0 waits, 0 only looks, < 0 is refused.
TEST_F(AuxChannelTest, ReceiveWithinKeepsTheOneTimeoutRule) {
    using namespace std::chrono_literals;
    auto refused = receiver_.receive_within(-1us);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument) << refused.error().message;
    const auto start = std::chrono::steady_clock::now();
    auto looked = receiver_.receive_within(0us);
    ASSERT_FALSE(looked);
    EXPECT_EQ(looked.error().code, Errc::timed_out) << looked.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "0 must not block (SO_RCVTIMEO 0 is forever)";
    ASSERT_TRUE(sender_.send(Ping{3, 0, 0}));
    auto received = receiver_.receive_within(0us);
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->message.sequence, 3U);
    auto waited = receiver_.receive_within(20ms);
    ASSERT_FALSE(waited);
    EXPECT_EQ(waited.error().code, Errc::timed_out) << waited.error().message;
}

// Item 7: EINTR is not would_block: a signal during receive_within neither ends the wait
// early nor is reported as "nothing pending".
TEST_F(AuxChannelTest, ASignalDuringReceiveWithinIsNotWouldBlock) {
    using namespace std::chrono_literals;
    struct sigaction action {}, previous {};
    action.sa_handler = [](int) {};
    action.sa_flags = 0;
    ASSERT_EQ(::sigaction(SIGUSR1, &action, &previous), 0);
    const pthread_t receiving_thread = ::pthread_self();
    std::thread peer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        ::pthread_kill(receiving_thread, SIGUSR1);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        (void)sender_.send(Ping{13, 0, 0});
    });
    auto received = receiver_.receive_within(2s);
    peer.join();
    ::sigaction(SIGUSR1, &previous, nullptr);
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->message.sequence, 13U);
}

// Item 6 at the channel: a zero-length record from a live peer is not EOF.
TEST_F(AuxChannelTest, AZeroLengthRecordIsAProtocolErrorWhileThePeerLives) {
    send_raw({});
    expect_receive_error(Errc::protocol, "zero-length record");
    expect_still_usable();
    sender_.close();
    expect_receive_error(Errc::peer_closed, "closed");
}

// Item 5 at the channel: receive_into hands over a message whose fds were cut, with the fds
// that arrived in their slots; receive() refuses it naming the channel's slot count.
TEST_F(AuxChannelTest, ACutMessageIsDeliveredByReceiveIntoAndRefusedByReceive) {
    UniqueFd fd = make_memfd();
    ASSERT_TRUE(sender_.send(Ping{21, 0, 0}, {fd.borrow(), BorrowedFd(), fd.borrow()}));
    PingChannel::Received into;
    Result<ReceiveStatus> status = ReceiveStatus::nothing;
    {
        testing::AtFdLimit at_limit;
        status = receiver_.receive_into(into);
    }
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_EQ(*status, ReceiveStatus::message);
    EXPECT_TRUE(into.fds_cut);
    EXPECT_EQ(into.message.sequence, 21U) << "the bytes are intact";
    for (const UniqueFd& slot : into.fds) EXPECT_FALSE(slot.valid());
    // More fds than the slots are no cut: every one arrives (room for 253) and is refused.
    std::vector<int> many(40, fd.get());
    send_raw(testing::frame_bytes(Ping{22, 0, 0}, aux_channel_magic, sizeof(Ping), {0b111}), many);
    expect_receive_error(Errc::protocol, "more fds than the 3 this channel takes");
    expect_still_usable();
}

TEST_F(AuxChannelTest, AdoptRefusesWhatIsNotASeqpacketUnixSocket) {
    int ends[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
    UniqueFd other_end(ends[1]);
    auto stream = PingChannel::adopt(UniqueFd(ends[0]));
    ASSERT_FALSE(stream);
    EXPECT_NE(stream.error().message.find("not an AF_UNIX SOCK_SEQPACKET socket"), std::string::npos);
    auto file = PingChannel::adopt(make_memfd());
    ASSERT_FALSE(file);
    EXPECT_EQ(file.error().sys_errno, ENOTSOCK);
}

TEST_F(AuxChannelTest, PeerCredentialsOfASocketpair) {
    auto credentials = receiver_.peer_credentials();
    ASSERT_TRUE(credentials);
    EXPECT_EQ(credentials->pid, ::getpid());
}

// --- what a hostile or confused peer can send -------------------------------------------

TEST_F(AuxChannelTest, ShortMessageIsRejected) {
    const std::byte bytes[5]{};
    send_raw(bytes);
    expect_receive_error(Errc::protocol, "message of 5 bytes, expected 25");
    expect_still_usable();
}

TEST_F(AuxChannelTest, LongMessageIsTruncatedAndRejected) {
    std::vector<std::byte> bytes(4096);
    send_raw(bytes);
    expect_receive_error(Errc::truncated, "MSG_TRUNC");
    expect_still_usable();
}

TEST_F(AuxChannelTest, WrongMagicOrPayloadSizeIsRejected) {
    send_raw(testing::frame_bytes(Ping{}, 0xdeadbeef, sizeof(Ping), {0}));
    expect_receive_error(Errc::protocol, "magic 0xdeadbeef");
    send_raw(testing::frame_bytes(Ping{}, aux_channel_magic, 8, {0}));
    expect_receive_error(Errc::protocol, "payload 8 bytes");
    expect_still_usable();
}

TEST_F(AuxChannelTest, DeclaredSlotsWithoutFdsAreRejected) {
    send_raw(testing::frame_bytes(Ping{}, aux_channel_magic, sizeof(Ping), {0b011}));
    expect_receive_error(Errc::protocol, "declares 2 fds but carried 0");
}

TEST_F(AuxChannelTest, FdsWithoutDeclaredSlotsAreRejectedAndClosed) {
    UniqueFd fd = make_memfd();
    const int raw[] = {fd.get(), fd.get()};
    send_raw(testing::frame_bytes(Ping{}, aux_channel_magic, sizeof(Ping), {0b001}), raw);
    expect_receive_error(Errc::protocol, "declares 1 fds but carried 2");
    expect_still_usable();
}

TEST_F(AuxChannelTest, SlotsBeyondFdCountAreRejected) {
    UniqueFd fd = make_memfd();
    const int raw[] = {fd.get()};
    send_raw(testing::frame_bytes(Ping{}, aux_channel_magic, sizeof(Ping), {0b1000}), raw);
    expect_receive_error(Errc::protocol, "slots beyond the 3");
}

// The channel receives with room for every fd a message can carry (the kernel would close
// the ones that do not fit inside this thread's recvmsg), so extras are refused, not cut.
TEST_F(AuxChannelTest, MoreFdsThanTheChannelTakesAreRefusedAndClosed) {
    UniqueFd fd = make_memfd();
    std::vector<int> many(40, fd.get());
    send_raw(testing::frame_bytes(Ping{}, aux_channel_magic, sizeof(Ping), {0b111}), many);
    expect_receive_error(Errc::protocol, "more fds than the 3 this channel takes");
    expect_still_usable();
}

TEST_F(AuxChannelTest, FdsOnAPlainChannelAreRejectedAndClosed) {
    auto pair = PlainChannel::create_pair();
    ASSERT_TRUE(pair);
    UniqueFd fd = make_memfd();
    const int raw[] = {fd.get()};
    ASSERT_GE(testing::raw_send(pair->first.native_handle().get(),
                                testing::frame_bytes(Ping{}, aux_channel_magic, sizeof(Ping), {}), raw),
              0);
    auto received = pair->second.receive();
    ASSERT_FALSE(received);
    EXPECT_EQ(received.error().code, Errc::protocol);
    EXPECT_NE(received.error().message.find("more fds than the 0 this channel takes"), std::string::npos)
        << received.error().message;
}

TEST_F(AuxChannelTest, ReceiverAtItsFdLimitGetsCtruncNotALeak) {
    UniqueFd fd = make_memfd();
    const int count_before = testing::open_fd_count();
    rlimit old_limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old_limit), 0);
    // The lowest free fd is at least count_before (some may be higher); cap the table there.
    rlimit tight = old_limit;
    tight.rlim_cur = static_cast<rlim_t>(count_before);
    std::vector<UniqueFd> fillers;
    while (true) {  // fill every hole below the limit so no fd can be installed
        UniqueFd filler(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!filler || filler.get() >= count_before + 8) break;
        fillers.push_back(std::move(filler));
    }
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
    ASSERT_TRUE(sender_.send(Ping{5, 0, 0}, {fd.borrow()}));
    auto received = receiver_.receive();
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old_limit), 0);
    fillers.clear();
    ASSERT_FALSE(received);
    EXPECT_EQ(received.error().code, Errc::truncated);
    expect_still_usable();
}

TEST_F(AuxChannelTest, CrossesAProcessBoundary) {
    UniqueFd memfd = make_memfd();
    ASSERT_EQ(::ftruncate(memfd.get(), 4096), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // Child: receive an fd, write through it, report back.
        receiver_.close();
        memfd.reset();
        auto got = sender_.receive();
        bool ok = got && got->fds[0].valid() && ::pwrite(got->fds[0].get(), "hi", 2, 0) == 2;
        ok = ok && sender_.send(Ping{got->message.sequence + 1, 0, 0});
        ::_exit(ok ? 0 : 1);
    }
    ASSERT_TRUE(receiver_.send(Ping{10, 0, 0}, {memfd.borrow()}));
    auto reply = receiver_.receive();
    ASSERT_TRUE(reply) << reply.error().message;
    EXPECT_EQ(reply->message.sequence, 11U);
    char text[2]{};
    ASSERT_EQ(::pread(memfd.get(), text, 2, 0), 2);
    EXPECT_EQ(std::string(text, 2), "hi");
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(AuxChannelLimits, LargestChannelCarries253Fds) {
    const int before = testing::open_fd_count();
    {
        using Wide = AuxChannel<Ping, max_fds_per_message>;
        auto pair = Wide::create_pair();
        ASSERT_TRUE(pair);
        UniqueFd fd = make_memfd();
        std::vector<BorrowedFd> fds(max_fds_per_message, fd.borrow());
        ASSERT_TRUE(pair->first.send(Ping{}, fds));
        auto received = pair->second.receive();
        ASSERT_TRUE(received) << received.error().message;
        for (const UniqueFd& got : received->fds) EXPECT_TRUE(got.valid());
    }
    EXPECT_EQ(testing::open_fd_count(), before);
}

}  // namespace
}  // namespace texshare
