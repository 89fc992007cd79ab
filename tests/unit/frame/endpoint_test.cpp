// What both frame endpoints share (frame_endpoint.hpp): images added by either side, the
// listener, keeping a dead producer's last frame, resuming with a new peer, timeouts.
#include "texshare/frame/endpoint.hpp"

#include <signal.h>
#include <sys/time.h>

#include <atomic>
#include <string>
#include <vector>

#include "support/frame_pair.hpp"

namespace texshare {
namespace {

using namespace std::chrono_literals;
using testing::allocate;
using testing::expect_error;

class FrameEndpointTest : public testing::FramePairTest {
protected:
    std::uint64_t add_to_receiver() {
        auto id = receiver_->add_image(allocate());
        EXPECT_TRUE(id) << id.error().message;
        return id ? *id : 0;
    }
    // A fresh channel: the surviving endpoint resumes on one end, `peer` is made on the other.
    template <typename Survivor, typename Peer>
    void reconnect(Survivor& survivor, std::optional<Peer>& peer) {
        auto pair = FrameChannel::create_pair();
        ASSERT_TRUE(pair);
        auto resumed = survivor.resume(std::move(pair->first));
        ASSERT_TRUE(resumed) << resumed.error().message;
        auto created = Peer::create(std::move(pair->second));
        ASSERT_TRUE(created);
        peer.emplace(std::move(*created));
    }
};

// Records what it hears; refuses images while `refuse` is set.
struct RecordingListener : FrameImageListener {
    std::vector<std::string> events;
    bool refuse = false;
    Result<void> image_added(std::uint64_t id, const DmaBufImage& image, bool by_peer) override {
        if (refuse) return make_error(Errc::unsupported, "format {} not wanted", image.fourcc());
        events.push_back(fmt::format("add {:x}{}", id, by_peer ? " peer" : ""));
        return {};
    }
    void image_removed(std::uint64_t id) noexcept override { events.push_back(fmt::format("remove {:x}", id)); }
    void image_renamed(std::uint64_t from, std::uint64_t to) noexcept override {
        events.push_back(fmt::format("rename {:x} {:x}", from, to));
    }
};

TEST_F(FrameEndpointTest, ConsumerAddedImagesAreRenderedIntoByTheProducer) {
    const std::uint64_t a = add_to_receiver(), b = add_to_receiver();
    EXPECT_EQ(a, consumer_image_id_bit | 1);
    EXPECT_EQ(b, consumer_image_id_bit | 2);
    EXPECT_EQ(pump_sender(), 2U);
    EXPECT_FALSE(sender_->is_local(a));
    EXPECT_TRUE(receiver_->is_local(a));
    auto free_image = sender_->acquire_free_image();
    ASSERT_TRUE(free_image);
    ASSERT_TRUE(sender_->present(free_image->id));
    EXPECT_EQ(pump_receiver(), 1U);
    ASSERT_TRUE(receiver_->current());
    EXPECT_EQ(receiver_->current()->image, receiver_->image(free_image->id)) << "the consumer's own image, shown";
}

TEST_F(FrameEndpointTest, ConsumerRetireTakesEffectAtOnceAndIsAnswered) {
    const std::uint64_t a = add_to_receiver();
    pump_sender();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    ASSERT_TRUE(receiver_->retire(a));
    EXPECT_FALSE(receiver_->current()) << "a retired image is no longer shown";
    EXPECT_EQ(receiver_->state(a), FrameImageState::retiring);
    EXPECT_EQ(pump_sender(), 1U);
    EXPECT_EQ(sender_->image_count(), 0U) << "the producer dropped it, held or not";
    EXPECT_EQ(pump_receiver(), 1U);  // retired
    EXPECT_EQ(receiver_->image_count(), 0U);
}

TEST_F(FrameEndpointTest, APresentThatCrossesTheConsumersRetireIsSkipped) {
    const std::uint64_t a = add_to_receiver();
    pump_sender();
    ASSERT_TRUE(sender_->present(a));  // in flight...
    ASSERT_TRUE(receiver_->retire(a));  // ...while the consumer retires it
    EXPECT_EQ(pump_receiver(), 1U);
    EXPECT_EQ(receiver_->skipped_count(), 1U);
    EXPECT_FALSE(receiver_->current());
    EXPECT_EQ(pump_sender(), 1U);
    EXPECT_EQ(pump_receiver(), 1U);
    EXPECT_EQ(receiver_->image_count(), 0U);
    EXPECT_EQ(sender_->image_count(), 0U);
}

TEST_F(FrameEndpointTest, OnlyTheAllocatingSideRetires) {
    const std::uint64_t ours = add(), theirs = add_to_receiver();
    pump_sender();
    pump_receiver();
    expect_error(sender_->retire(theirs).error(), Errc::invalid_argument, "only the consumer retires it");
    expect_error(receiver_->retire(ours).error(), Errc::invalid_argument, "only the producer retires it");
}

TEST_F(FrameEndpointTest, AnIdOutsideThePeersSpaceIsAProtocolError) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    auto receiver = FrameReceiver::create(std::move(pair->second));
    ASSERT_TRUE(receiver);
    DmaBufImage image = allocate();
    const std::uint64_t stolen = consumer_image_id_bit | 5;  // a producer using the consumer's ids
    FrameMessage message = make_frame_message(FrameKind::add_image, stolen);
    message.descriptor = describe_image(stolen, image);
    ASSERT_TRUE(pair->first.send(message, {image.plane_fd(0)}));
    auto handled = receiver->dispatch();
    ASSERT_FALSE(handled);
    expect_error(handled.error(), Errc::protocol, "not in the peer's id space");
}

TEST_F(FrameEndpointTest, ListenerHearsOfEveryImageFromAddToDrop) {
    RecordingListener producer_side, consumer_side;
    sender_->set_listener(&producer_side);
    receiver_->set_listener(&consumer_side);
    const std::uint64_t a = add();
    const std::uint64_t c = add_to_receiver();
    pump_receiver();
    pump_sender();
    ASSERT_TRUE(sender_->retire(a));
    pump_receiver();
    pump_sender();
    EXPECT_EQ(producer_side.events,
              (std::vector<std::string>{"add 1", fmt::format("add {:x} peer", c), "remove 1"}));
    EXPECT_EQ(consumer_side.events,
              (std::vector<std::string>{fmt::format("add {:x}", c), "add 1 peer", "remove 1"}));
    sender_->set_listener(nullptr);
    receiver_->set_listener(nullptr);
}

TEST_F(FrameEndpointTest, AListenerRefusalFailsTheAddOrTheDispatch) {
    RecordingListener refusing;
    refusing.refuse = true;
    sender_->set_listener(&refusing);
    DmaBufImage image = allocate();
    auto added = sender_->add_image(std::move(image));
    expect_error(added.error(), Errc::unsupported, "not wanted");
    EXPECT_FALSE(image.empty()) << "a refused image stays with the caller";
    EXPECT_EQ(receiver_->dispatch().value(), 0U) << "nothing was sent";
    sender_->set_listener(nullptr);

    receiver_->set_listener(&refusing);
    add();
    auto handled = receiver_->dispatch();
    ASSERT_FALSE(handled);
    expect_error(handled.error(), Errc::rejected, "refused by the listener");
    receiver_->set_listener(nullptr);
}

TEST_F(FrameEndpointTest, ADeadProducersLastFrameIsKeptUnderTheRetainedId) {
    make_endpoints(false, {.keep_last_frame = true});
    RecordingListener listener;
    receiver_->set_listener(&listener);
    const std::uint64_t a = add();
    add();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    sender_.reset();  // the producer dies
    auto handled = receiver_->dispatch();
    ASSERT_FALSE(handled);
    EXPECT_EQ(handled.error().code, Errc::peer_closed);
    auto kept = receiver_->current();
    ASSERT_TRUE(kept);
    EXPECT_TRUE(kept->producer_gone);
    EXPECT_EQ(kept->image_id, retained_image_id);
    EXPECT_EQ(kept->frame_number, 1U);
    EXPECT_EQ(receiver_->image_count(), 1U);
    EXPECT_EQ(listener.events.back(), fmt::format("rename 1 {:x}", retained_image_id));
    EXPECT_EQ(listener.events[listener.events.size() - 2], "remove 2") << "the image not shown went at once";
    receiver_->set_listener(nullptr);
}

TEST_F(FrameEndpointTest, PresentsSentBeforeAProducerDiedWithReleasesUnreadStillArrive) {
    make_endpoints(false, {.keep_last_frame = true});
    const std::uint64_t a = add(), b = add(), c = add();
    pump_receiver();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    ASSERT_TRUE(sender_->present(b));
    pump_receiver();  // releases a; the producer never reads that release
    ASSERT_TRUE(sender_->present(c));
    sender_.reset();  // killed: no bye, and the release of a still unread in its socket
    auto handled = receiver_->dispatch();
    ASSERT_FALSE(handled);
    EXPECT_EQ(handled.error().code, Errc::peer_closed) << handled.error().message;
    EXPECT_EQ(receiver_->received_count(), 3U) << "the present of c was sent before the death";
    auto kept = receiver_->current();
    ASSERT_TRUE(kept);
    EXPECT_EQ(kept->frame_number, 3U);
    EXPECT_TRUE(kept->producer_gone);
}

TEST_F(FrameEndpointTest, WithoutKeepLastFrameADeadProducersImagesAllGo) {
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    sender_.reset();
    EXPECT_FALSE(receiver_->dispatch());
    EXPECT_FALSE(receiver_->current());
    EXPECT_EQ(receiver_->image_count(), 0U);
}

TEST_F(FrameEndpointTest, AResumedProducerSharesItsImagesWithTheNewConsumer) {
    const std::uint64_t a = add(), b = add();
    pump_receiver();
    ASSERT_TRUE(sender_->present(a));
    receiver_.reset();  // the consumer dies holding nothing it read; a is in flight
    EXPECT_FALSE(sender_->dispatch());
    EXPECT_EQ(sender_->reclaimed_count(), 1U);
    const std::uint64_t c = add();  // no consumer now: kept, shared on resume
    expect_error(sender_->present(c).error(), Errc::invalid_argument, "no consumer to present to");
    reconnect(*sender_, receiver_);
    EXPECT_EQ(pump_receiver(), 3U);
    for (std::uint64_t id : {a, b, c}) EXPECT_NE(receiver_->image(id), nullptr);
    auto presented = sender_->present(c);
    ASSERT_TRUE(presented);
    EXPECT_EQ(*presented, 2U) << "frame numbers keep increasing";
    pump_receiver();
    EXPECT_EQ(receiver_->current()->image_id, c);
}

TEST_F(FrameEndpointTest, AResumedConsumerSharesItsKeptImageOnlyOnceItIsReleased) {
    make_endpoints(false, {.keep_last_frame = true});
    const std::uint64_t a = add_to_receiver(), b = add_to_receiver();
    pump_sender();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    sender_.reset();
    EXPECT_FALSE(receiver_->dispatch());
    EXPECT_EQ(receiver_->current()->image_id, a) << "its own image keeps its id";
    reconnect(*receiver_, sender_);
    EXPECT_EQ(pump_sender(), 1U) << "only b: a is still shown";
    EXPECT_EQ(sender_->image(a), nullptr);
    ASSERT_TRUE(sender_->present(b));
    pump_receiver();
    EXPECT_EQ(receiver_->current()->image_id, b);
    EXPECT_EQ(pump_sender(), 1U) << "a, shared now that it is released";
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
}

TEST_F(FrameEndpointTest, WaitsTimeOutNamingWhatDidNotCome) {
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    auto free_image = sender_->wait_for_free_image(20ms);
    expect_error(free_image.error(), Errc::timed_out, "no release from the consumer within 20 ms");
    pump_receiver();
    auto frame = receiver_->wait_for_frame(1, 20ms);
    expect_error(frame.error(), Errc::timed_out, "no present from the producer within 20 ms");
}

TEST_F(FrameEndpointTest, WaitsKeepTheirTimeoutAndAZeroTimeoutDoesNotBlock) {
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

TEST_F(FrameEndpointTest, APeriodicSignalDoesNotStretchAWaitPastItsTimeout) {
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

TEST_F(FrameEndpointTest, AWaitReturnsAtTheFirstAnswerAndLeavesTheRestQueued) {
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
    EXPECT_EQ(pump_sender(), 1U) << "a, released by b's present";
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
}

TEST_F(FrameEndpointTest, AClosedFenceFdIsRefusedNamingItsSlotAndNothingIsSent) {
    const std::uint64_t a = add();
    pump_receiver();
    int closed_number = -1;
    {
        testing::Pipe pipe;
        closed_number = pipe.read_end.get();
    }
    auto presented = sender_->present(a, BorrowedFd(closed_number));
    expect_error(presented.error(), Errc::fd_not_open, fmt::format("slot 4 holds fd {}", closed_number));
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
    EXPECT_EQ(receiver_->dispatch().value(), 0U);
}

TEST_F(FrameEndpointTest, AdvertisedFormatsReachTheProducerOncePerChange) {
    const FormatTable table{0xe200, {{DRM_FORMAT_ARGB8888, 0, DRM_FORMAT_MOD_LINEAR}}};
    ASSERT_TRUE(receiver_->advertise(table));
    EXPECT_EQ(pump_sender(), 1U);
    ASSERT_NE(sender_->peer_formats(), nullptr);
    EXPECT_EQ(*sender_->peer_formats(), table);
    EXPECT_TRUE(sender_->take_formats_changed());
    EXPECT_FALSE(sender_->take_formats_changed());
    ASSERT_TRUE(receiver_->advertise(table));  // the same again: nothing to renegotiate
    pump_sender();
    EXPECT_FALSE(sender_->take_formats_changed());
    FormatTable moved = table;
    moved.device = 0xe201;  // e.g. the consumer restarted on another GPU
    ASSERT_TRUE(receiver_->advertise(moved));
    pump_sender();
    EXPECT_TRUE(sender_->take_formats_changed());
    EXPECT_EQ(sender_->peer_formats()->device, 0xe201U);
}

TEST_F(FrameEndpointTest, SharedMemoryImagesPassAnAdvertisedTable) {
    ASSERT_TRUE(receiver_->advertise(FormatTable{0xe200, {{DRM_FORMAT_XRGB8888, 0, DRM_FORMAT_MOD_LINEAR}}}));
    const std::uint64_t a = add();  // ARGB8888 in a memfd: the CPU path, always acceptable
    EXPECT_EQ(pump_receiver(), 1U);
    EXPECT_NE(receiver_->image(a), nullptr);
}

TEST_F(FrameEndpointTest, AResumedConsumerAdvertisesItsTableToTheNewProducer) {
    const FormatTable table{0xe200, {{DRM_FORMAT_ARGB8888, 0, DRM_FORMAT_MOD_LINEAR}}};
    ASSERT_TRUE(receiver_->advertise(table));
    sender_.reset();
    EXPECT_FALSE(receiver_->dispatch());
    reconnect(*receiver_, sender_);
    EXPECT_EQ(pump_sender(), 1U);
    ASSERT_NE(sender_->peer_formats(), nullptr);
    EXPECT_EQ(*sender_->peer_formats(), table);
}

TEST_F(FrameEndpointTest, AProducerForgetsADeadConsumersTable) {
    ASSERT_TRUE(receiver_->advertise(FormatTable{}));
    pump_sender();
    ASSERT_NE(sender_->peer_formats(), nullptr);
    receiver_.reset();
    EXPECT_FALSE(sender_->dispatch());
    EXPECT_EQ(sender_->peer_formats(), nullptr);
}

}  // namespace
}  // namespace texshare
