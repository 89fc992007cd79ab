// The endpoints' link (frame/link.hpp): waits and their one timeout rule, signals during
// a wait, sends to a gone peer, and the hello of each session.
#include "texshare/frame/link.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "support/frame_pair.hpp"

namespace texshare {
namespace {

using namespace std::chrono_literals;
using testing::allocate;
using testing::expect_error;
using testing::inode;
using testing::Pipe;
using testing::RecordingListener;
using FrameLinkTest = testing::FramePairTest;

TEST_F(FrameLinkTest, WaitsTimeOutNamingWhatDidNotCome) {
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    auto free_image = sender_->wait_for_free_image(20ms);
    expect_error(free_image.error(), Errc::timed_out, "no release from the consumer within 20 ms");
    pump_receiver();
    auto frame = receiver_->wait_for_frame(1, 20ms);
    expect_error(frame.error(), Errc::timed_out, "no present from the producer within 20 ms");
}

TEST_F(FrameLinkTest, WaitsKeepTheirTimeoutAndAZeroTimeoutDoesNotBlock) {
    // Waits happen in recvmsg under SO_RCVTIMEO, where 0 would mean "forever".
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    auto start = std::chrono::steady_clock::now();
    expect_error(sender_->wait_for_free_image(0ms).error(), Errc::timed_out, "within 0 ms");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    start = std::chrono::steady_clock::now();
    expect_error(sender_->wait_for_free_image(50ms).error(), Errc::timed_out, "within 50 ms");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 40ms) << "the wait gave up before its timeout";
    pump_receiver();
    ASSERT_TRUE(receiver_->release(a));
    auto free_image = sender_->wait_for_free_image(50ms);  // a changed timeout is set anew
    ASSERT_TRUE(free_image) << free_image.error().message;
    EXPECT_EQ(free_image->id, a);
}

// A periodic signal (a profiler's SIGPROF, a game loop's timer) interrupts a wait under
// SO_RCVTIMEO every few ms, and the kernel never resumes such a wait: restarting it with the
// whole timeout would never time out. The handler stops the timer after 2 s, so a broken
// wait fails the test instead of hanging it.
std::atomic<int> ticks{0};
void on_tick(int) {
    if (++ticks == 400) {
        const itimerval stop{};
        ::setitimer(ITIMER_REAL, &stop, nullptr);
    }
}

TEST_F(FrameLinkTest, APeriodicSignalDoesNotStretchAWaitPastItsTimeout) {
    const std::uint64_t a = add();
    pump_receiver();
    auto presented = sender_->present(a);
    ASSERT_TRUE(presented);
    ASSERT_TRUE(receiver_->wait_for_frame(0, 1s));  // kept, never released
    struct sigaction tick {}, previous {};
    tick.sa_handler = on_tick;
    tick.sa_flags = SA_RESTART;
    ASSERT_EQ(::sigaction(SIGALRM, &tick, &previous), 0);
    ticks = 0;
    const itimerval every_5ms{{0, 5000}, {0, 5000}};
    ASSERT_EQ(::setitimer(ITIMER_REAL, &every_5ms, nullptr), 0);
    const auto start = std::chrono::steady_clock::now();
    auto free_image = sender_->wait_for_free_image(100ms);
    auto frame = receiver_->wait_for_frame(*presented, 100ms);
    const auto waited = std::chrono::steady_clock::now() - start;
    const itimerval stop{};
    ::setitimer(ITIMER_REAL, &stop, nullptr);
    ::sigaction(SIGALRM, &previous, nullptr);
    ASSERT_FALSE(free_image);
    expect_error(free_image.error(), Errc::timed_out, "within 100 ms");
    ASSERT_FALSE(frame);
    expect_error(frame.error(), Errc::timed_out, "within 100 ms");
    EXPECT_LT(waited, 1500ms) << "the waits restarted their timeout at every signal (" << ticks.load() << " signals)";
    EXPECT_GT(ticks.load(), 10) << "the signals did not come during the waits";
}

TEST_F(FrameLinkTest, AWaitReturnsAtTheFirstAnswerAndLeavesTheRestQueued) {
    const std::uint64_t a = add(), b = add();
    pump_receiver();
    ASSERT_TRUE(sender_->present(a));
    ASSERT_TRUE(sender_->present(b));
    auto frame = receiver_->wait_for_frame(0, 1s);
    ASSERT_TRUE(frame) << frame.error().message;
    EXPECT_EQ(frame->image_id, a);
    EXPECT_EQ(receiver_->received_count(), 1U) << "b's present waits for the next dispatch";
    EXPECT_EQ(pump_receiver(), 1U);
    EXPECT_EQ(receiver_->current()->image_id, b);
    EXPECT_EQ(pump_sender(), 2U) << "a, discarded unshown and released by b's present";
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
}

// Item 7: the one timeout rule of every wait (> 0 waits, 0 only looks, < 0 is refused).
TEST_F(FrameLinkTest, ANegativeTimeoutIsRefusedByEveryWait) {
    const std::uint64_t a = add();
    pump_receiver();
    expect_error(sender_->wait_for_free_image(-1ms).error(), Errc::invalid_argument, "timeout -1 ms is negative");
    expect_error(receiver_->wait_for_frame(0, -5ms).error(), Errc::invalid_argument, "timeout -5 ms is negative");
    ASSERT_TRUE(sender_->present(a));
    auto frame = receiver_->wait_for_frame(0, 0ms);
    ASSERT_TRUE(frame) << "0 handles what is pending: " << frame.error().message;
    EXPECT_EQ(frame->image_id, a);
}

TEST_F(FrameLinkTest, AnAnswerToAGonePeerIsNoErrorButASendIs) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    detail::FrameLink link("consumer");
    ASSERT_TRUE(link.adopt(std::move(pair->first)));
    pair->second.close();
    EXPECT_TRUE(link.answer(FrameKind::retired, 4));
    EXPECT_TRUE(link.hung_up());
    expect_error(link.send(FrameKind::present, 4, 9).error(), Errc::peer_closed,
                 "present of image 4: the consumer is gone");
    EXPECT_TRUE(link.is_open()) << "what the peer sent before is still to be read";
    auto end = link.receive();
    expect_error(end.error(), Errc::peer_closed, "closed the channel");
}

// A wait "forever" (milliseconds::max()) arms no kernel timer and still returns at the answer.
TEST_F(FrameLinkTest, AWaitForeverReturnsAtTheAnswer) {
    const std::uint64_t a = add();
    pump_receiver();
    ASSERT_TRUE(sender_->present(a));
    auto frame = receiver_->wait_for_frame(0, std::chrono::milliseconds::max());
    ASSERT_TRUE(frame) << frame.error().message;
    ASSERT_TRUE(receiver_->release(a));
    auto free_image = sender_->wait_for_free_image(std::chrono::milliseconds::max());
    ASSERT_TRUE(free_image) << free_image.error().message;
    EXPECT_EQ(free_image->id, a);
}

// ---- the hello -----------------------------------------------------------------------------

TEST_F(FrameLinkTest, TheHelloIsTheFirstMessageEachWayAndIsNotCounted) {
    EXPECT_FALSE(sender_->has_feedback()) << "nothing is known of the consumer before its hello";
    EXPECT_EQ(pump_receiver(), 0U);
    EXPECT_EQ(pump_sender(), 0U);
    EXPECT_TRUE(sender_->has_feedback()) << "both offer feedback by default";
    EXPECT_FALSE(sender_->paced()) << "a producer runs free by default";
    EXPECT_FALSE(receiver_->producer_paced());
    // The rest of the session works as before.
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    EXPECT_EQ(pump_receiver(), 2U);
    EXPECT_EQ(receiver_->current()->image_id, a);
}

TEST_F(FrameLinkTest, FeaturesAreWhatBothHellosCarry) {
    FrameSender::Options sender;
    sender.paced = true;
    sender.feedback = false;
    make_endpoints(false, {}, sender);
    pump_receiver();
    pump_sender();
    EXPECT_TRUE(sender_->paced());
    EXPECT_TRUE(receiver_->producer_paced());
    EXPECT_FALSE(sender_->has_feedback());
    FrameReceiver::Options receiver;
    receiver.pacing = false;
    sender.feedback = true;
    make_endpoints(false, receiver, sender);
    pump_receiver();
    pump_sender();
    EXPECT_FALSE(sender_->paced()) << "asked, but the consumer does not pace";
    EXPECT_FALSE(receiver_->producer_paced());
    EXPECT_TRUE(sender_->has_feedback());
    expect_error(sender_->wait_for_begin_frame(1ms).error(), Errc::invalid_argument, "the consumer does not pace");
}

TEST_F(FrameLinkTest, ResumeSaysHelloAgainAndTheNewPeersFeaturesCount) {
    pump_receiver();
    pump_sender();
    ASSERT_TRUE(sender_->has_feedback());
    receiver_.reset();
    EXPECT_EQ(sender_->dispatch().error().code, Errc::peer_closed);
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    ASSERT_TRUE(sender_->resume(std::move(pair->first)));
    auto receiver = FrameReceiver::create(std::move(pair->second), {.feedback = false});
    ASSERT_TRUE(receiver);
    receiver_.emplace(std::move(*receiver));
    EXPECT_FALSE(sender_->has_feedback()) << "forgotten with the old consumer";
    EXPECT_EQ(pump_receiver(), 0U) << "the producer's hello came again, first";
    pump_sender();
    EXPECT_FALSE(sender_->has_feedback()) << "the new consumer offers none";
}

// A peer of protocol 1 sends no hello, and its FrameMessage is 8 bytes shorter (no fence
// point): each side's first message fails the other's framing, and this side names why.
struct ProtocolOneMessage {
    std::array<std::uint64_t, (24 + sizeof(ImageDescriptor)) / 8> words{};
};

TEST(FrameLinkHello, AProtocolOnePeerIsToldApartFromABrokenOne) {
    int ends[2] = {-1, -1};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
    auto old = AuxChannel<ProtocolOneMessage, frame_fd_slots>::adopt(UniqueFd(ends[0]));
    ASSERT_TRUE(old);
    auto receiver = FrameReceiver::create(FrameChannel::adopt(UniqueFd(ends[1])).value());
    ASSERT_TRUE(receiver);
    ASSERT_TRUE(old->send(ProtocolOneMessage{}));
    auto refused = receiver->dispatch();
    ASSERT_FALSE(refused);
    expect_error(refused.error(), Errc::protocol,
                 "no hello from the producer: its first message is not a frame protocol 2.0 message (AuxChannel: "
                 "message of");
    EXPECT_NE(refused.error().message.find("a protocol 1 peer"), std::string::npos) << refused.error().message;
    // The old peer hears our hello as a record longer than its messages.
    (void)old->set_nonblocking(true);
    auto heard = old->receive();
    ASSERT_FALSE(heard);
    expect_error(heard.error(), Errc::truncated, "record longer than the");
}

TEST_F(FrameLinkTest, APeerOfAnotherMajorIsRefusedBeforeAnythingItSentIsUsed) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    auto receiver = FrameReceiver::create(std::move(pair->second));
    ASSERT_TRUE(receiver);
    FrameMessage hello = make_hello_message(HelloRole::producer, 0);
    hello.edit_payload<Hello>([](Hello& h) {
        h.major = 3;
        h.minor = 1;
    });
    ASSERT_TRUE(pair->first.send(hello));
    DmaBufImage image = allocate();
    FrameMessage add = make_frame_message(FrameKind::add_image, 1);
    add.set_descriptor(describe_image(1, image));
    ASSERT_TRUE(pair->first.send(add, {image.plane_fd(0)}));
    expect_error(receiver->dispatch().error(), Errc::protocol,
                 "the producer speaks frame protocol 3.1, this side 2.0: another major version");
    expect_error(receiver->dispatch().error(), Errc::protocol,
                 "add_image of image 1 before the producer's hello");
    EXPECT_EQ(receiver->image_count(), 0U);
}

TEST_F(FrameLinkTest, ASecondHelloIsAProtocolError) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    auto sender = FrameSender::create(std::move(pair->first));
    ASSERT_TRUE(sender);
    const FrameMessage hello = make_hello_message(HelloRole::consumer, hello_feature_feedback);
    ASSERT_TRUE(pair->second.send(hello));
    ASSERT_TRUE(pair->second.send(hello));
    expect_error(sender->dispatch().error(), Errc::protocol, "a second hello from the consumer");
}

}  // namespace
}  // namespace texshare
