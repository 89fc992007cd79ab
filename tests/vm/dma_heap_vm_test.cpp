// VM lane, 6.12 guest only (TEXSHARE_VM_BACKPORTS_TESTS): DMA-BUFs from the system DMA-BUF
// heap across two processes (support/two_process.hpp: a producer and a consumer, images over
// an ImageChannel, so every image passes import_image's checks): written by the producer's
// CPU, read by the consumer's CPU and by Vulkan (lavapipe), later writes seen without a new
// import; and what Mesa 25's EGL makes of them. Each child's open-fd count is unchanged.
#include "texshare/dma_heap_allocator.hpp"

#include <gtest/gtest.h>

#include "support/two_process.hpp"
#include "support/vulkan_readback.hpp"
#include "texshare/image_wire.hpp"
#include "vm/gpu_free_dma_buf.hpp"

namespace texshare {
namespace {

using testing::expect_cpu_pattern;
using testing::expect_vulkan_pattern;
using testing::exporter_name;
using testing::Peer;
using testing::run_alone;
using testing::run_pair;
using testing::send_note;
using testing::test_fourcc;
using testing::value_or_fail;
using testing::wait_note;
using testing::write_pattern;

using DmaHeapVmTest = testing::FdLeakTest;

// 50 pixels are 200 bytes: rows padded to 256, so a reader that ignores the stride fails.
constexpr std::uint32_t width = 50;
constexpr std::uint32_t height = 30;

std::optional<DmaBufImage> allocate_heap_image() {
    auto heap = value_or_fail(DmaHeapAllocator::open(), "open the system heap");
    if (!heap) return std::nullopt;
    return value_or_fail(heap->allocate(width, height, test_fourcc), "heap allocation");
}

TEST_F(DmaHeapVmTest, TheGuestHasTheSystemHeap) {
    auto heaps = DmaHeapAllocator::list_heaps();
    ASSERT_TRUE(heaps) << heaps.error().message;
    EXPECT_NE(std::ranges::find(*heaps, "system"), heaps->end());
    auto missing = DmaHeapAllocator::open({.heap = "no-such-heap"});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, Errc::unsupported);
    EXPECT_EQ(missing.error().sys_errno, ENOENT);
    EXPECT_NE(missing.error().message.find("heaps in /dev/dma_heap: "), std::string::npos) << missing.error().message;
    EXPECT_NE(missing.error().message.find("system"), std::string::npos) << missing.error().message;
}

TEST_F(DmaHeapVmTest, AllocatesOneLinearBufferWithEveryPlaneAtItsOffset) {
    run_alone([](Peer&) {
        auto heap = DmaHeapAllocator::open();
        ASSERT_TRUE(heap) << heap.error().message;
        auto image = heap->allocate(width, height, test_fourcc);
        ASSERT_TRUE(image) << image.error().message;
        EXPECT_EQ(image->backing(), Backing::dma_buf);
        EXPECT_EQ(image->layout().modifier, DRM_FORMAT_MOD_LINEAR);
        EXPECT_EQ(image->layout().planes[0].stride, 256U);
        EXPECT_EQ(exporter_name(image->plane_fd(0)), "system");
        auto is_dma_buf = detail::is_dma_buf(image->plane_fd(0));
        ASSERT_TRUE(is_dma_buf && *is_dma_buf);
        EXPECT_EQ(*detail::dma_buf_size(image->plane_fd(0)), 8192U) << "256 * 30 bytes, rounded up to pages";
        auto nv12 = heap->allocate(64, 48, DRM_FORMAT_NV12);
        ASSERT_TRUE(nv12) << nv12.error().message;
        EXPECT_EQ(detail::file_identity(nv12->plane_fd(0))->inode, detail::file_identity(nv12->plane_fd(1))->inode)
            << "both planes in one buffer";
        EXPECT_EQ(nv12->layout().planes[1].offset, 256U * 48) << "the UV plane after 48 rows of 256 bytes";
    });
}

TEST_F(DmaHeapVmTest, ProducerCpuWritesConsumerCpuReadsEveryPixel) {
    run_pair(
        [](Peer& peer) {
            auto image = allocate_heap_image();
            ASSERT_TRUE(image);
            write_pattern(*image, 1);
            ASSERT_TRUE(send_image(peer.images, 1, *image));
            wait_note(peer);
            write_pattern(*image, 2);  // a second frame into the same buffer
            send_note(peer, {2, 0, 0});
            wait_note(peer);
        },
        [](Peer& peer) {
            auto received = receive_image(peer.images);  // recognised as a DMA-BUF by its magic
            ASSERT_TRUE(received) << received.error().message;
            EXPECT_EQ(received->image.backing(), Backing::dma_buf);
            EXPECT_EQ(exporter_name(received->image.plane_fd(0)), "system");
            expect_cpu_pattern(received->image, 1);
            send_note(peer, {1, 0, 0});
            wait_note(peer);
            expect_cpu_pattern(received->image, 2);
            send_note(peer, {3, 0, 0});
        });
}

TEST_F(DmaHeapVmTest, ConsumerImportsWithVulkanAndSeesLaterWritesWithoutReimport) {
    run_pair(
        [](Peer& peer) {
            auto image = allocate_heap_image();
            ASSERT_TRUE(image);
            write_pattern(*image, 3);
            ASSERT_TRUE(send_image(peer.images, 1, *image));
            wait_note(peer);
            write_pattern(*image, 4);  // through the DMA-BUF's mmap, between SYNC start and end
            send_note(peer, {2, 0, 0});
            wait_note(peer);
        },
        [](Peer& peer) {
            auto received = receive_image(peer.images);
            ASSERT_TRUE(received) << received.error().message;
            auto vulkan = testing::VulkanContext::create();
            ASSERT_TRUE(vulkan) << vulkan.error().message;
            EXPECT_TRUE(vulkan->has_drm_format_modifiers()) << "lavapipe with a DRM device has the modifier extension";
            auto imported = testing::VulkanImportedImage::import(*vulkan, received->image);
            ASSERT_TRUE(imported) << imported.error().message;
            EXPECT_TRUE(imported->explicit_row_pitch());
            expect_vulkan_pattern(*imported, received->image, 3, "first frame");
            send_note(peer, {1, 0, 0});
            wait_note(peer);
            expect_vulkan_pattern(*imported, received->image, 4, "later write, same import");
            send_note(peer, {3, 0, 0});
        });
}

TEST_F(DmaHeapVmTest, EglCannotImportAHeapBufferAndVgemsSuccessIsCaught) {
    run_pair(
        [](Peer& peer) {
            auto image = allocate_heap_image();
            ASSERT_TRUE(image);
            write_pattern(*image, 5);
            ASSERT_TRUE(send_image(peer.images, 1, *image));
            wait_note(peer);
        },
        [](Peer& peer) {
            auto received = receive_image(peer.images);
            ASSERT_TRUE(received) << received.error().message;
            testing::expect_egl_cannot_import(received->image, 5);
            send_note(peer, {1, 0, 0});
        });
}

}  // namespace
}  // namespace texshare
