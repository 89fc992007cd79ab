// VM lane: real, unsignalled DMA-BUF fences (vgem, see vm/vgem_fence.hpp) seen through
// sync_file.hpp and carried by the frame protocol between two processes, inside the qemu guest.
#include <fcntl.h>
#include <unistd.h>
#include <virtgpu_drm.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <thread>

#include "support/two_process.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/sync_file.hpp"
#include "vm/vgem_fence.hpp"

namespace texshare {
namespace {

using namespace std::chrono_literals;
using testing::export_signalled;
using testing::is_signalled;
using testing::Peer;
using testing::run_alone;
using testing::run_pair;
using testing::send_note;
using testing::value_or_fail;
using testing::Vgem;
using testing::wait_note;

constexpr auto probe = testing::fence_probe;
constexpr auto patience = testing::fence_patience;

std::byte pattern(std::size_t i) {
    return static_cast<std::byte>((i * 29 + 3) & 0xff);
}

std::string fd_link(BorrowedFd fd) {
    char link[PATH_MAX]{};
    const ssize_t length =
        ::readlink(fmt::format("/proc/self/fd/{}", fd.get()).c_str(), link, sizeof link - 1);
    return length > 0 ? std::string(link, static_cast<std::size_t>(length)) : std::string();
}

void expect_timed_out(BorrowedFd fence) {
    auto waited = wait_fence(fence, probe);
    ASSERT_FALSE(waited) << "fence fd " << fence.get() << " signalled; it should be pending";
    EXPECT_EQ(waited.error().code, Errc::timed_out) << waited.error().message;
}

// vgem and a 16x16 buffer of its own: what the single-process tests fence.
struct VgemImage {
    Vgem vgem;
    DmaBufImage image;
};

std::optional<VgemImage> vgem_image() {
    auto vgem = value_or_fail(Vgem::open(), "vgem");
    if (!vgem) return std::nullopt;
    auto image = value_or_fail(vgem->allocate(16, 16), "allocation");
    if (!image) return std::nullopt;
    return VgemImage{std::move(*vgem), std::move(*image)};
}

using FenceVmTest = testing::FdLeakTest;

// Measured: an idle buffer has no fences, and its export is the kernel's signalled stub.
TEST_F(FenceVmTest, IdleBufferExportsAnAlreadySignalledSyncFile) {
    run_alone([](Peer&) {
        auto setup = vgem_image();
        ASSERT_TRUE(setup);
        const DmaBufImage* image = &setup->image;
        for (Access access : {Access::read, Access::write, Access::read_write}) {
            auto fence = export_sync_file(image->plane_fd(0), access);
            ASSERT_TRUE(fence) << fence.error().message;
            EXPECT_EQ(fd_link(fence->borrow()), "anon_inode:sync_file");
            EXPECT_TRUE(is_signalled(fence->borrow()));
            EXPECT_TRUE(wait_fence(fence->borrow(), 0ms));
        }
    });
}

TEST_F(FenceVmTest, VgemFencesAreWhatExportSyncFileWaitsFor) {
    run_alone([](Peer&) {
        auto setup = vgem_image();
        ASSERT_TRUE(setup);
        const DmaBufImage* image = &setup->image;
        const Vgem& vgem = setup->vgem;
        auto writer = value_or_fail(vgem.attach(image->plane_fd(0), Access::write), "write fence");
        ASSERT_TRUE(writer);
        auto for_reader = export_sync_file(image->plane_fd(0), Access::read);
        ASSERT_TRUE(for_reader) << for_reader.error().message;
        EXPECT_FALSE(is_signalled(for_reader->borrow()));
        expect_timed_out(for_reader->borrow());
        EXPECT_FALSE(export_signalled(*image, Access::write));
        // vgem refuses a second fence while one is pending (its "conflicting fence" check).
        auto second = vgem.attach(image->plane_fd(0), Access::write);
        ASSERT_FALSE(second);
        EXPECT_EQ(second.error().sys_errno, EBUSY) << second.error().message;

        ASSERT_TRUE(vgem.signal(*writer));
        EXPECT_TRUE(wait_fence(for_reader->borrow(), patience)) << "a sync_file exported earlier signals too";
        EXPECT_TRUE(export_signalled(*image, Access::write));
        auto again = vgem.signal(*writer);  // a signalled fence leaves vgem's table
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error().sys_errno, ENOENT) << again.error().message;

        // A read fence holds up writers only.
        auto reader = value_or_fail(vgem.attach(image->plane_fd(0), Access::read), "read fence");
        ASSERT_TRUE(reader);
        EXPECT_TRUE(export_signalled(*image, Access::read));
        EXPECT_FALSE(export_signalled(*image, Access::write));
        ASSERT_TRUE(vgem.signal(*reader));
        EXPECT_TRUE(export_signalled(*image, Access::write));

        // A fence whose vgem file closes signals (what a producer's death does to its fences).
        auto orphan = value_or_fail(vgem.attach(image->plane_fd(0), Access::write), "orphan fence");
        ASSERT_TRUE(orphan);
        auto orphaned = export_sync_file(image->plane_fd(0), Access::read);
        ASSERT_TRUE(orphaned);
        EXPECT_FALSE(is_signalled(orphaned->borrow()));
        { Vgem closing = std::move(setup->vgem); }
        EXPECT_TRUE(wait_fence(orphaned->borrow(), patience));
    });
}

// DMA_BUF_IOCTL_SYNC (ImageMapping) honours implicit fences: a CPU read of a buffer with a
// pending write fence blocks until it signals.
TEST_F(FenceVmTest, CpuMappingWaitsForAPendingWriteFence) {
    run_alone([](Peer&) {
        auto setup = vgem_image();
        ASSERT_TRUE(setup);
        const DmaBufImage* image = &setup->image;
        const Vgem& vgem = setup->vgem;
        auto writer = value_or_fail(vgem.attach(image->plane_fd(0), Access::write), "write fence");
        ASSERT_TRUE(writer);
        const auto start = std::chrono::steady_clock::now();
        std::thread signaller([&] {
            std::this_thread::sleep_for(300ms);
            EXPECT_TRUE(vgem.signal(*writer));
        });
        auto mapping = image->map(Access::read);
        const auto waited = std::chrono::steady_clock::now() - start;
        signaller.join();
        ASSERT_TRUE(mapping) << mapping.error().message;
        EXPECT_GE(waited, 250ms) << "the mapping did not wait for the write fence";
    });
}

// vgem's FENCE_ATTACH number is, to the bit, virtio_gpu's DRM_IOCTL_VIRTGPU_MAP (same
// command, direction and size), so on virtio_gpu it runs MAP, which reads its GEM handle
// from where vgem's struct has out_fence (0 on the way in): no such handle, ENOENT. No
// fence is attached. vgem itself fences a virtio_gpu buffer once it imports it, since the
// fence goes into the buffer's own reservation object.
static_assert(testing::vgem_uapi::ioctl_fence_attach == DRM_IOCTL_VIRTGPU_MAP);

TEST_F(FenceVmTest, OnlyVgemAttachesFencesButItFencesAnyDriversBuffer) {
    run_alone([](Peer&) {
        auto virtio = value_or_fail(testing::open_device_of("virtio_gpu"), "virtio_gpu");
        ASSERT_TRUE(virtio);
        auto image =
            value_or_fail(virtio->allocate({16, 16, DRM_FORMAT_ABGR8888, {DRM_FORMAT_MOD_LINEAR}, 0}),
                          "virtio_gpu allocation");
        ASSERT_TRUE(image);
        auto refused = testing::attach_fence_on(virtio->drm_fd(), image->plane_fd(0), Access::write);
        ASSERT_FALSE(refused) << "virtio_gpu accepted vgem's FENCE_ATTACH (fence id " << *refused << ")";
        EXPECT_EQ(refused.error().sys_errno, ENOENT) << refused.error().message;
        EXPECT_TRUE(export_signalled(*image, Access::write));

        auto vgem = value_or_fail(Vgem::open(), "vgem");
        ASSERT_TRUE(vgem);
        auto fence =
            value_or_fail(vgem->attach(image->plane_fd(0), Access::write), "vgem fence on virtio_gpu");
        ASSERT_TRUE(fence);
        EXPECT_FALSE(export_signalled(*image, Access::read));
        ASSERT_TRUE(vgem->signal(*fence));
        EXPECT_TRUE(export_signalled(*image, Access::read));
    });
}

// Issue 4 end to end: the producer's pending write fence travels as the acquire fence of a
// present; the consumer's pending read fence comes back in the buffer and as the release
// fence. Each side sees the other's fence pending until its owner signals it.
TEST_F(FenceVmTest, AcquireAndReleaseFencesCrossTheFrameProtocolPending) {
    run_pair(
        [](Peer& peer) {
            auto vgem = value_or_fail(Vgem::open(), "vgem");
            ASSERT_TRUE(vgem);
            auto sender = value_or_fail(FrameSender::create(std::move(peer.frames)), "sender");
            ASSERT_TRUE(sender);
            auto image = value_or_fail(vgem->allocate(64, 64), "allocation");
            ASSERT_TRUE(image);
            {  // written before the fence goes on: a CPU mapping would wait for it
                auto mapping = image->map(Access::write);
                ASSERT_TRUE(mapping) << mapping.error().message;
                for (std::size_t i = 0; i < mapping->plane(0).size(); ++i) mapping->plane(0)[i] = pattern(i);
            }
            auto id = value_or_fail(sender->add_image(std::move(*image)), "add_image");
            ASSERT_TRUE(id);
            const DmaBufImage& shared = *sender->image(*id);

            auto writes = value_or_fail(vgem->attach(shared.plane_fd(0), Access::write), "write fence");
            ASSERT_TRUE(writes);
            auto acquire = export_sync_file(shared.plane_fd(0), Access::read);
            ASSERT_TRUE(acquire) << acquire.error().message;
            expect_timed_out(acquire->borrow());
            auto frame = sender->present(*id, acquire->borrow());
            ASSERT_TRUE(frame) << frame.error().message;
            EXPECT_EQ(wait_note(peer).message.step, 1U);  // the consumer found it pending
            ASSERT_TRUE(vgem->signal(*writes));
            EXPECT_TRUE(wait_fence(acquire->borrow(), patience));
            send_note(peer, {2, 0, 0});

            auto released = value_or_fail(sender->wait_for_free_image(patience), "release");
            ASSERT_TRUE(released);
            EXPECT_EQ(released->id, *id);
            ASSERT_TRUE(released->release_fence.valid()) << "the release fence did not arrive";
            expect_timed_out(released->release_fence.borrow());
            auto before_writing = export_sync_file(shared.plane_fd(0), Access::write);
            ASSERT_TRUE(before_writing);
            EXPECT_FALSE(is_signalled(before_writing->borrow()))
                << "the imported release fence holds up writers";
            EXPECT_TRUE(export_signalled(shared, Access::read)) << "but not readers: the consumer only read";
            send_note(peer, {3, 0, 0});
            EXPECT_EQ(wait_note(peer).message.step, 4U);  // the consumer signalled
            EXPECT_TRUE(wait_fence(released->release_fence.borrow(), patience));
            EXPECT_TRUE(wait_fence(before_writing->borrow(), patience));
            EXPECT_TRUE(export_signalled(shared, Access::write));
            send_note(peer, {5, 0, 0});
        },
        [](Peer& peer) {
            auto vgem = value_or_fail(Vgem::open(), "vgem");  // its own file: its own fences
            ASSERT_TRUE(vgem);
            auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames)), "receiver");
            ASSERT_TRUE(receiver);
            auto frame = value_or_fail(receiver->wait_for_frame(0, patience), "frame");
            ASSERT_TRUE(frame);
            UniqueFd acquire = receiver->take_acquire_fence();
            ASSERT_TRUE(acquire.valid()) << "the acquire fence did not arrive";
            EXPECT_EQ(fd_link(acquire.borrow()), "anon_inode:sync_file");
            expect_timed_out(acquire.borrow());
            EXPECT_FALSE(export_signalled(*frame->image, Access::read)) << "the buffer itself is fenced too";
            send_note(peer, {1, 0, 0});
            EXPECT_EQ(wait_note(peer).message.step, 2U);
            ASSERT_TRUE(wait_fence(acquire.borrow(), patience));
            {
                auto mapping = frame->image->map(Access::read);
                ASSERT_TRUE(mapping) << mapping.error().message;
                for (std::size_t i = 0; i < mapping->plane(0).size(); ++i) {
                    ASSERT_EQ(mapping->plane(0)[i], pattern(i)) << "byte " << i;
                }
            }

            auto reads = value_or_fail(vgem->pending_fence(), "release fence");
            ASSERT_TRUE(reads);
            ASSERT_TRUE(import_sync_file(frame->image->plane_fd(0), reads->sync_file.borrow(), Access::read));
            ASSERT_TRUE(receiver->release(frame->image_id, reads->sync_file.borrow()));
            EXPECT_EQ(wait_note(peer).message.step, 3U);  // the producer found it pending
            ASSERT_TRUE(vgem->signal(reads->id));
            send_note(peer, {4, 0, 0});
            EXPECT_EQ(wait_note(peer).message.step, 5U);
        });
}

}  // namespace
}  // namespace texshare
