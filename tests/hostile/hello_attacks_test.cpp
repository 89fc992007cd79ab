// Attacks on the hello that opens each session (frame/hello.hpp): a peer that lies about
// its version or role, pads its hello, skips it, or sends it twice. Each is refused with
// Errc::protocol before anything else the peer sent is used, fds that came before the
// hello are closed (the fixture's fd count), and the endpoint's state is unchanged.
#include <sys/socket.h>

#include "hostile/hostile_peer.hpp"
#include "support/frame_state.hpp"

namespace texshare::hostile {
namespace {

using testing::state_of;

template <typename Victim>
class HelloAttack : public testing::FdLeakTest {
protected:
    void SetUp() override {
        FdLeakTest::SetUp();
        int ends[2] = {-1, -1};
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
        attacker_.reset(ends[0]);
        auto victim = Victim::create(FrameChannel::adopt(UniqueFd(ends[1])).value());
        ASSERT_TRUE(victim) << victim.error().message;
        victim_.emplace(std::move(*victim));
    }
    void TearDown() override {
        victim_.reset();
        attacker_.reset();
        FdLeakTest::TearDown();
    }
    void send(const FrameMessage& message, std::uint8_t mask = 0, const std::vector<int>& fds = {}) {
        const auto bytes = frame_bytes(message, mask);
        ASSERT_EQ(send_raw(attacker_.get(), bytes,
                           fds.empty() ? std::vector<ControlMessage>{} : std::vector{rights(fds)}),
                  static_cast<ssize_t>(bytes.size()));
    }
    FrameMessage hello(void (*tamper)(Hello&) = nullptr) {
        FrameMessage m =
            make_hello_message(attacker_role<Victim>, hello_feature_pacing | hello_feature_feedback);
        if (tamper != nullptr) m.edit_payload<Hello>(tamper);
        return m;
    }
    // The next dispatch refuses with Errc::protocol naming `needle`, and nothing changed.
    void expect_refused(const std::string& needle) {
        const std::string before = state_of(*victim_);
        auto handled = victim_->dispatch();
        ASSERT_FALSE(handled) << "accepted";
        testing::expect_error(handled.error(), Errc::protocol, needle);
        EXPECT_EQ(state_of(*victim_), before);
    }
    // After a refused hello, a good one is still taken (the caller would drop the peer; the
    // endpoint itself is not broken).
    void expect_a_good_hello_works() {
        send(hello());
        auto handled = victim_->dispatch();
        ASSERT_TRUE(handled) << handled.error().message;
        EXPECT_EQ(*handled, 0U);
    }

    UniqueFd attacker_;
    std::optional<Victim> victim_;
};

using ConsumerHelloAttack = HelloAttack<FrameReceiver>;
using ProducerHelloAttack = HelloAttack<FrameSender>;

TEST_F(ConsumerHelloAttack, AnotherMajorVersionIsNamedWithBoth) {
    send(hello([](Hello& h) {
        h.major = 1;
        h.minor = 9;
    }));
    expect_refused("the producer speaks frame protocol 1.9, this side 2.0: another major version");
    expect_a_good_hello_works();
}

TEST_F(ProducerHelloAttack, AnotherMajorVersionIsNamedWithBoth) {
    send(hello([](Hello& h) { h.major = 0xffff; }));
    expect_refused("the consumer speaks frame protocol 65535.0, this side 2.0");
    expect_a_good_hello_works();
}

TEST_F(ConsumerHelloAttack, TheWrongRole) {
    send(hello([](Hello& h) { h.role = static_cast<std::uint32_t>(HelloRole::consumer); }));
    expect_refused("says role 2 (consumer), not producer");
    send(hello([](Hello& h) { h.role = 0; }));
    expect_refused("says role 0 (unknown), not producer");
    expect_a_good_hello_works();
}

TEST_F(ProducerHelloAttack, BytesAfterTheHello) {
    FrameMessage padded = hello();
    padded.payload[sizeof(Hello) + 3] = std::byte{0x80};
    send(padded);
    expect_refused("hello from the consumer: payload byte 19 is 128, not 0");
    expect_a_good_hello_works();
}

TEST_F(ProducerHelloAttack, TheHelloWithAFrameNumberOrAFence) {
    FrameMessage numbered = hello();
    numbered.frame_number = 3;
    send(numbered);
    expect_refused("hello of image 0: frame number 3 where none belongs");
    testing::Fence fence;
    send(as_sync_file(hello()), 1 << frame_fence_slot, {fence.read_end.get()});
    expect_refused("hello of image 0: fence kind 1 on a message that carries no fence");
    expect_a_good_hello_works();
}

// An image before the hello: refused, its plane fd closed (the fd count), never imported.
TEST_F(ConsumerHelloAttack, AnImageBeforeTheHelloIsNotImported) {
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    send(add_image_message(1), 1, {memory.get()});
    memory.reset();
    expect_refused("add_image of image 1 before the producer's hello");
    EXPECT_EQ(victim_->image_count(), 0U);
    expect_a_good_hello_works();
}

TEST_F(ProducerHelloAttack, ABeginFrameOrFeedbackBeforeTheHello) {
    FrameMessage begin = make_frame_message(FrameKind::begin_frame, 0);
    begin.set_payload(BeginFrame{1, 100, 1});
    send(begin);
    expect_refused("begin_frame of image 0 before the consumer's hello");
    send(make_frame_message(FrameKind::presented, 1, 1));
    expect_refused("presented of image 1 before the consumer's hello");
    expect_a_good_hello_works();
}

TEST_F(ConsumerHelloAttack, ASecondHello) {
    expect_a_good_hello_works();
    send(hello());
    expect_refused("a second hello from the producer");
}

// A bye before the hello is a goodbye, not a protocol error: a peer may give up at once.
TEST_F(ConsumerHelloAttack, AByeBeforeTheHelloEndsTheSession) {
    send(make_frame_message(FrameKind::bye, 0));
    auto handled = victim_->dispatch();
    ASSERT_FALSE(handled);
    testing::expect_error(handled.error(), Errc::peer_closed, "the producer said bye");
}

// A paced-producer rule that needs no session state: begin_frame to a producer that did not
// ask to be paced is refused after the hello too.
TEST_F(ProducerHelloAttack, ABeginFrameToAFreeRunningProducer) {
    expect_a_good_hello_works();
    FrameMessage begin = make_frame_message(FrameKind::begin_frame, 0);
    begin.set_payload(BeginFrame{1, 100, 1});
    send(begin);
    expect_refused("begin_frame 1 to a producer that did not ask to be paced");
}

// Feedback when the producer did not ask for it.
TEST_F(ProducerHelloAttack, FeedbackThatWasNotAgreed) {
    send(hello());
    ASSERT_TRUE(victim_->dispatch());
    victim_.reset();
    int ends[2] = {-1, -1};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
    attacker_.reset(ends[0]);
    auto victim = FrameSender::create(FrameChannel::adopt(UniqueFd(ends[1])).value(), {.feedback = false});
    ASSERT_TRUE(victim);
    victim_.emplace(std::move(*victim));
    expect_a_good_hello_works();
    auto id = victim_->add_image(MemfdAllocator().allocate(8, 8, DRM_FORMAT_ARGB8888).value());
    ASSERT_TRUE(id);
    ASSERT_TRUE(victim_->present(*id));
    FrameMessage presented = make_frame_message(FrameKind::presented, *id, 1);
    presented.set_payload(PresentationFeedback{5, 0, 0, 0});
    send(presented);
    expect_refused("no feedback was agreed in the hellos");
}

}  // namespace
}  // namespace texshare::hostile
