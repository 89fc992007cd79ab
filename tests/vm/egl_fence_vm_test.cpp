// VM lane: egl_fence.hpp on real DMA-BUFs inside the qemu guests (llvmpipe on kms_swrast),
// with pending fences from vgem (vm/vgem_fence.hpp) standing in for a peer's.
//
// What the guests can and cannot show: SyncMode::implicit_dma_buf is forced here to check
// the kernel side of it (export after glFlush, import of a peer's pending fence) on real
// buffers of both drivers. choose_sync_mode picks SyncMode::finish for llvmpipe in both
// guests. SyncMode::native_fence needs EGL_ANDROID_native_fence_sync: Mesa 22.3 (bookworm
// guest) does not offer it on the GBM platform; Mesa 25 (backports guest) does, even on
// llvmpipe, and NativeFenceOnLlvmpipe... shows why texshare still does not choose it there:
// its fences are real sync_files, but its GPU-side wait blocks the calling thread.
#include <chrono>
#include <string>
#include <thread>

#include "support/two_process.hpp"
#include "texshare/egl/fence.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/sync_file.hpp"
#include "vm/gl_side.hpp"
#include "vm/vgem_fence.hpp"
#include "vm/vm_stack.hpp"

namespace texshare::egl {
namespace {

using namespace std::chrono_literals;
using testing::clear_texture;
using testing::export_signalled;
using testing::is_signalled;
using testing::Peer;
using testing::run_alone;
using testing::value_or_fail;
using testing::Vgem;

constexpr auto probe = testing::fence_probe;
constexpr auto patience = testing::fence_patience;

// A GL side on `driver`'s device with one image of it imported and drawn into, and vgem
// for the peer's pending fences.
struct Scene {
    Vgem vgem;
    testing::GlSide gl;
    DmaBufImage image;
    GLuint texture = 0;  // the image's, owned by gl's importer
};

std::optional<Scene> scene_on(std::string_view driver) {
    auto vgem = value_or_fail(Vgem::open(), "vgem");
    auto gl = testing::open_gl_side(driver);
    if (!vgem || !gl) return std::nullopt;
    auto image = value_or_fail(gl->device.allocate({32, 32, DRM_FORMAT_ABGR8888, {DRM_FORMAT_MOD_LINEAR}, 0}),
                               "allocation");
    if (!image) return std::nullopt;
    auto texture = value_or_fail(gl->importer.import(1, *image), "import");
    if (!texture) return std::nullopt;
    auto cleared = clear_texture(gl->display, texture->texture, 0.25F, 0.5F, 0.75F, 1.0F);
    EXPECT_TRUE(cleared) << cleared.error().message;
    const GLuint id = texture->texture;
    return Scene{std::move(*vgem), std::move(*gl), std::move(*image), id};
}

using EglSyncModeVmTest = testing::FdLeakTest;
class EglFenceVmTest : public testing::FdLeakTest, public ::testing::WithParamInterface<const char*> {};

TEST_F(EglSyncModeVmTest, SyncModeOnLlvmpipeIsFinishWithOrWithoutNativeFences) {
    run_alone([](Peer&) {
        const bool mesa25 = testing::on_backports();
        for (const char* driver : {"vgem", "virtio_gpu"}) {
            SCOPED_TRACE(driver);
            auto gl = testing::open_gl_side(driver);
            ASSERT_TRUE(gl);
            const std::string renderer = gl->display.renderer();
            EXPECT_NE(renderer.find("llvmpipe"), std::string::npos) << renderer;
            EXPECT_EQ(choose_sync_mode(gl->display), SyncMode::finish) << renderer;
            EXPECT_EQ(gl->display.has_extension("EGL_ANDROID_native_fence_sync"), mesa25)
                << "EGL_ANDROID_native_fence_sync on the GBM platform: update vm-lane-facts.md";
            EXPECT_TRUE(gl->display.has_extension("EGL_KHR_fence_sync"));
        }
    });
}

// Mesa 25 only (Mesa 22.3 has no native fences; the test above asserts it): the fact behind
// choose_sync_mode's choice. Its sync_files are real, but eglWaitSyncKHR on a pending fence
// holds the calling thread (not a GPU queue) until the fence signals.
TEST_P(EglFenceVmTest, NativeFenceOnLlvmpipeIsARealSyncFileButItsWaitBlocksTheCallingThread) {
    if (!testing::on_backports()) GTEST_SKIP() << "Mesa 22.3 has no EGL_ANDROID_native_fence_sync (asserted above)";
    run_alone([driver = GetParam()](Peer&) {
        auto scene = scene_on(driver);
        ASSERT_TRUE(scene);
        const Vgem* vgem = &scene->vgem;
        const Display& display = scene->gl.display;
        const DmaBufImage& image = scene->image;

        auto fence = fence_for_peer(display, SyncMode::native_fence, image, Access::write);
        ASSERT_TRUE(fence) << fence.error().message;
        ASSERT_TRUE(fence->valid()) << "native_fence sends the driver's own fence";
        EXPECT_TRUE(wait_fence(fence->borrow(), patience)) << "the fence of finished work never signalled";

        auto pending = value_or_fail(vgem->pending_fence(), "pending fence");
        ASSERT_TRUE(pending);
        constexpr auto hold = 600ms;
        const std::uint32_t id = pending->id;
        std::thread peer([vgem, id, hold] {
            std::this_thread::sleep_for(hold);
            EXPECT_TRUE(vgem->signal(id)) << "the pending fence signalled before the peer did";
        });
        const auto start = std::chrono::steady_clock::now();
        auto waited = wait_for_peer(display, SyncMode::native_fence, std::move(pending->sync_file), image,
                                    Access::write, probe);
        auto cleared = clear_texture(display, scene->texture, 0.5F, 0.5F, 0.5F, 1.0F);
        auto after = fence_for_peer(display, SyncMode::native_fence, image, Access::write);
        const auto blocked = std::chrono::steady_clock::now() - start;
        peer.join();
        ASSERT_TRUE(waited) << waited.error().message;
        ASSERT_TRUE(cleared) << cleared.error().message;
        ASSERT_TRUE(after) << after.error().message;
        EXPECT_GE(blocked, hold - 100ms) << "llvmpipe queued the wait: update vm-lane-facts.md and choose_sync_mode";
        EXPECT_TRUE(wait_fence(after->borrow(), probe)) << "the work after the wait was already done";
    });
}

TEST_P(EglFenceVmTest, ImplicitDmaBufModeExportsAfterFlushAndImportsAPeersPendingFence) {
    run_alone([driver = GetParam()](Peer&) {
        auto scene = scene_on(driver);
        ASSERT_TRUE(scene);
        const Vgem* vgem = &scene->vgem;
        const Display& display = scene->gl.display;
        const DmaBufImage& image = scene->image;

        for (Access done : {Access::write, Access::read}) {
            auto fence = fence_for_peer(display, SyncMode::implicit_dma_buf, image, done);
            ASSERT_TRUE(fence) << fence.error().message;
            ASSERT_TRUE(fence->valid()) << "implicit_dma_buf sends the buffer's fence";
            EXPECT_TRUE(wait_fence(fence->borrow(), patience));
        }

        // The producer's pending write fence, before this side samples: readers must wait.
        auto written = value_or_fail(vgem->pending_fence(), "pending fence");
        ASSERT_TRUE(written);
        auto waited = wait_for_peer(display, SyncMode::implicit_dma_buf, std::move(written->sync_file), image,
                                    Access::read, probe);
        ASSERT_TRUE(waited) << "imported into the buffer, not waited on by the CPU: "
                            << waited.error().message;
        EXPECT_FALSE(export_signalled(image, Access::read))
            << "a reader of the buffer does not wait for the peer";
        EXPECT_FALSE(export_signalled(image, Access::write));
        ASSERT_TRUE(vgem->signal(written->id));
        EXPECT_TRUE(export_signalled(image, Access::read));

        // The consumer's pending release fence (its reads), before this side renders.
        auto read = value_or_fail(vgem->pending_fence(), "pending fence");
        ASSERT_TRUE(read);
        waited = wait_for_peer(display, SyncMode::implicit_dma_buf, std::move(read->sync_file), image,
                               Access::write, probe);
        ASSERT_TRUE(waited) << waited.error().message;
        EXPECT_FALSE(export_signalled(image, Access::write)) << "a writer does not wait for the peer's reads";
        EXPECT_TRUE(export_signalled(image, Access::read)) << "readers need not wait for other readers";
        ASSERT_TRUE(vgem->signal(read->id));
        EXPECT_TRUE(export_signalled(image, Access::write));

        // An image without a DMA-BUF falls back to glFinish and a CPU wait.
        auto memfd = value_or_fail(MemfdAllocator().allocate(8, 8, DRM_FORMAT_ABGR8888), "memfd");
        ASSERT_TRUE(memfd);
        auto none = fence_for_peer(display, SyncMode::implicit_dma_buf, *memfd, Access::write);
        ASSERT_TRUE(none) << none.error().message;
        EXPECT_FALSE(none->valid());
        auto pending = value_or_fail(vgem->pending_fence(), "pending fence");
        ASSERT_TRUE(pending);
        waited = wait_for_peer(display, SyncMode::implicit_dma_buf, std::move(pending->sync_file), *memfd,
                               Access::read, probe);
        ASSERT_FALSE(waited);
        EXPECT_EQ(waited.error().code, Errc::timed_out) << waited.error().message;
        ASSERT_TRUE(vgem->signal(pending->id));
    });
}

TEST_P(EglFenceVmTest, FinishModeSendsNoFenceAndWaitsOnTheCpu) {
    run_alone([driver = GetParam()](Peer&) {
        auto scene = scene_on(driver);
        ASSERT_TRUE(scene);
        const Vgem* vgem = &scene->vgem;
        const Display& display = scene->gl.display;
        const DmaBufImage& image = scene->image;

        auto fence = fence_for_peer(display, SyncMode::finish, image, Access::write);
        ASSERT_TRUE(fence) << fence.error().message;
        EXPECT_FALSE(fence->valid()) << "finish has waited (glFinish): nothing to send";

        auto pending = value_or_fail(vgem->pending_fence(), "pending fence");
        ASSERT_TRUE(pending);
        auto copy = UniqueFd::dup(pending->sync_file.borrow());
        ASSERT_TRUE(copy) << copy.error().message;
        auto waited = wait_for_peer(display, SyncMode::finish, std::move(pending->sync_file), image,
                                    Access::read, probe);
        ASSERT_FALSE(waited) << "a pending fence was not waited for";
        EXPECT_EQ(waited.error().code, Errc::timed_out) << waited.error().message;
        EXPECT_TRUE(export_signalled(image, Access::write))
            << "finish waits on the CPU; it puts nothing in the buffer";
        ASSERT_TRUE(vgem->signal(pending->id));
        waited = wait_for_peer(display, SyncMode::finish, std::move(*copy), image, Access::read, patience);
        EXPECT_TRUE(waited) << waited.error().message;
        EXPECT_TRUE(wait_for_peer(display, SyncMode::finish, UniqueFd(), image, Access::read, probe))
            << "no fence: nothing to wait for";
    });
}

INSTANTIATE_TEST_SUITE_P(Drivers, EglFenceVmTest, ::testing::Values("vgem", "virtio_gpu"),
                         [](const auto& param_info) { return std::string(param_info.param); });

}  // namespace
}  // namespace texshare::egl
