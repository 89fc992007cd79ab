// VM lane: DRM syncobj timelines (drm_syncobj.hpp) for real. In the 6.12 guest virtio_gpu has
// DRM_CAP_SYNCOBJ(_TIMELINE): points are signalled by one process and waited on by another,
// release points come back on a second timeline, and points convert to and from sync_files
// (pending ones from vgem included). vgem has no syncobj on either kernel, and on 6.1 no
// driver has any: there every entry point refuses with Errc::unsupported naming the device.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <thread>

#include "support/two_process.hpp"
#include "texshare/drm_syncobj.hpp"
#include "vm/vgem_fence.hpp"
#include "vm/vm_stack.hpp"

namespace texshare {
namespace {

using namespace std::chrono_literals;
using testing::is_signalled;
using testing::on_backports;
using testing::Peer;
using testing::run_alone;
using testing::run_pair;
using testing::send_note;
using testing::value_or_fail;
using testing::wait_note;

// The first DRM node (primary or render) of `driver`, opened read-write.
Result<UniqueFd> open_driver(std::string_view driver) {
    auto nodes = gbm::list_drm_nodes();
    if (!nodes) return std::move(nodes).error();
    for (const gbm::DrmNode& node : *nodes) {
        UniqueFd fd(::open(node.path.c_str(), O_RDWR | O_CLOEXEC));
        if (!fd) continue;
        drmVersionPtr version = drmGetVersion(fd.get());
        const bool match = version != nullptr && version->name != nullptr && driver == version->name;
        if (version != nullptr) drmFreeVersion(version);
        if (match) return fd;
    }
    return make_error(Errc::unsupported, "no DRM node of driver {}", driver);
}

std::string fd_link(BorrowedFd fd) {
    char link[PATH_MAX]{};
    const ssize_t length =
        ::readlink(fmt::format("/proc/self/fd/{}", fd.get()).c_str(), link, sizeof link - 1);
    return length > 0 ? std::string(link, static_cast<std::size_t>(length)) : std::string();
}

using DrmSyncobjVmTest = testing::FdLeakTest;

// Both kernels: vgem has no syncobj, and the refusal names the device, its driver and the cap.
TEST_F(DrmSyncobjVmTest, VgemRefusesWithTheDeviceAndTheMissingCapability) {
    run_alone([](Peer&) {
        auto vgem = value_or_fail(open_driver("vgem"), "vgem");
        ASSERT_TRUE(vgem);
        auto capable = require_syncobj_timeline(vgem->borrow());
        ASSERT_FALSE(capable);
        EXPECT_EQ(capable.error().code, Errc::unsupported);
        EXPECT_NE(capable.error().message.find("driver vgem"), std::string::npos) << capable.error().message;
        EXPECT_NE(capable.error().message.find("/dev/dri/"), std::string::npos) << capable.error().message;
        EXPECT_NE(capable.error().message.find("has no DRM_CAP_SYNCOBJ"), std::string::npos)
            << capable.error().message;
        auto created = DrmSyncobj::create(vgem->borrow());
        ASSERT_FALSE(created);
        EXPECT_EQ(created.error().code, Errc::unsupported) << created.error().message;
    });
}

// 6.12: virtio_gpu has both caps. 6.1: it has neither, and create() says so.
TEST_F(DrmSyncobjVmTest, VirtioGpuHasTimelinesOn612AndRefusesOn61) {
    run_alone([](Peer&) {
        auto gpu = value_or_fail(open_driver("virtio_gpu"), "virtio_gpu");
        ASSERT_TRUE(gpu);
        auto capable = require_syncobj_timeline(gpu->borrow());
        auto created = DrmSyncobj::create(gpu->borrow());
        if (on_backports()) {
            EXPECT_TRUE(capable) << capable.error().message;
            ASSERT_TRUE(created) << created.error().message;
            EXPECT_NE(created->handle(), 0U);
            auto payload = created->signalled_point();
            ASSERT_TRUE(payload) << payload.error().message;
            EXPECT_EQ(*payload, 0U);
        } else {
            ASSERT_FALSE(capable);
            EXPECT_EQ(capable.error().code, Errc::unsupported);
            EXPECT_NE(capable.error().message.find("driver virtio_gpu) has no DRM_CAP_SYNCOBJ"),
                      std::string::npos)
                << capable.error().message;
            ASSERT_FALSE(created);
            EXPECT_EQ(created.error().code, Errc::unsupported) << created.error().message;
        }
    });
}

// The rest needs syncobj timelines: the 6.12 guest only (6.1's refusal is asserted above).
#define REQUIRE_TIMELINES()                                                    \
    do {                                                                       \
        if (!on_backports()) GTEST_SKIP() << "6.1: no driver has DRM syncobj"; \
    } while (0)

std::optional<DrmSyncobj> fresh_timeline(BorrowedFd gpu) {
    return value_or_fail(DrmSyncobj::create(gpu), "DrmSyncobj::create");
}

TEST_F(DrmSyncobjVmTest, SignalWaitAndQueryInOneProcess) {
    REQUIRE_TIMELINES();
    run_alone([](Peer&) {
        auto gpu = value_or_fail(open_driver("virtio_gpu"), "virtio_gpu");
        ASSERT_TRUE(gpu);
        auto timeline = fresh_timeline(gpu->borrow());
        ASSERT_TRUE(timeline);
        auto early = timeline->wait(1, 0ns);
        ASSERT_FALSE(early);
        EXPECT_EQ(early.error().code, Errc::timed_out) << early.error().message;
        auto unsubmitted = timeline->wait(1, 10ms, false);
        ASSERT_FALSE(unsubmitted);
        EXPECT_EQ(unsubmitted.error().code, Errc::invalid_argument) << unsubmitted.error().message;
        auto negative = timeline->wait(1, -1ns);
        ASSERT_FALSE(negative);
        EXPECT_EQ(negative.error().code, Errc::invalid_argument);
        ASSERT_TRUE(timeline->signal(1));
        ASSERT_TRUE(timeline->signal(5));
        EXPECT_TRUE(timeline->wait(1, 0ns));
        EXPECT_TRUE(timeline->wait(5, 0ns));
        auto later = timeline->wait(6, 20ms);
        ASSERT_FALSE(later);
        EXPECT_EQ(later.error().code, Errc::timed_out);
        auto payload = timeline->signalled_point();
        ASSERT_TRUE(payload);
        EXPECT_EQ(*payload, 5U);
        // The handle survives the caller closing its own device fd: the object keeps a dup.
        gpu->reset();
        ASSERT_TRUE(timeline->signal(7));
        EXPECT_TRUE(timeline->wait(7, 0ns));
    });
}

TEST_F(DrmSyncobjVmTest, PointsConvertToAndFromSyncFiles) {
    REQUIRE_TIMELINES();
    run_alone([](Peer&) {
        auto gpu = value_or_fail(open_driver("virtio_gpu"), "virtio_gpu");
        auto vgem = value_or_fail(testing::Vgem::open(), "vgem");
        ASSERT_TRUE(gpu && vgem);
        auto timeline = fresh_timeline(gpu->borrow());
        ASSERT_TRUE(timeline);
        // Nothing at point 3 yet: nothing to export.
        auto nothing = timeline->export_sync_file(3);
        ASSERT_FALSE(nothing);
        EXPECT_EQ(nothing.error().code, Errc::would_block) << nothing.error().message;
        // A signalled point exports as a signalled sync_file.
        ASSERT_TRUE(timeline->signal(3));
        auto signalled = timeline->export_sync_file(3);
        ASSERT_TRUE(signalled) << signalled.error().message;
        EXPECT_EQ(fd_link(signalled->borrow()), "anon_inode:sync_file");
        EXPECT_TRUE(is_signalled(signalled->borrow()));
        // A pending sync_file (vgem) attached at point 4: the point, and its export, wait for it.
        auto pending = value_or_fail(vgem->pending_fence(), "vgem fence");
        ASSERT_TRUE(pending);
        ASSERT_TRUE(timeline->import_sync_file(4, pending->sync_file.borrow()));
        auto held = timeline->wait(4, 50ms);
        ASSERT_FALSE(held);
        EXPECT_EQ(held.error().code, Errc::timed_out);
        auto exported = timeline->export_sync_file(4);
        ASSERT_TRUE(exported) << exported.error().message;
        EXPECT_FALSE(is_signalled(exported->borrow()));
        const auto before = std::chrono::steady_clock::now();
        ASSERT_TRUE(vgem->signal(pending->id));
        EXPECT_TRUE(timeline->wait(4, 5s));
        EXPECT_TRUE(wait_fence(exported->borrow(), 5000ms));
        std::printf("point 4 and its sync_file signalled %lld us after vgem's fence\n",
                    static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::steady_clock::now() - before)
                                               .count()));
        // Not a sync_file: refused by the kernel, named as rejected.
        UniqueFd event(::eventfd(0, EFD_CLOEXEC));
        auto refused = timeline->import_sync_file(9, event.borrow());
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().code, Errc::rejected) << refused.error().message;
    });
}

TEST_F(DrmSyncobjVmTest, ImportRefusesWhatIsNotASyncobj) {
    REQUIRE_TIMELINES();
    run_alone([](Peer&) {
        auto gpu = value_or_fail(open_driver("virtio_gpu"), "virtio_gpu");
        ASSERT_TRUE(gpu);
        auto timeline = fresh_timeline(gpu->borrow());
        ASSERT_TRUE(timeline);
        ASSERT_TRUE(timeline->signal(1));
        auto sync_file = timeline->export_sync_file(1);
        ASSERT_TRUE(sync_file);
        UniqueFd event(::eventfd(0, EFD_CLOEXEC));
        for (BorrowedFd fd : {sync_file->borrow(), event.borrow(), gpu->borrow()}) {
            auto imported = DrmSyncobj::import(gpu->borrow(), fd);
            ASSERT_FALSE(imported) << fd_link(fd);
            EXPECT_EQ(imported.error().code, Errc::rejected) << imported.error().message;
        }
        auto fd = timeline->export_fd();
        ASSERT_TRUE(fd);
        EXPECT_EQ(fd_link(fd->borrow()), "anon_inode:syncobj_file");
        EXPECT_EQ(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        auto again = DrmSyncobj::import(gpu->borrow(), fd->borrow());
        ASSERT_TRUE(again) << again.error().message;
        EXPECT_TRUE(again->wait(1, 0ns));
    });
}

// Two processes, each with its own virtio_gpu fd: the producer's acquire timeline and the
// consumer's release timeline cross once each; then only points.
TEST_F(DrmSyncobjVmTest, AcquireAndReleasePointsAcrossTwoProcesses) {
    REQUIRE_TIMELINES();
    constexpr std::uint64_t frames = 8;
    run_pair(
        [](Peer& peer) {  // producer: signals acquire points, waits for release points
            auto gpu = value_or_fail(open_driver("virtio_gpu"), "virtio_gpu");
            ASSERT_TRUE(gpu);
            auto acquire = fresh_timeline(gpu->borrow());
            ASSERT_TRUE(acquire);
            auto shared = acquire->export_fd();
            ASSERT_TRUE(shared);
            send_note(peer, {1, 0, 0}, shared->borrow());
            auto note = wait_note(peer);
            ASSERT_TRUE(note.fds[0]);
            auto release = value_or_fail(DrmSyncobj::import(gpu->borrow(), note.fds[0].borrow()), "import");
            ASSERT_TRUE(release);
            note.fds[0].reset();
            for (std::uint64_t frame = 1; frame <= frames; ++frame) {
                std::this_thread::sleep_for(5ms);  // the consumer is waiting before it is signalled
                ASSERT_TRUE(acquire->signal(frame * 10));
                auto released = release->wait(frame * 10 + 1, 5s);
                ASSERT_TRUE(released) << "frame " << frame << ": " << released.error().message;
            }
            auto payload = release->signalled_point();
            ASSERT_TRUE(payload);
            EXPECT_EQ(*payload, frames * 10 + 1);
        },
        [](Peer& peer) {  // consumer: waits for acquire points (not yet submitted), signals releases
            auto gpu = value_or_fail(open_driver("virtio_gpu"), "virtio_gpu");
            ASSERT_TRUE(gpu);
            auto note = wait_note(peer);
            ASSERT_TRUE(note.fds[0]);
            EXPECT_EQ(fd_link(note.fds[0].borrow()), "anon_inode:syncobj_file");
            auto acquire = value_or_fail(DrmSyncobj::import(gpu->borrow(), note.fds[0].borrow()), "import");
            ASSERT_TRUE(acquire);
            note.fds[0].reset();
            auto release = fresh_timeline(gpu->borrow());
            ASSERT_TRUE(release);
            auto shared = release->export_fd();
            ASSERT_TRUE(shared);
            send_note(peer, {2, 0, 0}, shared->borrow());
            shared->reset();
            for (std::uint64_t frame = 1; frame <= frames; ++frame) {
                auto acquired = acquire->wait(frame * 10, 5s);
                ASSERT_TRUE(acquired) << "frame " << frame << ": " << acquired.error().message;
                auto as_file = acquire->export_sync_file(frame * 10);  // the bridge to EGL / Vulkan
                ASSERT_TRUE(as_file);
                EXPECT_TRUE(is_signalled(as_file->borrow()));
                ASSERT_TRUE(release->signal(frame * 10 + 1));
            }
        });
}

// A pending fence crosses as a point: the producer attaches a vgem sync_file at point 1; the
// consumer's wait and its sync_file stay pending until the producer signals vgem.
TEST_F(DrmSyncobjVmTest, PendingPointAcrossTwoProcessesSignalsWithItsSyncFile) {
    REQUIRE_TIMELINES();
    run_pair(
        [](Peer& peer) {
            auto gpu = value_or_fail(open_driver("virtio_gpu"), "virtio_gpu");
            auto vgem = value_or_fail(testing::Vgem::open(), "vgem");
            ASSERT_TRUE(gpu && vgem);
            auto acquire = fresh_timeline(gpu->borrow());
            ASSERT_TRUE(acquire);
            auto pending = value_or_fail(vgem->pending_fence(), "vgem fence");
            ASSERT_TRUE(pending);
            ASSERT_TRUE(acquire->import_sync_file(1, pending->sync_file.borrow()));
            auto shared = acquire->export_fd();
            ASSERT_TRUE(shared);
            send_note(peer, {1, 0, 0}, shared->borrow());
            auto note = wait_note(peer);  // the consumer saw it pending
            EXPECT_EQ(note.message.step, 2U);
            ASSERT_TRUE(vgem->signal(pending->id));
        },
        [](Peer& peer) {
            auto gpu = value_or_fail(open_driver("virtio_gpu"), "virtio_gpu");
            ASSERT_TRUE(gpu);
            auto note = wait_note(peer);
            ASSERT_TRUE(note.fds[0]);
            auto acquire = value_or_fail(DrmSyncobj::import(gpu->borrow(), note.fds[0].borrow()), "import");
            ASSERT_TRUE(acquire);
            note.fds[0].reset();
            auto held = acquire->wait(1, 50ms);
            ASSERT_FALSE(held);
            EXPECT_EQ(held.error().code, Errc::timed_out);
            auto as_file = acquire->export_sync_file(1);
            ASSERT_TRUE(as_file) << as_file.error().message;
            EXPECT_FALSE(is_signalled(as_file->borrow()));
            send_note(peer, {2, 0, 0});
            EXPECT_TRUE(acquire->wait(1, 5s));
            EXPECT_TRUE(wait_fence(as_file->borrow(), 5000ms));
        });
}

}  // namespace
}  // namespace texshare
