// VM lane (6.12 guest): timeline sync through the frame protocol between two processes, on
// virtio_gpu's DRM syncobjs. The producer shares its acquire timeline and presents with
// points it signals only afterwards; the consumer shares its release timeline, waits for
// each acquire point (on the producer's syncobj, imported from peer_timeline()), and releases
// with points it signals afterwards, which the producer waits for before reusing an image.
// The 6.1 guest has no syncobj at all (drm_syncobj_vm_test asserts its refusal), so this binary
// is in TEXSHARE_VM_BACKPORTS_TESTS only.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>

#include "support/frame_pair.hpp"
#include "support/syscall_allowlist.hpp"
#include "support/two_process.hpp"
#include "texshare/drm_syncobj.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"

#if !defined(TEXSHARE_SANITIZED)
// Counts heap allocations while `counting` is set (as tests/unit/frame/protocol_test.cpp does).
namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> allocations{0};
}  // namespace
void* operator new(std::size_t size) {
    if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
#pragma GCC diagnostic pop
#endif

namespace texshare {
namespace {

using namespace std::chrono_literals;
using testing::Peer;
using testing::run_pair;
using testing::send_note;
using testing::value_or_fail;
using testing::wait_note;

constexpr FenceKindSet kinds = FenceKind::sync_file | FenceKind::drm_syncobj_timeline;
constexpr std::uint64_t frames = 12;

// A DRM device with timeline syncobjs (virtio_gpu in the 6.12 guest).
UniqueFd timeline_device() {
    for (int minor = 128; minor < 136; ++minor) {
        UniqueFd fd(::open(fmt::format("/dev/dri/renderD{}", minor).c_str(), O_RDWR | O_CLOEXEC));
        if (fd && require_syncobj_timeline(fd.borrow())) return fd;
    }
    ADD_FAILURE() << "no render node with DRM_CAP_SYNCOBJ_TIMELINE";
    return UniqueFd();
}

using FrameTimelineVmTest = testing::FdLeakTest;

TEST_F(FrameTimelineVmTest, AcquireAndReleasePointsCrossTheFrameProtocol) {
    run_pair(
        [](Peer& peer) {
            UniqueFd gpu = timeline_device();
            ASSERT_TRUE(gpu);
            auto acquire = value_or_fail(DrmSyncobj::create(gpu.borrow()), "create");
            ASSERT_TRUE(acquire);
            FrameSenderOptions options;
            options.accepted_fence_kinds = kinds;
            auto sender = value_or_fail(FrameSender::create(std::move(peer.frames), options), "sender");
            ASSERT_TRUE(sender);
            for (int i = 0; i < 2; ++i) {
                ASSERT_TRUE(
                    sender->add_image(MemfdAllocator().allocate(16, 16, DRM_FORMAT_ARGB8888).value()));
            }
            auto shared = acquire->export_fd();
            ASSERT_TRUE(shared);
            ASSERT_TRUE(sender->share_timeline(shared->borrow()));
            shared->reset();
            std::optional<DrmSyncobj> release;
            std::uint64_t waited_releases = 0;
            for (std::uint64_t frame = 1; frame <= frames; ++frame) {
                auto free = sender->wait_for_free_image(5s);
                ASSERT_TRUE(free) << "frame " << frame << ": " << free.error().message;
                if (free->release_point != 0) {
                    ASSERT_EQ(free->release_fence_kind, FenceKind::drm_syncobj_timeline);
                    if (!release) {
                        ASSERT_TRUE(sender->peer_timeline().valid());
                        release = value_or_fail(DrmSyncobj::import(gpu.borrow(), sender->peer_timeline()),
                                                "import");
                        ASSERT_TRUE(release);
                    }
                    auto released = release->wait(free->release_point, 5s);
                    ASSERT_TRUE(released) << released.error().message;
                    ++waited_releases;
                }
                auto presented = sender->present(free->id, TimelinePoint{frame * 2});
                ASSERT_TRUE(presented) << presented.error().message;
                std::this_thread::sleep_for(10ms);  // the consumer waits for a point not yet submitted
                ASSERT_TRUE(acquire->signal(frame * 2));
            }
            EXPECT_GE(waited_releases, frames / 2 - 2);   // the rest came back unshown, without a point
            EXPECT_EQ(wait_note(peer).message.step, 9U);  // the consumer has seen every frame
            sender->close();
        },
        [](Peer& peer) {
            UniqueFd gpu = timeline_device();
            ASSERT_TRUE(gpu);
            auto release = value_or_fail(DrmSyncobj::create(gpu.borrow()), "create");
            ASSERT_TRUE(release);
            FrameReceiverOptions options;
            options.accepted_fence_kinds = kinds;
            auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames), options), "receiver");
            ASSERT_TRUE(receiver);
            auto shared = release->export_fd();
            ASSERT_TRUE(shared);
            ASSERT_TRUE(receiver->share_timeline(shared->borrow()));
            shared->reset();
            std::optional<DrmSyncobj> acquire;
            std::uint64_t last = 0;
            std::uint64_t pending_seen = 0;
            // A present that arrives while an earlier one is still queued replaces it (mailbox:
            // the skipped image goes back without a point), so the loop runs to the last frame,
            // not for a count.
            std::uint64_t shown = 0;
            for (std::uint64_t n = 1; last < frames; ++n) {
                auto frame = receiver->wait_for_frame(last, 5s);
                ASSERT_TRUE(frame) << frame.error().message;
                last = frame->frame_number;
                ++shown;
                ASSERT_EQ(receiver->acquire_fence_kind(), FenceKind::drm_syncobj_timeline);
                const std::uint64_t point = receiver->acquire_point();
                EXPECT_EQ(point, last * 2);
                if (!acquire) {
                    acquire =
                        value_or_fail(DrmSyncobj::import(gpu.borrow(), receiver->peer_timeline()), "import");
                    ASSERT_TRUE(acquire);
                }
                if (!acquire->wait(point, 0ns)) ++pending_seen;
                auto acquired = acquire->wait(point, 5s);
                ASSERT_TRUE(acquired) << acquired.error().message;
                ASSERT_TRUE(receiver->release(frame->image_id, TimelinePoint{n * 3}));
                std::this_thread::sleep_for(5ms);  // the producer waits for a point not yet submitted
                ASSERT_TRUE(release->signal(n * 3));
            }
            EXPECT_EQ(last, frames);
            EXPECT_GT(pending_seen, 0U) << "every acquire point was signalled before the present arrived";
            std::printf("frames shown: %llu of %llu; acquire points pending on arrival: %llu\n",
                        static_cast<unsigned long long>(shown), static_cast<unsigned long long>(frames),
                        static_cast<unsigned long long>(pending_seen));
            EXPECT_GE(shown, frames / 2);
            send_note(peer, {9, 0, 0});
            auto end = receiver->wait_for_frame(last, 5s);
            ASSERT_FALSE(end);
            EXPECT_EQ(end.error().code, Errc::peer_closed) << end.error().message;
        });
}

// Item 7 for the timeline kind: once both timelines are shared, a frame (present with an
// acquire point, release with a release point, the point taken back) allocates nothing and
// makes only sendmsg and recvmsg: no fd travels, so not even a statx.
class FrameTimelineCostTest : public testing::FramePairTest {
protected:
    void SetUp() override {
        FramePairTest::SetUp();
        gpu_ = timeline_device();
        ASSERT_TRUE(gpu_);
        FrameReceiver::Options receiver;
        receiver.accepted_fence_kinds = kinds;
        FrameSender::Options sender;
        sender.accepted_fence_kinds = kinds;
        make_endpoints(false, receiver, sender);
        a_ = add();
        b_ = add();
        for (auto* side : {&acquire_, &release_}) {
            auto syncobj = DrmSyncobj::create(gpu_.borrow());
            ASSERT_TRUE(syncobj) << syncobj.error().message;
            side->emplace(std::move(*syncobj));
        }
        auto acquire_fd = acquire_->export_fd();
        auto release_fd = release_->export_fd();
        ASSERT_TRUE(acquire_fd && release_fd);
        ASSERT_TRUE(sender_->share_timeline(acquire_fd->borrow()));
        ASSERT_TRUE(receiver_->share_timeline(release_fd->borrow()));
        pump_receiver();
        pump_sender();
        ASSERT_TRUE(receiver_->peer_timeline().valid() && sender_->peer_timeline().valid());
    }
    void TearDown() override {
        acquire_.reset();
        release_.reset();
        gpu_.reset();
        FramePairTest::TearDown();
    }
    // Frames `first`.. `first + count - 1`, alternating the two images.
    bool frames(std::uint64_t first, std::uint64_t count) {
        bool ok = true;
        for (std::uint64_t n = first; n < first + count && ok; ++n) {
            const std::uint64_t id = n % 2 == 0 ? a_ : b_;
            ok = sender_->present(id, TimelinePoint{n}).has_value() && receiver_->dispatch().has_value();
            ok = ok && receiver_->acquire_point() == n &&
                 receiver_->acquire_fence_kind() == FenceKind::drm_syncobj_timeline;
            ok =
                ok && receiver_->release(id, TimelinePoint{n}).has_value() && sender_->dispatch().has_value();
            ok = ok && sender_->release_point(id) == n;
            ok = ok && !sender_->take_release_fence(id).valid() && sender_->release_point(id) == 0;
        }
        return ok;
    }
    UniqueFd gpu_;
    std::optional<DrmSyncobj> acquire_, release_;
    std::uint64_t a_ = 0, b_ = 0;
};

// A new producer after the old one said bye: the consumer forgets the old producer's timeline
// and its last point, shares its own timeline again, and its own points go on increasing.
TEST_F(FrameTimelineCostTest, AfterResumeTheSurvivorResharesItsTimelineAndForgetsThePeers) {
    ASSERT_TRUE(frames(1, 2));
    sender_->close();
    auto ended = receiver_->dispatch();
    ASSERT_FALSE(ended);
    EXPECT_EQ(ended.error().code, Errc::peer_closed);
    EXPECT_FALSE(receiver_->peer_timeline().valid());
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    ASSERT_TRUE(receiver_->resume(std::move(pair->first)));
    FrameSender::Options options;
    options.accepted_fence_kinds = kinds;
    auto sender = FrameSender::create(std::move(pair->second), options);
    ASSERT_TRUE(sender);
    sender_.emplace(std::move(*sender));
    pump_sender();
    EXPECT_TRUE(sender_->peer_timeline().valid()) << "the consumer's timeline was not shared again";
    const std::uint64_t id = add();
    auto early = sender_->present(id, TimelinePoint{1});
    ASSERT_FALSE(early);
    EXPECT_EQ(early.error().code, Errc::invalid_argument);
    auto fd = acquire_->export_fd();
    ASSERT_TRUE(fd);
    ASSERT_TRUE(sender_->share_timeline(fd->borrow()));
    ASSERT_TRUE(sender_->present(id, TimelinePoint{1}));  // the new producer's points start afresh
    pump_receiver();
    EXPECT_EQ(receiver_->acquire_point(), 1U);
    auto stale = receiver_->release(id, TimelinePoint{2});  // this side sent 2 to the old producer
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, Errc::invalid_argument);
    ASSERT_TRUE(receiver_->release(id, TimelinePoint{3}));
    pump_sender();
    EXPECT_EQ(sender_->release_point(id), 3U);
}

#if !defined(TEXSHARE_SANITIZED)
TEST_F(FrameTimelineCostTest, PerFrameTimelinePointsDoNotAllocate) {
    counting = true;
    Error probe = make_error(Errc::protocol, "a message too long for the small-string buffer {}", 42);
    counting = false;
    ASSERT_GT(allocations.load(), 0U) << "the counter must see allocations for this test to mean anything";
    allocations = 0;
    counting = true;
    const bool ok = frames(1, 16);
    counting = false;
    EXPECT_TRUE(ok);
    EXPECT_EQ(allocations.load(), 0U);
}
#endif

#if defined(TEXSHARE_CAN_CONFINE_SYSCALLS)
TEST_F(FrameTimelineCostTest, PerFrameTimelinePointsMakeOnlySendmsgAndRecvmsg) {
    testing::expect_only_syscalls({__NR_sendmsg, __NR_recvmsg}, "sendmsg or recvmsg",
                                  [&] { return frames(1, 100); });
}
#endif

}  // namespace
}  // namespace texshare
