// Attacks on timeline sync (issue 16 item 6: FenceKind::drm_syncobj_timeline, FrameKind::timeline).
// A hostile peer shares a timeline the victim does not accept, an fd that is not a DRM
// syncobj (an eventfd or timerfd of the same anonymous inode, a pipe, a memfd, /dev/null),
// a second timeline, a point before any timeline, a point of a kind not accepted, and
// repeated or lower points. Each is refused with the named Errc, leaves the whole endpoint
// state as it was (tests/support/frame_state.hpp), tells the peer nothing and closes what
// came (the fixture's fd count). The tests that need a real syncobj to get past the first
// check open a DRM device with DRM_CAP_SYNCOBJ_TIMELINE: the host has none (they skip,
// saying so); the VM lane's 6.12 guest runs this binary too, where virtio_gpu has one.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "hostile/hostile_peer.hpp"
#include "support/lane_skip.hpp"
#include "support/frame_state.hpp"
#include "texshare/drm_syncobj.hpp"

namespace texshare::hostile {
namespace {

using testing::state_of;

constexpr std::uint8_t fence_slot = 1 << frame_fence_slot;
constexpr std::uint8_t timeline_kind = static_cast<std::uint8_t>(FenceKind::drm_syncobj_timeline);
constexpr FenceKindSet with_timelines = FenceKind::sync_file | FenceKind::drm_syncobj_timeline;

FrameMessage timeline_message() {
    FrameMessage m = make_frame_message(FrameKind::timeline, 0);
    m.fence_kind = timeline_kind;
    return m;
}
FrameMessage with_point(FrameMessage m, std::uint64_t point) {
    m.fence_kind = timeline_kind;
    m.fence_point = point;
    return m;
}

// A DRM syncobj's fd from the first device with timelines, or nothing (the host).
std::optional<DrmSyncobj> real_syncobj() {
    for (const char* pattern : {"/dev/dri/renderD%d", "/dev/dri/card%d"}) {
        for (int i = 0; i < 8; ++i) {
            char path[32];
            std::snprintf(path, sizeof path, pattern, pattern[9] == 'r' ? 128 + i : i);
            UniqueFd device(::open(path, O_RDWR | O_CLOEXEC));
            if (!device) continue;
            if (auto syncobj = DrmSyncobj::create(device.borrow())) return std::move(*syncobj);
        }
    }
    return std::nullopt;
}
#define REQUIRE_SYNCOBJ(var)                                                                               \
    auto var = real_syncobj();                                                                             \
    if (!var) {                                                                                            \
        TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("no DRM device with DRM_CAP_SYNCOBJ_TIMELINE here (the VM "   \
                                              "lane's 6.12 guest runs this with virtio_gpu)");             \
    }

UniqueFd an_eventfd() {
    return UniqueFd(::eventfd(0, EFD_CLOEXEC));
}
UniqueFd a_timerfd() {
    return UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
}
UniqueFd a_pipe() {
    int ends[2] = {-1, -1};
    EXPECT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    ::close(ends[1]);
    return UniqueFd(ends[0]);
}
UniqueFd a_memfd() {
    return UniqueFd(::memfd_create("not-a-syncobj", MFD_CLOEXEC));
}
UniqueFd dev_null() {
    return UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
}

template <typename Victim>
class TimelineAttack : public testing::FdLeakTest {
protected:
    void TearDown() override {
        victim_.reset();
        attacker_.reset();
        FdLeakTest::TearDown();
    }

    void connect(FenceKindSet accepted) {
        int ends[2] = {-1, -1};
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
        attacker_.reset(ends[0]);
        auto channel = FrameChannel::adopt(UniqueFd(ends[1]));
        ASSERT_TRUE(channel);
        typename Victim::Options options;
        options.accepted_fence_kinds = accepted;
        auto victim = Victim::create(std::move(*channel), options);
        ASSERT_TRUE(victim) << victim.error().message;
        victim_.emplace(std::move(*victim));
        // Protocol 2 opens with a hello each way: the victim's is read and dropped, the
        // attacker's taken, so the attacks below see a greeted session.
        std::byte record[512];
        ASSERT_GT(::recv(attacker_.get(), record, sizeof record, MSG_DONTWAIT), 0) << "the victim said no hello";
        say_hello(attacker_.get(), attacker_role<Victim>);
        auto greeted = victim_->dispatch();
        ASSERT_TRUE(greeted) << greeted.error().message;
    }

    void send(const FrameMessage& message, std::uint8_t mask = 0, const std::vector<int>& fds = {}) {
        const auto bytes = frame_bytes(message, mask);
        ASSERT_EQ(send_raw(attacker_.get(), bytes,
                           fds.empty() ? std::vector<ControlMessage>{} : std::vector{rights(fds)}),
                  static_cast<ssize_t>(bytes.size()));
    }
    void send_timeline(BorrowedFd fd) { send(timeline_message(), fence_slot, {fd.get()}); }
    void expect_dispatched() {
        auto handled = victim_->dispatch();
        ASSERT_TRUE(handled) << handled.error().message;
    }

    void expect_refused_without_trace(const FrameMessage& message, UniqueFd fd, Errc code,
                                      const std::string& needle) {
        const std::string before = state_of(*victim_);
        if (fd) {
            send(message, fence_slot, {fd.get()});
        } else {
            send(message);
        }
        fd.reset();  // the victim's copy is the one that must be closed
        auto handled = victim_->dispatch();
        ASSERT_FALSE(handled) << "accepted; state now:\n" << state_of(*victim_);
        testing::expect_error(handled.error(), code, needle);
        EXPECT_EQ(state_of(*victim_), before) << "the refused message changed the endpoint";
        char byte;
        EXPECT_EQ(::recv(attacker_.get(), &byte, 1, MSG_DONTWAIT), -1)
            << "the peer was told of a refused message";
        auto pending = victim_->dispatch();
        ASSERT_TRUE(pending) << pending.error().message;
        EXPECT_EQ(*pending, 0U);
    }
    void drain_told() {
        char buffer[1024];
        while (::recv(attacker_.get(), buffer, sizeof buffer, MSG_DONTWAIT) > 0) {
        }
    }

    UniqueFd attacker_;
    std::optional<Victim> victim_;
};

// ---- the consumer: the producer's timeline and acquire points --------------------------

class ConsumerTimelineAttack : public TimelineAttack<FrameReceiver> {
protected:
    // Images 1 and 2 of the producer's; frame 1 of image 1 current, unfenced.
    void set_up(FenceKindSet accepted) {
        connect(accepted);
        for (std::uint64_t id : {1, 2}) {
            UniqueFd memory = sealed_memfd(16 * 16 * 4);
            send(add_image_message(id), 1, {memory.get()});
        }
        send(make_frame_message(FrameKind::present, 1, 1));
        expect_dispatched();
        ASSERT_EQ(victim_->current()->image_id, 1U);
    }
    FrameMessage present(std::uint64_t id, std::uint64_t frame, std::uint64_t point) {
        return with_point(make_frame_message(FrameKind::present, id, frame), point);
    }
};

TEST_F(ConsumerTimelineAttack, ATimelineThisSideDoesNotAcceptIsRefused) {
    set_up(default_fence_kinds);
    expect_refused_without_trace(
        timeline_message(), an_eventfd(), Errc::rejected,
        "timeline of the producer: a fence of kind drm_syncobj_timeline, which this side "
        "does not accept (accepted: sync_file)");
}

TEST_F(ConsumerTimelineAttack, AnFdThatIsNoSyncobjIsRefused) {
    set_up(with_timelines);
    expect_refused_without_trace(timeline_message(), an_eventfd(), Errc::rejected,
                                 "is anon_inode:[eventfd], not a DRM syncobj (anon_inode:syncobj_file)");
    expect_refused_without_trace(timeline_message(), a_timerfd(), Errc::rejected,
                                 "is anon_inode:[timerfd], not a DRM syncobj");
    for (auto make : {a_pipe, a_memfd, dev_null}) {
        expect_refused_without_trace(timeline_message(), make(), Errc::rejected, "is not a DRM syncobj");
    }
}

TEST_F(ConsumerTimelineAttack, APointBeforeAnyTimelineIsAProtocolError) {
    set_up(with_timelines);
    expect_refused_without_trace(
        present(2, 2, 5), {}, Errc::protocol,
        "present of image 2 at timeline point 5, but the producer shared no timeline");
}

TEST_F(ConsumerTimelineAttack, APointOfAKindNotAcceptedIsRefused) {
    set_up(default_fence_kinds);
    expect_refused_without_trace(present(2, 2, 5), {}, Errc::rejected,
                                 "a fence of kind drm_syncobj_timeline, which this side does not accept");
}

TEST_F(ConsumerTimelineAttack, EnvelopeMistakesAreProtocolErrors) {
    set_up(with_timelines);
    FrameMessage no_point = present(2, 2, 0);
    expect_refused_without_trace(no_point, {}, Errc::protocol, "drm_syncobj_timeline without a point");
    expect_refused_without_trace(present(2, 2, 3), an_eventfd(), Errc::protocol,
                                 "which carries a point, not an fd");
    expect_refused_without_trace(with_point(timeline_message(), 3), an_eventfd(), Errc::protocol,
                                 "timeline with fence point 3");
    expect_refused_without_trace(timeline_message(), {}, Errc::protocol, "timeline without the syncobj fd");
}

TEST_F(ConsumerTimelineAttack, ASecondTimelineAndPointsThatDoNotIncreaseAreProtocolErrors) {
    REQUIRE_SYNCOBJ(syncobj);
    set_up(with_timelines);
    auto fd = syncobj->export_fd();
    ASSERT_TRUE(fd);
    send_timeline(fd->borrow());
    expect_dispatched();
    EXPECT_TRUE(victim_->peer_timeline().valid());
    send(present(2, 2, 10));
    expect_dispatched();
    EXPECT_EQ(victim_->current()->image_id, 2U);
    EXPECT_EQ(victim_->acquire_point(), 10U);
    EXPECT_EQ(victim_->acquire_fence_kind(), FenceKind::drm_syncobj_timeline);
    drain_told();
    auto again = syncobj->export_fd();
    ASSERT_TRUE(again);
    expect_refused_without_trace(timeline_message(), std::move(*again), Errc::protocol,
                                 "timeline from the producer, which shared one already this session");
    expect_refused_without_trace(present(1, 3, 10), {}, Errc::protocol,
                                 "present of image 1 at timeline point 10, not after point 10");
    expect_refused_without_trace(present(1, 3, 9), {}, Errc::protocol,
                                 "at timeline point 9, not after point 10");
    // Still usable: the next point shows, and a present without a point clears it.
    send(present(1, 3, 11));
    expect_dispatched();
    EXPECT_EQ(victim_->acquire_point(), 11U);
    send(make_frame_message(FrameKind::present, 2, 4));
    expect_dispatched();
    EXPECT_EQ(victim_->acquire_point(), 0U);
    EXPECT_EQ(victim_->acquire_fence_kind(), FenceKind::none);
}

// ---- the producer: the consumer's timeline and release points ---------------------------

class ProducerTimelineAttack : public TimelineAttack<FrameSender> {
protected:
    // Two images of the producer's own, both presented (held by the consumer).
    void set_up(FenceKindSet accepted) {
        connect(accepted);
        for (std::uint64_t& id : ids_) {
            id = victim_->add_image(MemfdAllocator().allocate(8, 8, DRM_FORMAT_ARGB8888).value()).value();
            ASSERT_TRUE(victim_->present(id));
        }
        drain_told();
    }
    FrameMessage release(std::size_t which, std::uint64_t point) {
        return with_point(make_frame_message(FrameKind::release, ids_[which]), point);
    }
    std::uint64_t ids_[2] = {};
};

TEST_F(ProducerTimelineAttack, ATimelineThisSideDoesNotAcceptIsRefused) {
    set_up(default_fence_kinds);
    expect_refused_without_trace(timeline_message(), an_eventfd(), Errc::rejected,
                                 "timeline of the consumer: a fence of kind drm_syncobj_timeline");
}

TEST_F(ProducerTimelineAttack, AnFdThatIsNoSyncobjIsRefused) {
    set_up(with_timelines);
    expect_refused_without_trace(timeline_message(), an_eventfd(), Errc::rejected, "not a DRM syncobj");
    expect_refused_without_trace(timeline_message(), a_pipe(), Errc::rejected, "is not a DRM syncobj");
}

TEST_F(ProducerTimelineAttack, APointBeforeAnyTimelineOrOfAKindNotAcceptedIsRefused) {
    set_up(with_timelines);
    expect_refused_without_trace(
        release(0, 4), {}, Errc::protocol,
        "release of image 1 at timeline point 4, but the consumer shared no timeline");
}

TEST_F(ProducerTimelineAttack, APointOfAKindNotAcceptedIsRefused) {
    set_up(default_fence_kinds);
    expect_refused_without_trace(release(0, 4), {}, Errc::rejected,
                                 "a fence of kind drm_syncobj_timeline, which this side does not accept");
}

TEST_F(ProducerTimelineAttack, ASecondTimelineAndPointsThatDoNotIncreaseAreProtocolErrors) {
    REQUIRE_SYNCOBJ(syncobj);
    set_up(with_timelines);
    auto fd = syncobj->export_fd();
    ASSERT_TRUE(fd);
    send_timeline(fd->borrow());
    expect_dispatched();
    send(release(0, 7));
    expect_dispatched();
    EXPECT_EQ(victim_->release_point(ids_[0]), 7U);
    EXPECT_EQ(victim_->release_fence_kind(ids_[0]), FenceKind::drm_syncobj_timeline);
    auto again = syncobj->export_fd();
    ASSERT_TRUE(again);
    expect_refused_without_trace(timeline_message(), std::move(*again), Errc::protocol,
                                 "timeline from the consumer, which shared one already this session");
    expect_refused_without_trace(release(1, 7), {}, Errc::protocol, "at timeline point 7, not after point 7");
    expect_refused_without_trace(release(1, 2), {}, Errc::protocol, "at timeline point 2, not after point 7");
    // An untaken release point holds the image back, like an untaken fence.
    auto refused = victim_->present(ids_[0]);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    auto free = victim_->acquire_free_image();
    ASSERT_TRUE(free) << free.error().message;
    EXPECT_EQ(free->id, ids_[0]);
    EXPECT_EQ(free->release_point, 7U);
    EXPECT_EQ(free->release_fence_kind, FenceKind::drm_syncobj_timeline);
    EXPECT_FALSE(free->release_fence.valid());
    EXPECT_TRUE(victim_->present(ids_[0]));
}

// The sending side's own rules: no point before its timeline, points only increase, and a
// timeline is shared once and only if it is a syncobj. Refused calls send nothing.
TEST_F(ProducerTimelineAttack, TheSendersOwnPointsFollowTheRules) {
    set_up(with_timelines);
    auto early = victim_->present(ids_[0], TimelinePoint{1});
    ASSERT_FALSE(early);
    EXPECT_EQ(early.error().code, Errc::invalid_argument);
    EXPECT_NE(early.error().message.find("before share_timeline"), std::string::npos)
        << early.error().message;
    UniqueFd event = an_eventfd();
    auto not_syncobj = victim_->share_timeline(event.borrow());
    ASSERT_FALSE(not_syncobj);
    EXPECT_EQ(not_syncobj.error().code, Errc::rejected);
}

TEST_F(ProducerTimelineAttack, TheSendersPointsOnARealTimelineOnlyIncrease) {
    REQUIRE_SYNCOBJ(syncobj);
    set_up(with_timelines);
    auto fd = syncobj->export_fd();
    ASSERT_TRUE(fd);
    ASSERT_TRUE(victim_->share_timeline(fd->borrow()));
    auto twice = victim_->share_timeline(fd->borrow());
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error().code, Errc::invalid_argument);
    drain_told();
    send(make_frame_message(FrameKind::release, ids_[0]));
    expect_dispatched();
    ASSERT_TRUE(victim_->acquire_free_image());
    ASSERT_TRUE(victim_->present(ids_[0], TimelinePoint{5}));
    send(make_frame_message(FrameKind::release, ids_[0]));
    expect_dispatched();
    ASSERT_TRUE(victim_->acquire_free_image());
    const std::string before = state_of(*victim_);
    for (std::uint64_t point : {5, 4}) {
        auto refused = victim_->present(ids_[0], TimelinePoint{point});
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().code, Errc::invalid_argument);
        EXPECT_NE(refused.error().message.find("is not after point 5"), std::string::npos)
            << refused.error().message;
        EXPECT_EQ(state_of(*victim_), before);
    }
    EXPECT_TRUE(victim_->present(ids_[0], TimelinePoint{6}));
}

}  // namespace
}  // namespace texshare::hostile
