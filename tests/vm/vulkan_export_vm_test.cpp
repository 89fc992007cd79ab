// VM lane, backports guest (Mesa 25's lavapipe): images a Vulkan producer process renders
// into and exports as DMA-BUFs with texshare::vulkan::Exporter, shared through the frame
// protocol, with acquire and release fences made by texshare::vulkan::Fences:
//   - -> a Vulkan consumer process (texshare::vulkan::Importer): every pixel of every frame
//     read back exactly through a Vulkan copy that waits on the acquire fence, the release
//     fence waited on by the producer's next copy into the image; in the mode the driver has
//     (sync_fd where it has SYNC_FD semaphores, measured and printed) and in the cpu_wait
//     fallback;
//   - -> a GL consumer (egl::Importer on the guest's GBM display): what Mesa 25's EGL makes
//     of lavapipe's export (measured: as of any DMA-BUF no GPU exported, see
//     gpu_free_dma_buf.hpp), asserted with texshare's report.
// Each child's open-fd count is unchanged (support/two_process.hpp); Vulkan objects left
// at vkDestroyDevice fail the test through the validation layer, where installed.
#include <poll.h>

#include <array>
#include <chrono>
#include <cstring>

#include "support/two_process.hpp"
#include "support/vulkan_queue.hpp"
#include "support/vulkan_test_device.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/vulkan/exporter.hpp"
#include "texshare/vulkan/fence.hpp"
#include "texshare/vulkan/import_listener.hpp"
#include "vm/gpu_free_dma_buf.hpp"

namespace texshare::vulkan {
namespace {

using namespace std::chrono_literals;
using testing::Peer;
using testing::run_pair;
using testing::send_note;
using testing::TestQueue;
using testing::TestVulkan;
using testing::value_or_fail;
using testing::wait_note;

constexpr std::uint32_t width = 64;
constexpr std::uint32_t height = 48;
constexpr auto patience = 30s;  // a failure bound only (a loaded TCG guest)
constexpr std::uint32_t frames = 6;

std::vector<std::uint8_t> packed_pattern(std::uint32_t seed) {
    std::vector<std::uint8_t> pixels(std::size_t{width} * height * 4);
    for (std::uint32_t y = 0; y < height; ++y) {
        for (std::uint32_t x = 0; x < width; ++x) {
            const auto rgba = testing::pattern(x, y, seed);
            std::memcpy(pixels.data() + (std::size_t{y} * width + x) * 4, rgba.data(), 4);
        }
    }
    return pixels;
}

// An application's Vulkan: DMA-BUF export/import, modifiers, FOREIGN, SYNC_FD semaphores.
struct App {
    TestVulkan vk;
    TestQueue queue;
    Fences fences;
};
std::optional<App> open_app(bool allow_sync_fd) {
    const std::vector<std::string> wanted{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                          VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME,
                                          VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME,
                                          VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME,
                                          VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME};
    auto vk = value_or_fail(TestVulkan::create(wanted), "vulkan");
    if (!vk) return std::nullopt;
    EXPECT_EQ(vk->enabled().size(), wanted.size()) << "Mesa 25's lavapipe in the guest offers all of these";
    auto queue = value_or_fail(TestQueue::create(*vk), "queue");
    auto fences = value_or_fail(Fences::create(vk->handles(), {allow_sync_fd}), "fences");
    if (!queue || !fences) return std::nullopt;
    return App{std::move(*vk), std::move(*queue), std::move(*fences)};
}

template <typename Endpoint, typename Ready>
Result<void> dispatch_until(Endpoint& endpoint, Ready&& ready) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (!ready()) {
        if (std::chrono::steady_clock::now() >= deadline) return make_error(Errc::timed_out, "dispatch_until");
        pollfd entry{endpoint.native_handle().get(), POLLIN, 0};
        (void)::poll(&entry, 1, 50);
        if (auto handled = endpoint.dispatch(); !handled) return std::move(handled).error();
    }
    return {};
}

// A signal semaphore per frame: reusing one after vkGetSemaphoreFdKHR(SYNC_FD) is valid (the
// export acts as a wait, spec), but Debian 12's validation layer (1.3.239) misses that and
// reports UNASSIGNED-CoreValidation-DrawState-QueueForwardProgress (measured).
class VulkanExportVmTest : public testing::FdLeakTest, public ::testing::WithParamInterface<bool> {};

TEST_P(VulkanExportVmTest, VulkanRenderedFramesReachAVulkanConsumerExactlyWithFencesBothWays) {
    const bool allow_sync_fd = GetParam();
    run_pair(
        [allow_sync_fd](Peer& peer) {
            auto app = open_app(allow_sync_fd);
            ASSERT_TRUE(app);
            std::cout << "[measured] producer fence mode: " << to_string(app->fences.mode()) << " "
                      << app->fences.reason() << "\n";
            if (allow_sync_fd) {
                EXPECT_EQ(app->fences.mode(), SyncMode::sync_fd) << "measured: Mesa 25's lavapipe in the guest";
            }
            auto exporter = value_or_fail(Exporter::create(app->vk.handles()), "exporter");
            auto sender = value_or_fail(FrameSender::create(std::move(peer.frames)), "sender");
            ASSERT_TRUE(exporter && sender);
            std::array<ExportedImage, 2> images;
            for (std::uint64_t id = 1; id <= 2; ++id) {
                auto exported = value_or_fail(exporter->allocate(width, height, DRM_FORMAT_ABGR8888), "export");
                ASSERT_TRUE(exported);
                EXPECT_EQ(testing::exporter_name(exported->image.plane_fd(0)).empty(), false);
                std::cout << "[measured] exported DMA-BUF exp_name "
                          << testing::exporter_name(exported->image.plane_fd(0)) << "\n";
                images[id - 1] = std::move(exported->vulkan);
                auto added = value_or_fail(sender->add_image(std::move(exported->image)), "add_image");
                ASSERT_TRUE(added);
                ASSERT_EQ(*added, id);
            }
            std::uint32_t release_fences = 0;
            for (std::uint32_t frame = 1; frame <= frames; ++frame) {
                const std::uint64_t id = (frame - 1) % 2 + 1;
                const ExportedImage& target = images[id - 1];
                ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->state(id) == FrameImageState::free; }));
                UniqueFd release = sender->take_release_fence(id);
                release_fences += release.valid() ? 1 : 0;
                auto wait = value_or_fail(app->fences.wait_semaphore(std::move(release), patience), "release fence");
                ASSERT_TRUE(wait);
                auto signal = value_or_fail(app->fences.signal_semaphore(), "signal semaphore");
                ASSERT_TRUE(signal);
                ASSERT_TRUE(app->queue.upload(target.image(), target.extent(), packed_pattern(frame), frame <= 2, *wait,
                                              *signal));
                auto acquire = value_or_fail(app->fences.fence_for_peer(app->queue.queue(), *signal), "acquire fence");
                ASSERT_TRUE(acquire);
                ASSERT_TRUE(sender->present(id, acquire->borrow(), acquire->kind));
                EXPECT_EQ(wait_note(peer).message.step, frame);
                ASSERT_TRUE(app->queue.wait_idle());  // the imported release semaphore goes with `wait`
            }
            std::cout << "[measured] release fences received: " << release_fences << " of " << frames - 2 << "\n";
            if (app->fences.mode() == SyncMode::cpu_wait) {
                EXPECT_EQ(release_fences, 0U);
            }
            send_note(peer, {100, release_fences, 0});
            EXPECT_EQ(wait_note(peer).message.step, 101U);
        },
        [allow_sync_fd](Peer& peer) {
            auto app = open_app(allow_sync_fd);
            ASSERT_TRUE(app);
            auto device = value_or_fail(Device::create(app->vk.handles()), "device");
            ASSERT_TRUE(device);
            auto importer = value_or_fail(Importer::create(*device), "importer");
            ASSERT_TRUE(importer);
            ImportListener listener(*importer);
            auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames)), "receiver");
            ASSERT_TRUE(receiver);
            receiver->set_listener(&listener);
            std::uint64_t last = 0;
            std::uint32_t acquire_fences = 0;
            for (std::uint32_t step = 1; step <= frames; ++step) {
                auto frame = value_or_fail(receiver->wait_for_frame(last, patience), "frame");
                ASSERT_TRUE(frame);
                last = frame->frame_number;
                EXPECT_EQ(frame->image_id, (step - 1) % 2 + 1);
                const ImportedImage* imported = listener.image(frame->image_id);
                ASSERT_NE(imported, nullptr);
                EXPECT_EQ(importer->size(), 2U) << "one import per image, not per frame";
                UniqueFd acquire = receiver->take_acquire_fence();
                acquire_fences += acquire.valid() ? 1 : 0;
                auto wait = value_or_fail(app->fences.wait_semaphore(std::move(acquire), patience), "acquire fence");
                ASSERT_TRUE(wait);
                auto signal = value_or_fail(app->fences.signal_semaphore(), "signal semaphore");
                ASSERT_TRUE(signal);
                auto pixels = app->queue.download(imported->image, imported->extent, *wait, *signal);
                ASSERT_TRUE(pixels) << pixels.error().message;
                testing::expect_packed_pattern(*pixels, width, height, step, "Vulkan consumer");
                auto release = value_or_fail(app->fences.fence_for_peer(app->queue.queue(), *signal), "release fence");
                ASSERT_TRUE(release);
                ASSERT_TRUE(receiver->release(frame->image_id, release->borrow(), release->kind));
                send_note(peer, {step, 0, 0});
            }
            std::cout << "[measured] acquire fences received: " << acquire_fences << " of " << frames << "\n";
            if (app->fences.mode() == SyncMode::cpu_wait) {
                EXPECT_EQ(acquire_fences, 0U);
            }
            EXPECT_EQ(wait_note(peer).message.step, 100U);
            receiver.reset();
            EXPECT_EQ(importer->size(), 0U) << "a closed receiver leaves no imports behind";
            send_note(peer, {101, 0, 0});
        });
}

INSTANTIATE_TEST_SUITE_P(FenceModes, VulkanExportVmTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                             return param.param ? "DriversMode" : "CpuWaitFallback";
                         });

// Vulkan producer -> GL consumer. Mesa 25's EGL in the guest cannot import lavapipe's
// DMA-BUF (measured), like any DMA-BUF no GPU exported: virtio_gpu refuses the import and
// texshare's egl::Importer reports EGL_BAD_ALLOC; vgem's import "succeeds" but its readback
// fails (GL_OUT_OF_MEMORY), never showing the pixels wrong (testing::expect_egl_cannot_import).
// The Vulkan readback of the same received image shows the pattern: the DMA-BUF is good.
using VulkanExportToGlVmTest = testing::FdLeakTest;

TEST_F(VulkanExportToGlVmTest, MesaEglCannotImportLavapipesExportAndTexshareSaysSo) {
    constexpr std::uint32_t seed = 9;
    run_pair(
        [](Peer& peer) {
            auto app = open_app(false);
            ASSERT_TRUE(app);
            auto device = value_or_fail(Device::create(app->vk.handles()), "device");
            ASSERT_TRUE(device);
            auto exporter = value_or_fail(Exporter::create(*device, {}), "exporter over a Device");
            auto sender = value_or_fail(FrameSender::create(std::move(peer.frames)), "sender");
            ASSERT_TRUE(exporter && sender);
            auto exported = value_or_fail(exporter->allocate(width, height, DRM_FORMAT_ABGR8888), "export");
            ASSERT_TRUE(exported);
            ExportedImage image = std::move(exported->vulkan);
            ASSERT_TRUE(sender->add_image(std::move(exported->image)));
            ASSERT_TRUE(app->queue.upload(image.image(), image.extent(), packed_pattern(seed), true, {}, {}));
            auto done = app->fences.fence_for_peer(app->queue.queue(), {});
            ASSERT_TRUE(done && !done->valid());
            ASSERT_TRUE(sender->present(1));
            EXPECT_EQ(wait_note(peer).message.step, 1U);
        },
        [](Peer& peer) {
            auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames)), "receiver");
            ASSERT_TRUE(receiver);
            auto frame = value_or_fail(receiver->wait_for_frame(0, patience), "frame");
            ASSERT_TRUE(frame);
            const DmaBufImage& received = *frame->image;
            testing::expect_cpu_pattern(received, seed);
            testing::expect_egl_cannot_import(received, seed);
            send_note(peer, {1, 0, 0});
        });
}

}  // namespace
}  // namespace texshare::vulkan
