// FrameReceiver (frame/receiver.hpp): presents in order, what a broken producer gets,
// the consumer's own images, keeping a dead producer's frame, the fd limit, Frame::image.
#include "texshare/frame/receiver.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "support/frame_fd_limit.hpp"
#include "support/frame_pair.hpp"

namespace texshare {
namespace {

using namespace std::chrono_literals;
using testing::allocate;
using testing::expect_error;
using testing::inode;
using testing::Pipe;
using testing::Fence;
using testing::same_file;
using testing::RecordingListener;
using FrameReceiverTest = testing::FramePairTest;

TEST_F(FrameReceiverTest, ReleaseOfAnUnknownIdAndReleaseTwiceAreErrors) {
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    expect_error(receiver_->release(42).error(), Errc::invalid_argument, "image 42 is unknown");
    ASSERT_TRUE(receiver_->release(a));
    EXPECT_FALSE(receiver_->current());
    expect_error(receiver_->release(a).error(), Errc::invalid_argument,
                 fmt::format("image {} is not held", a));
    EXPECT_EQ(pump_sender(), 2U) << "discarded (never reported presented), then the release";
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
}

TEST_F(FrameReceiverTest, ProducerThatBreaksTheProtocolIsCaught) {
    // The test plays a hand-written producer on a raw FrameChannel.
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    auto receiver = FrameReceiver::create(std::move(pair->second));
    ASSERT_TRUE(receiver);
    FrameChannel& producer = pair->first;
    ASSERT_TRUE(producer.send(make_hello_message(HelloRole::producer, 0)));
    DmaBufImage image = allocate();
    FrameMessage add_message = make_frame_message(FrameKind::add_image, 7);
    add_message.set_descriptor(describe_image(7, image));
    const auto planes = image.plane_fds();
    ASSERT_TRUE(producer.send(add_message, planes));
    ASSERT_TRUE(producer.send(add_message, planes));
    ASSERT_TRUE(producer.send(make_frame_message(FrameKind::present, 8, 1)));
    ASSERT_TRUE(producer.send(make_frame_message(FrameKind::present, 7, 5)));
    ASSERT_TRUE(producer.send(make_frame_message(FrameKind::release, 7)));
    ASSERT_TRUE(producer.send(make_frame_message(FrameKind::present, 7, 5)));
    FrameMessage reserved = make_frame_message(FrameKind::retire, 7);
    reserved.reserved = 1;
    ASSERT_TRUE(producer.send(reserved));
    Pipe pipe;
    ASSERT_TRUE(producer.send(make_frame_message(FrameKind::retire, 7), {pipe.read_end.borrow()}));

    expect_error(receiver->dispatch().error(), Errc::protocol, "image id 7, which is already in use");
    expect_error(receiver->dispatch().error(), Errc::protocol, "present of image 8, which is unknown");
    expect_error(receiver->dispatch().error(), Errc::protocol, "release of image 7 sent to a consumer");
    expect_error(receiver->dispatch().error(), Errc::protocol, "as frame 5, not after frame 5");
    expect_error(receiver->dispatch().error(), Errc::protocol, "reserved field is 1");
    expect_error(receiver->dispatch().error(), Errc::protocol, "carries an fd in slot 0");

    FrameMessage stray = make_frame_message(FrameKind::present, 7, 6);
    stray.payload[sizeof(PresentMetadata)] = std::byte{1};  // past the present's metadata
    ASSERT_TRUE(producer.send(stray));
    expect_error(receiver->dispatch().error(), Errc::protocol, "payload byte 152 is 1");

    // An image that fails import_image (a memfd not sealed against shrinking) is refused
    // and its fds are closed (the fixture counts them).
    UniqueFd unsealed(::memfd_create("unsealed", MFD_CLOEXEC));
    ASSERT_EQ(::ftruncate(unsealed.get(), 4096), 0);
    PlaneFds unsealed_planes;
    unsealed_planes[0] = std::move(unsealed);
    auto forged = DmaBufImage::adopt(image.layout(), Backing::shared_memory, std::move(unsealed_planes));
    ASSERT_TRUE(forged) << forged.error().message;
    FrameMessage forged_message = make_frame_message(FrameKind::add_image, 9);
    forged_message.set_descriptor(describe_image(9, *forged));
    ASSERT_TRUE(producer.send(forged_message, forged->plane_fds()));
    expect_error(receiver->dispatch().error(), Errc::rejected, "is a memfd with seals 0x1, missing 0x2");
    EXPECT_EQ(receiver->image(9), nullptr);
    EXPECT_EQ(receiver->current()->frame_number, 5U);
    auto idle = receiver->dispatch();
    ASSERT_TRUE(idle);
    EXPECT_EQ(*idle, 0U);
}

TEST_F(FrameReceiverTest, ProducerDeathDropsEveryImage) {
    const std::uint64_t a = add();
    add();
    Fence acquire;
    ASSERT_TRUE(sender_->present(a, acquire.read_end.borrow()));
    pump_receiver();
    ASSERT_TRUE(receiver_->current());
    sender_.reset();
    EXPECT_EQ(receiver_->dispatch().error().code, Errc::peer_closed);
    EXPECT_FALSE(receiver_->current());
    EXPECT_EQ(receiver_->image_count(), 0U);
    EXPECT_FALSE(receiver_->take_acquire_fence().valid());
}

TEST_F(FrameReceiverTest, ConsumerAddedImagesAreRenderedIntoByTheProducer) {
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
    EXPECT_EQ(receiver_->current()->image.get(), receiver_->image(free_image->id)) << "the consumer's own image, shown";
}

TEST_F(FrameReceiverTest, ConsumerRetireTakesEffectAtOnceAndIsAnswered) {
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

TEST_F(FrameReceiverTest, APresentThatCrossesTheConsumersRetireIsSkipped) {
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

TEST_F(FrameReceiverTest, AnIdOutsideThePeersSpaceIsAProtocolError) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    auto receiver = FrameReceiver::create(std::move(pair->second));
    ASSERT_TRUE(receiver);
    DmaBufImage image = allocate();
    const std::uint64_t stolen = consumer_image_id_bit | 5;  // a producer using the consumer's ids
    FrameMessage message = make_frame_message(FrameKind::add_image, stolen);
    message.set_descriptor(describe_image(stolen, image));
    ASSERT_TRUE(pair->first.send(make_hello_message(HelloRole::producer, 0)));
    ASSERT_TRUE(pair->first.send(message, {image.plane_fd(0)}));
    auto handled = receiver->dispatch();
    ASSERT_FALSE(handled);
    expect_error(handled.error(), Errc::protocol, "not in the peer's id space");
}

TEST_F(FrameReceiverTest, ADeadProducersLastFrameIsKeptUnderTheRetainedId) {
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

TEST_F(FrameReceiverTest, PresentsSentBeforeAProducerDiedWithReleasesUnreadStillArrive) {
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

TEST_F(FrameReceiverTest, WithoutKeepLastFrameADeadProducersImagesAllGo) {
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    sender_.reset();
    EXPECT_FALSE(receiver_->dispatch());
    EXPECT_FALSE(receiver_->current());
    EXPECT_EQ(receiver_->image_count(), 0U);
}

TEST_F(FrameReceiverTest, AResumedConsumerSharesItsKeptImageOnlyOnceItIsReleased) {
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

TEST_F(FrameReceiverTest, SharedMemoryImagesPassAnAdvertisedTable) {
    ASSERT_TRUE(receiver_->advertise(FormatTable{0xe200, {{DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR}}}));
    const std::uint64_t a = add();  // ARGB8888 in a memfd: the CPU path, always acceptable
    EXPECT_EQ(pump_receiver(), 1U);
    EXPECT_NE(receiver_->image(a), nullptr);
}

TEST_F(FrameReceiverTest, AResumedConsumerAdvertisesItsTableToTheNewProducer) {
    const FormatTable table{0xe200, {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}}};
    ASSERT_TRUE(receiver_->advertise(table));
    sender_.reset();
    EXPECT_FALSE(receiver_->dispatch());
    reconnect(*receiver_, sender_);
    EXPECT_EQ(pump_sender(), 1U);
    ASSERT_NE(sender_->peer_formats(), nullptr);
    EXPECT_EQ(*sender_->peer_formats(), table);
}

// Item 5 (a): a present with a fence arrives while the consumer has no free fd. The frame
// is never shown unfenced; it is released back at once, so a 1-image swapchain keeps
// circulating, and the error names the kind, the image and the frame.
TEST_F(FrameReceiverTest, APresentWhoseFenceWasCutIsReleasedBackUnshown) {
    const std::uint64_t a = add();
    pump_receiver();
    Fence fence;
    ASSERT_TRUE(sender_->present(a, fence.read_end.borrow()));
    Result<std::size_t> handled = std::size_t{0};
    {
        testing::AtFdLimit at_limit;
        handled = receiver_->dispatch();
    }
    ASSERT_FALSE(handled);
    expect_error(handled.error(), Errc::truncated,
                 fmt::format("present of image {} as frame 1: its acquire fence was cut off (MSG_CTRUNC", a));
    EXPECT_FALSE(receiver_->current()) << "shown without its fence";
    EXPECT_FALSE(receiver_->take_acquire_fence().valid());
    EXPECT_EQ(receiver_->skipped_count(), 1U);
    EXPECT_EQ(pump_sender(), 2U) << "discarded, then the release came back";
    ASSERT_EQ(sender_->state(a), FrameImageState::free);
    auto again = sender_->present(a, fence.read_end.borrow());
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(pump_receiver(), 1U);
    EXPECT_EQ(receiver_->current()->frame_number, 2U);
    EXPECT_TRUE(receiver_->take_acquire_fence().valid());
}

// Item 5 (b): an add_image whose plane fds were cut, then the producer presents it before it
// hears of the refusal. The consumer refuses the image and says so (FrameKind::refused); the
// crossing present is released back, not blamed on the producer.
TEST_F(FrameReceiverTest, AnImageWhosePlanesWereCutIsRefusedAndTheProducerTold) {
    const std::uint64_t a = add();
    Result<std::size_t> handled = std::size_t{0};
    {
        testing::AtFdLimit at_limit;
        handled = receiver_->dispatch();
    }
    ASSERT_FALSE(handled);
    expect_error(handled.error(), Errc::truncated,
                 fmt::format("add_image of image {}: its plane fds were cut off (MSG_CTRUNC", a));
    EXPECT_EQ(receiver_->image_count(), 0U);
    ASSERT_TRUE(sender_->present(a));  // crossed the refusal
    EXPECT_EQ(pump_receiver(), 1U) << "a present of a refused image is no protocol error";
    EXPECT_FALSE(receiver_->current());
    EXPECT_EQ(pump_sender(), 3U) << "refused, then discarded and the release of the crossing present";
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
    expect_error(sender_->present(a).error(), Errc::invalid_argument, "the consumer refused it");
    expect_error(sender_->acquire_free_image().error(), Errc::would_block, "no free image");
    ASSERT_TRUE(sender_->retire(a));
    EXPECT_EQ(sender_->image_count(), 0U);
    const std::uint64_t b = add();  // the fd limit is gone: the next image goes through
    ASSERT_TRUE(sender_->present(b));
    EXPECT_EQ(pump_receiver(), 2U);
    EXPECT_EQ(receiver_->current()->image_id, b);
}

// Item 7: Frame::image is checked at each use; it stays valid while the image is there and
// aborts with a message once it has left, instead of reading a destroyed image.
TEST_F(FrameReceiverTest, AFramesImageOutlivingItsImageIsCaught) {
    const std::uint64_t a = add(), b = add();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    const FrameReceiver::Frame frame = *receiver_->current();
    ASSERT_TRUE(frame.image);
    EXPECT_EQ(frame.image->width(), 32U);
    ASSERT_TRUE(sender_->present(b));
    pump_receiver();
    EXPECT_TRUE(frame.image) << "a newer frame does not take the image away";
    ASSERT_TRUE(sender_->retire(a));
    pump_receiver();
    EXPECT_FALSE(frame.image) << "retired: gone";
    EXPECT_EQ(frame.image.get(), nullptr);
    EXPECT_DEATH((void)frame.image->width(), "FrameImage of image 1 used after the image left the receiver");
}

TEST_F(FrameReceiverTest, AFramesImageSurvivesMovingTheReceiver) {
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    const FrameReceiver::Frame frame = *receiver_->current();
    FrameReceiver moved = std::move(*receiver_);
    EXPECT_EQ(frame.image.get(), moved.image(a));
    receiver_.reset();
    receiver_.emplace(std::move(moved));
}

// Options::max_producer_images: beyond it the producer's image is refused and the producer
// hears so; its own image stays with it, unshared, until it retires it.
TEST_F(FrameReceiverTest, TheProducerAddsAtMostItsQuotaAndHearsOfTheRefusal) {
    make_endpoints(false, {.max_producer_images = 1});
    const std::uint64_t a = add(), b = add();
    auto refused = receiver_->dispatch();
    ASSERT_FALSE(refused);
    expect_error(refused.error(), Errc::rejected,
                 fmt::format("add_image of image {}: the producer already has 1 images here, its quota "
                             "(FrameReceiverOptions::max_producer_images) is 1; refused, and the producer told so",
                             b));
    EXPECT_EQ(receiver_->image_count(), 1U);
    pump_sender();
    expect_error(sender_->present(b).error(), Errc::invalid_argument, "the consumer refused it");
    ASSERT_TRUE(sender_->present(a));
    ASSERT_TRUE(sender_->retire(b));
    EXPECT_FALSE(sender_->state(b)) << "never shared: dropped at once";
    pump_receiver();
    EXPECT_EQ(receiver_->current()->image_id, a);
    for (std::size_t i = 1; i < max_frame_images; ++i) {
        ASSERT_TRUE(receiver_->add_image(allocate(4, 4))) << "the consumer's own slot " << i;
    }
}

TEST_F(FrameReceiverTest, AQuotaAboveTheTableIsAnError) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    EXPECT_EQ(FrameReceiverOptions{}.max_producer_images, max_frame_images / 2) << "the documented default";
    auto receiver = FrameReceiver::create(std::move(pair->first), {.max_producer_images = 17});
    ASSERT_FALSE(receiver);
    expect_error(receiver.error(), Errc::invalid_argument, "max_producer_images 17 is more than the table's 16 slots");
    EXPECT_TRUE(FrameReceiver::create(std::move(pair->second), {.max_producer_images = 16}));
}

}  // namespace
}  // namespace texshare
