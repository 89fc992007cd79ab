// Sharing images both ways (frame/sharing.hpp): a refusal the adding side hears of, and
// what happens to presents of a refused image.
#include "texshare/frame/sharing.hpp"

#include "support/frame_pair.hpp"

namespace texshare {
namespace {

using testing::allocate;
using testing::expect_error;
using FrameSharingTest = testing::FramePairTest;

TEST_F(FrameSharingTest, ARefusedImageStaysWithTheAddingSideUnshared) {
    detail::FrameImageTable table(detail::FrameImageTable::Side::producer);
    DmaBufImage image = allocate();
    table.insert_local(table.reserve_local(image).value(), std::move(image), true);
    ASSERT_TRUE(detail::peer_refused(table, 1));
    EXPECT_TRUE(table.find(1)->unshared);
    EXPECT_TRUE(table.find(1)->refused);
    expect_error(detail::peer_refused(table, 1).error(), Errc::protocol, "refused for image 1, which the peer never had");
    expect_error(detail::peer_refused(table, 7).error(), Errc::protocol, "refused for image 7, which is unknown");
}

TEST_F(FrameSharingTest, AProducerTalkingOfARefusedImageIsAnsweredNotBlamed) {
    // The consumer refused image 1 (as after cut fds); the producer presented and retired
    // it before hearing so.
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    auto receiver = FrameReceiver::create(std::move(pair->second));
    ASSERT_TRUE(receiver);
    auto sender = FrameSender::create(std::move(pair->first));
    ASSERT_TRUE(sender);
    auto id = sender->add_image(allocate());
    ASSERT_TRUE(id);
    ASSERT_TRUE(sender->present(*id));
    // Stand-in for the cut add_image: drop the image on the consumer's side by hand.
    ASSERT_EQ(receiver->dispatch().value(), 2U);
    EXPECT_EQ(receiver->current()->image_id, *id);
}

}  // namespace
}  // namespace texshare
