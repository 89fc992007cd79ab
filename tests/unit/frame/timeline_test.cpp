// frame/timeline.hpp: the timeline bookkeeping of one endpoint. On the host (no DRM device) the
// refusals that come before any syncobj is needed; with a real syncobj (the VM lane's 6.12
// guest runs this binary too) sharing, re-sharing with a new peer and the point order.
#include "texshare/frame/timeline.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "support/fd_count.hpp"
#include "support/lane_skip.hpp"
#include "texshare/drm_syncobj.hpp"

namespace texshare::detail {
namespace {

std::optional<DrmSyncobj> real_syncobj() {
    for (int minor = 128; minor < 136; ++minor) {
        UniqueFd device(::open(fmt::format("/dev/dri/renderD{}", minor).c_str(), O_RDWR | O_CLOEXEC));
        if (!device) continue;
        if (auto syncobj = DrmSyncobj::create(device.borrow())) return std::move(*syncobj);
    }
    return std::nullopt;
}

// A link with a peer socket at the other end, which the test reads.
struct LinkPair {
    FrameLink link{"peer"};
    UniqueFd peer;
    LinkPair() {
        int ends[2] = {-1, -1};
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
        peer.reset(ends[0]);
        auto channel = FrameChannel::adopt(UniqueFd(ends[1]));
        EXPECT_TRUE(channel && link.adopt(std::move(*channel)));
    }
    // The next message the peer got: its kind, fence kind and whether an fd came.
    std::optional<FrameChannel::Received> next() {
        auto channel = FrameChannel::adopt(UniqueFd(::fcntl(peer.get(), F_DUPFD_CLOEXEC, 3)));
        if (!channel) return std::nullopt;
        auto received = channel->receive();
        if (!received) return std::nullopt;
        return std::move(*received);
    }
};

using FrameTimelineTest = testing::FdLeakTest;

TEST_F(FrameTimelineTest, NothingGoesOutOrComesInBeforeATimeline) {
    FrameTimelines timelines;
    auto out = timelines.check_outgoing("present", 1, 3);
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().code, Errc::invalid_argument);
    EXPECT_NE(out.error().message.find("present: image 1: timeline point 3 before share_timeline"),
              std::string::npos)
        << out.error().message;
    auto in = timelines.check_incoming("present", 1, 3, "producer");
    ASSERT_FALSE(in);
    EXPECT_EQ(in.error().code, Errc::protocol);
    LinkPair pair;
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    auto shared = timelines.share(pair.link, event.borrow());
    ASSERT_FALSE(shared);
    EXPECT_EQ(shared.error().code, Errc::rejected);
    EXPECT_FALSE(timelines.own().valid());
    auto accepted = timelines.accept_peer(event, "producer");
    ASSERT_FALSE(accepted);
    EXPECT_EQ(accepted.error().code, Errc::rejected);
    EXPECT_TRUE(event.valid()) << "a refused fd stays with the caller, who closes it";
    EXPECT_FALSE(timelines.peer().valid());
}

TEST_F(FrameTimelineTest, SharedOnceResharedWithANewPeerAndPointsOnlyIncrease) {
    auto syncobj = real_syncobj();
    if (!syncobj)
        TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("no DRM render node with DRM_CAP_SYNCOBJ_TIMELINE here (the VM lane's "
                                              "6.12 guest runs this with virtio_gpu)");
    auto fd = syncobj->export_fd();
    ASSERT_TRUE(fd);
    FrameTimelines timelines;
    {
        LinkPair first;
        ASSERT_TRUE(timelines.share(first.link, fd->borrow()));
        auto message = first.next();
        ASSERT_TRUE(message);
        EXPECT_EQ(message->message.kind, static_cast<std::uint32_t>(FrameKind::timeline));
        EXPECT_EQ(message->message.fence_kind, static_cast<std::uint8_t>(FenceKind::drm_syncobj_timeline));
        EXPECT_TRUE(message->fds[frame_fence_slot].valid());
        auto twice = timelines.share(first.link, fd->borrow());
        ASSERT_FALSE(twice);
        EXPECT_EQ(twice.error().code, Errc::invalid_argument);
        ASSERT_TRUE(timelines.check_outgoing("present", 1, 5));
        timelines.sent(5);
        for (std::uint64_t point : {5, 4}) {
            auto refused = timelines.check_outgoing("present", 1, point);
            ASSERT_FALSE(refused);
            EXPECT_EQ(refused.error().code, Errc::invalid_argument);
        }
        UniqueFd peer_fd(::fcntl(fd->get(), F_DUPFD_CLOEXEC, 3));
        ASSERT_TRUE(timelines.accept_peer(peer_fd, "consumer"));
        EXPECT_FALSE(peer_fd.valid());
        ASSERT_TRUE(timelines.check_incoming("release", 1, 2, "consumer"));
        timelines.took(2);
        auto repeated = timelines.check_incoming("release", 1, 2, "consumer");
        ASSERT_FALSE(repeated);
        EXPECT_EQ(repeated.error().code, Errc::protocol);
        timelines.forget_peer();
        EXPECT_FALSE(timelines.peer().valid());
        EXPECT_FALSE(timelines.own_sent());
    }
    // A new peer gets the timeline again; this side's points go on from where they were.
    LinkPair second;
    ASSERT_TRUE(timelines.share_with_new_peer(second.link));
    auto message = second.next();
    ASSERT_TRUE(message);
    EXPECT_EQ(message->message.kind, static_cast<std::uint32_t>(FrameKind::timeline));
    EXPECT_FALSE(timelines.check_outgoing("present", 1, 5));
    EXPECT_TRUE(timelines.check_outgoing("present", 1, 6));
    EXPECT_FALSE(timelines.check_incoming("release", 1, 1, "consumer"));  // the new peer shared none yet
}

}  // namespace
}  // namespace texshare::detail
