// VM lane (6.12 guest): timeline sync through the frame protocol between two processes, on
// virtio_gpu's DRM syncobjs. The producer shares its acquire timeline and presents with
// points it signals only afterwards; the consumer shares its release timeline, waits for
// each acquire point (on the producer's syncobj, imported from peer_timeline()), and releases
// with points it signals afterwards, which the producer waits for before reusing an image.
// The 6.1 guest has no syncobj at all (drm_syncobj_vm_test asserts its refusal), so this binary
// is in TEXSHARE_VM_BACKPORTS_TESTS only.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "support/two_process.hpp"
#include "texshare/drm_syncobj.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"

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

}  // namespace
}  // namespace texshare
