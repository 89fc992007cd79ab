// The endpoints' image table (frame/image_table.hpp): ids per side, the peer's id checks,
// forgetting a peer, refused ids, and FrameImage's check.
#include "texshare/frame/image_table.hpp"

#include <gtest/gtest.h>

#include "support/frame_pair.hpp"

namespace texshare {
namespace {

using detail::FrameImageTable;
using testing::allocate;
using testing::expect_error;

class FrameImageTableTest : public testing::FdLeakTest {};

TEST_F(FrameImageTableTest, EachSideTakesIdsFromItsOwnSpace) {
    FrameImageTable producer(FrameImageTable::Side::producer), consumer(FrameImageTable::Side::consumer);
    DmaBufImage image = allocate();
    EXPECT_EQ(producer.reserve_local(image).value(), 1U);
    EXPECT_EQ(consumer.reserve_local(image).value(), consumer_image_id_bit | 1);
    producer.insert_local(1, std::move(image), true);
    EXPECT_EQ(producer.reserve_local(allocate()).value(), 2U) << "ids never repeat";
    EXPECT_TRUE(producer.check_peer_id(consumer_image_id_bit | 4));
    expect_error(producer.check_peer_id(4).error(), Errc::protocol, "not in the peer's id space");
    expect_error(consumer.check_peer_id(retained_image_id).error(), Errc::protocol, "not in the peer's id space");
    expect_error(producer.reserve_local(DmaBufImage()).error(), Errc::invalid_argument, "the image is empty");
}

TEST_F(FrameImageTableTest, AFullTableRefusesLocalAndPeerImages) {
    FrameImageTable table(FrameImageTable::Side::producer);
    for (std::size_t i = 0; i < max_frame_images; ++i) {
        DmaBufImage image = allocate(4, 4);
        auto id = table.reserve_local(image);
        ASSERT_TRUE(id);
        table.insert_local(*id, std::move(image), true);
    }
    expect_error(table.reserve_local(allocate(4, 4)).error(), Errc::invalid_argument, "all 16 image slots are in use");
    EXPECT_TRUE(table.check_peer_id(consumer_image_id_bit | 1)) << "the id is fine; there is no room";
    expect_error(table.check_peer_room(consumer_image_id_bit | 1).error(), Errc::rejected,
                 "all 16 image slots are in use (0 of them the consumer's)");
}

TEST_F(FrameImageTableTest, ThePeerAddsAtMostItsQuota) {
    FrameImageTable table(FrameImageTable::Side::consumer);
    EXPECT_EQ(table.peer_quota(), max_frame_images) << "a bare table: the endpoint sets the quota";
    table.set_peer_quota(2);
    for (std::uint64_t id = 1; id <= 2; ++id) {
        ASSERT_TRUE(table.check_peer_room(id));
        ASSERT_TRUE(table.insert_peer(id, allocate(4, 4)));
    }
    EXPECT_EQ(table.peer_count(), 2U);
    expect_error(table.check_peer_room(3).error(), Errc::rejected,
                 "add_image of image 3: the producer already has 2 images here, its quota "
                 "(FrameReceiverOptions::max_producer_images) is 2");
    DmaBufImage mine = allocate(4, 4);
    table.insert_local(table.reserve_local(mine).value(), std::move(mine), true);
    EXPECT_EQ(table.peer_count(), 2U) << "this side's images are not the peer's";
    table.drop(*table.find(1));
    EXPECT_TRUE(table.check_peer_room(3)) << "a dropped image frees its place";
    table.rename(*table.find(2), retained_image_id);
    EXPECT_EQ(table.peer_count(), 0U) << "a dead producer's kept frame is not the next one's";
    table.set_peer_quota(0);
    expect_error(table.check_peer_room(3).error(), Errc::rejected, "is 0");
    table.set_peer_quota(99);
    EXPECT_EQ(table.peer_quota(), max_frame_images) << "clamped to the table";
    FrameImageTable producer(FrameImageTable::Side::producer);
    producer.set_peer_quota(0);
    expect_error(producer.check_peer_room(consumer_image_id_bit | 1).error(), Errc::rejected,
                 "the consumer already has 0 images here, its quota (FrameSenderOptions::max_consumer_images) is 0");
}

TEST_F(FrameImageTableTest, ForgettingThePeerKeepsLocalImagesFreeAndUnshared) {
    FrameImageTable table(FrameImageTable::Side::producer);
    DmaBufImage mine = allocate();
    table.insert_local(table.reserve_local(mine).value(), std::move(mine), true);
    ASSERT_TRUE(table.check_peer_id(consumer_image_id_bit | 1));
    ASSERT_TRUE(table.insert_peer(consumer_image_id_bit | 1, allocate()));
    table.find(1)->state = FrameImageState::presented;
    table.remember_refused(consumer_image_id_bit | 2);
    EXPECT_EQ(table.forget_peer(), 1U);
    EXPECT_EQ(table.count(), 1U);
    EXPECT_EQ(table.find(1)->state, FrameImageState::free);
    EXPECT_TRUE(table.find(1)->unshared);
    EXPECT_FALSE(table.was_refused(consumer_image_id_bit | 2)) << "refusals belong to one peer";
}

TEST_F(FrameImageTableTest, RefusedIdsAreRememberedUntilForgotten) {
    FrameImageTable table(FrameImageTable::Side::consumer);
    table.remember_refused(3);
    EXPECT_TRUE(table.was_refused(3));
    EXPECT_FALSE(table.was_refused(4));
    EXPECT_FALSE(table.was_refused(0));
    table.forget_refused(3);
    EXPECT_FALSE(table.was_refused(3));
}

TEST_F(FrameImageTableTest, ATableMovesWithoutMovingItsImages) {
    FrameImageTable table(FrameImageTable::Side::producer);
    DmaBufImage image = allocate();
    table.insert_local(table.reserve_local(image).value(), std::move(image), true);
    const DmaBufImage* before = &table.find(1)->image;
    FrameImageTable moved = std::move(table);
    EXPECT_EQ(&moved.find(1)->image, before) << "FrameImage views stay valid across a move";
    EXPECT_EQ(table.count(), 0U);  // NOLINT: a moved-from table is empty, not broken
}

}  // namespace
}  // namespace texshare
