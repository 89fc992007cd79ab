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

TEST_F(FrameSharingTest, ACutImageIsRefusedRememberedAndThePeerTold) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    detail::FrameImageTable table(detail::FrameImageTable::Side::consumer);
    detail::FrameLink link("producer");
    ASSERT_TRUE(link.adopt(std::move(pair->first)));
    const FrameMessage add = make_frame_message(FrameKind::add_image, 5);
    auto refused = detail::refuse_cut_image(table, link, add);
    expect_error(refused.error(), Errc::truncated, "add_image of image 5: its plane fds were cut off");
    EXPECT_TRUE(table.was_refused(5));
    EXPECT_EQ(table.count(), 0U);
    auto told = pair->second.receive();
    ASSERT_TRUE(told) << told.error().message;
    EXPECT_EQ(told->message.kind, static_cast<std::uint32_t>(FrameKind::refused));
    EXPECT_EQ(told->message.image_id, 5U);
    // An id that is no use either way is a protocol error, and nothing is sent.
    expect_error(detail::refuse_cut_image(table, link, make_frame_message(FrameKind::add_image, consumer_image_id_bit | 1))
                     .error(),
                 Errc::protocol, "not in the peer's id space");
}

}  // namespace
}  // namespace texshare
