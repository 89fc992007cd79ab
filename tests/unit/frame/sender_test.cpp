// FrameSender (frame/sender.hpp): presenting, retiring, the consumer's death and resume,
// the consumer's formats.
#include "texshare/frame/sender.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
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
using FrameSenderTest = testing::FramePairTest;

TEST_F(FrameSenderTest, PresentOfAHeldRetiringOrUnknownImageIsRefused) {
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    expect_error(sender_->present(a).error(), Errc::invalid_argument,
                 fmt::format("image {} is still held by the consumer", a));
    expect_error(sender_->present(99).error(), Errc::invalid_argument, "unknown image id 99");
    expect_error(sender_->acquire_free_image().error(), Errc::would_block, "no free image");
    ASSERT_TRUE(sender_->retire(a));
    expect_error(sender_->present(a).error(), Errc::invalid_argument, "being retired");
    expect_error(sender_->retire(a).error(), Errc::invalid_argument, "already being retired");
}

TEST_F(FrameSenderTest, RetireDuringFlightDropsOnlyAfterRelease) {
    const std::uint64_t a = add(), b = add(), spare = add();
    ASSERT_TRUE(sender_->present(a));
    ASSERT_TRUE(sender_->retire(a));
    ASSERT_TRUE(sender_->retire(spare));  // never presented: dropped at once
    EXPECT_EQ(sender_->state(a), FrameImageState::retiring);
    pump_receiver();
    EXPECT_EQ(receiver_->current()->image_id, a) << "a retiring image is shown until it is let go";
    EXPECT_EQ(receiver_->image_count(), 2U);
    pump_sender();
    EXPECT_FALSE(sender_->state(spare));
    EXPECT_EQ(sender_->state(a), FrameImageState::retiring);

    ASSERT_TRUE(sender_->present(b));
    pump_receiver();
    EXPECT_EQ(receiver_->current()->image_id, b);
    EXPECT_EQ(receiver_->image(a), nullptr);
    EXPECT_EQ(receiver_->image_count(), 1U);
    EXPECT_EQ(pump_sender(), 2U) << "discarded, then retired alone: released and dropped in one message";
    EXPECT_EQ(sender_->released_count(), 1U);
    EXPECT_FALSE(sender_->state(a));
    EXPECT_EQ(sender_->image_count(), 1U);
    EXPECT_EQ(sender_->image(a), nullptr);
}

TEST_F(FrameSenderTest, ConsumerDeathReclaimsEveryImage) {
    const std::uint64_t a = add(), b = add(), c = add();
    ASSERT_TRUE(sender_->present(a));
    ASSERT_TRUE(sender_->present(b));
    ASSERT_TRUE(sender_->retire(c));
    pump_receiver();    // holds b; a went back
    receiver_.reset();  // dies without a word
    auto gone = sender_->dispatch();
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, Errc::peer_closed);
    EXPECT_FALSE(sender_->is_open());
    EXPECT_EQ(sender_->reclaimed_count(), 1U) << "b was held when the consumer died";
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
    EXPECT_EQ(sender_->state(b), FrameImageState::free);
    EXPECT_FALSE(sender_->state(c)) << "retired images are dropped when nobody can answer";
    EXPECT_EQ(sender_->dispatch().error().code, Errc::peer_closed);
    EXPECT_EQ(sender_->present(a).error().code, Errc::invalid_argument);
}

TEST_F(FrameSenderTest, ConsumerDeathBeforeReadingAnythingReclaimsAllPresented) {
    const std::uint64_t a = add(), b = add();
    ASSERT_TRUE(sender_->present(a));
    ASSERT_TRUE(sender_->present(b));
    receiver_->close();  // says bye
    EXPECT_EQ(sender_->dispatch().error().code, Errc::peer_closed);
    EXPECT_EQ(sender_->reclaimed_count(), 2U);
}

// A send that finds the peer gone says so and changes nothing; it never reads the socket
// itself (no receiving inside a send): the next dispatch() reads what the peer sent before
// it died, then its end.
TEST_F(FrameSenderTest, ASendToAGonePeerSaysSoAndTheNextDispatchEndsTheSession) {
    const std::uint64_t a = add(), b = add();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    receiver_.reset();
    expect_error(sender_->present(b).error(), Errc::peer_closed,
                 fmt::format("present of image {}: the consumer is gone", b));
    EXPECT_EQ(sender_->state(b), FrameImageState::free) << "a failed present changes nothing";
    expect_error(sender_->retire(b).error(), Errc::peer_closed, "the consumer is gone");
    EXPECT_EQ(sender_->state(a), FrameImageState::presented) << "nothing was read inside the send";
    expect_error(sender_->dispatch().error(), Errc::peer_closed, "closed the channel");
    EXPECT_FALSE(sender_->is_open());
    EXPECT_EQ(sender_->reclaimed_count(), 1U);
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
}

// Item 7: a release after the producer exited says "the producer is gone", not EPIPE.
TEST_F(FrameSenderTest, AReleaseAfterTheProducerExitedSaysTheProducerIsGone) {
    const std::uint64_t c = add();
    ASSERT_TRUE(sender_->present(c));
    pump_receiver();
    sender_.reset();
    auto released = receiver_->release(c);
    ASSERT_FALSE(released);
    // The frame was never reported shown: its discarded goes first, and finds the producer gone.
    expect_error(released.error(), Errc::peer_closed, fmt::format("discarded of image {}: the producer is gone", c));
    EXPECT_EQ(released.error().message.find("Broken pipe"), std::string::npos) << released.error().message;
    ASSERT_TRUE(receiver_->current()) << "a failed release changes nothing";
    EXPECT_EQ(receiver_->dispatch().error().code, Errc::peer_closed);
    EXPECT_EQ(receiver_->image_count(), 0U);
    EXPECT_FALSE(receiver_->current());
}

TEST_F(FrameSenderTest, OnlyTheAllocatingSideRetires) {
    const std::uint64_t ours = add(), theirs = add_to_receiver();
    pump_sender();
    pump_receiver();
    expect_error(sender_->retire(theirs).error(), Errc::invalid_argument, "only the consumer retires it");
    expect_error(receiver_->retire(ours).error(), Errc::invalid_argument, "only the producer retires it");
}

TEST_F(FrameSenderTest, AResumedProducerSharesItsImagesWithTheNewConsumer) {
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

TEST_F(FrameSenderTest, AClosedFenceFdIsRefusedNamingItsSlotAndNothingIsSent) {
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

TEST_F(FrameSenderTest, AdvertisedFormatsReachTheProducerOncePerChange) {
    const FormatTable table{0xe200, {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}}};
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
    // Issue 14: the consumer starts converting shared memory (udmabuf): a change to renegotiate
    // (negotiate() may now pick SharingPath::shared_memory_udmabuf).
    FormatTable converting = moved;
    converting.capabilities = consumer_converts_shared_memory;
    ASSERT_TRUE(receiver_->advertise(converting));
    pump_sender();
    EXPECT_TRUE(sender_->take_formats_changed());
    EXPECT_EQ(sender_->peer_formats()->capabilities, consumer_converts_shared_memory);
}

TEST_F(FrameSenderTest, AProducerForgetsADeadConsumersTable) {
    ASSERT_TRUE(receiver_->advertise(FormatTable{}));
    pump_sender();
    ASSERT_NE(sender_->peer_formats(), nullptr);
    receiver_.reset();
    EXPECT_FALSE(sender_->dispatch());
    EXPECT_EQ(sender_->peer_formats(), nullptr);
}

// FrameSenderOptions::max_consumer_images: a consumer allocating the swapchain shares at
// most that many; beyond it the image stays with the consumer, unshared, and it hears so.
TEST_F(FrameSenderTest, TheConsumerAddsAtMostItsQuota) {
    EXPECT_EQ(FrameSenderOptions{}.max_consumer_images, max_frame_images / 2) << "the documented default";
    std::vector<std::uint64_t> ids;
    for (std::size_t i = 0; i <= max_frame_images / 2; ++i) ids.push_back(add_to_receiver());
    auto refused = sender_->dispatch();
    ASSERT_FALSE(refused);
    expect_error(refused.error(), Errc::rejected,
                 "the consumer already has 8 images here, its quota (FrameSenderOptions::max_consumer_images) is 8");
    pump_receiver();  // refused
    ASSERT_TRUE(receiver_->retire(ids.back()));
    EXPECT_FALSE(receiver_->state(ids.back())) << "never shared: dropped at once";
    EXPECT_EQ(sender_->dispatch().value(), 0U);
    for (std::size_t i = 0; i < max_frame_images / 2; ++i) ASSERT_TRUE(sender_->add_image(allocate(4, 4)));
}

TEST_F(FrameSenderTest, AQuotaAboveTheTableIsAnError) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    auto sender = FrameSender::create(std::move(pair->first), {.max_consumer_images = 17});
    ASSERT_FALSE(sender);
    expect_error(sender.error(), Errc::invalid_argument, "max_consumer_images 17 is more than the table's 16 slots");
    EXPECT_TRUE(FrameSender::create(std::move(pair->second), {.max_consumer_images = 0}));
}

}  // namespace
}  // namespace texshare
