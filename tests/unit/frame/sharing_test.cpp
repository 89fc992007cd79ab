// Sharing images both ways (frame/sharing.hpp): a refusal the adding side hears of, and
// what happens to presents of a refused image.
#include "texshare/frame/sharing.hpp"

#include <sys/socket.h>

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

TEST_F(FrameSharingTest, AnImageBeyondThePeersQuotaIsRefusedRememberedAndThePeerTold) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    detail::FrameImageTable table(detail::FrameImageTable::Side::consumer);
    table.set_peer_quota(0);
    detail::FrameLink link("producer");
    ASSERT_TRUE(link.adopt(std::move(pair->first)));
    DmaBufImage image = allocate();
    FrameMessage add = make_frame_message(FrameKind::add_image, 5);
    add.set_descriptor(describe_image(5, image));
    std::array<UniqueFd, frame_fd_slots> fds{};
    fds[0] = UniqueFd(::dup(image.plane_fd(0).get()));
    bool vetted = false;
    auto refused = detail::accept_peer_image(table, link, add, fds, [&](std::uint64_t, const DmaBufImage&) {
        vetted = true;
        return Result<void>();
    });
    expect_error(refused.error(), Errc::rejected,
                 "add_image of image 5: the producer already has 0 images here, its quota "
                 "(FrameReceiverOptions::max_producer_images) is 0; refused, and the producer told so");
    EXPECT_FALSE(vetted) << "refused before its fds are looked at";
    EXPECT_TRUE(table.was_refused(5));
    EXPECT_EQ(table.count(), 0U);
    auto told = pair->second.receive();
    ASSERT_TRUE(told) << told.error().message;
    EXPECT_EQ(told->message.kind, static_cast<std::uint32_t>(FrameKind::refused));
    EXPECT_EQ(told->message.image_id, 5U);
}

TEST_F(FrameSharingTest, ARefusalThatCannotBeToldIsNotRemembered) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    detail::FrameImageTable table(detail::FrameImageTable::Side::consumer);
    detail::FrameLink link("producer");
    ASSERT_TRUE(link.adopt(std::move(pair->first)));
    while (::send(link.native_handle().get(), "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) {
    }
    auto refused = detail::refuse_peer_image(table, link, 5, make_error(Errc::rejected, "why"));
    expect_error(refused.error(), Errc::protocol, "does not read its messages");
    EXPECT_FALSE(table.was_refused(5));
}

TEST_F(FrameSharingTest, AnAbandonedPeerLeavesEveryLocalImageUnshared) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    detail::FrameImageTable table(detail::FrameImageTable::Side::producer);
    detail::FrameLink link("consumer");
    for (int i = 0; i < 2; ++i) {
        DmaBufImage image = allocate();
        table.insert_local(table.reserve_local(image).value(), std::move(image), false);
    }
    ASSERT_TRUE(link.adopt(std::move(pair->first)));
    ASSERT_TRUE(detail::share_image(link, *table.find(1)));
    EXPECT_FALSE(table.find(1)->unshared);
    detail::abandon_peer(table, link);
    EXPECT_FALSE(link.is_open());
    EXPECT_TRUE(table.find(1)->unshared);
    EXPECT_TRUE(table.find(2)->unshared);
}

}  // namespace
}  // namespace texshare
