// OPAQUE_FD memory across two processes (issue 15's opaque_fd backing), on lavapipe: on the
// host (Debian 12's Mesa 22.3 lavapipe has OPAQUE_FD image memory too) and in the VM lane's
// backports guest (Mesa 25's). A producer process exports an RGBA8 optimal-tiling image as
// OPAQUE_FD (forced: lavapipe has DMA-BUF export as well) and writes a pattern into it; then:
//   - through a FrameSender, the consumer's FrameReceiver refuses it: lavapipe's OPAQUE_FD fd
//     is a memfd ("/memfd:llvmpipe memory fd", measured), and an opaque_fd must be a driver's
//     character device (NVIDIA's /dev/nvidiactl), so receive validation says "is a memfd".
//     That refusal is the asserted fact here; the accepted path across processes is proven
//     on NVIDIA (the GPU lane), whose fds are character devices;
//   - through an ImageChannel (the same AuxChannel), import_image refuses it the same way, and
//     the consumer then builds the opaque_fd DmaBufImage itself from the descriptor (bypassing
//     the fd-kind check, nothing else), imports it with vulkan::Importer (UUIDs, size, type
//     and usage checked) and reads every pixel back exactly through a Vulkan copy;
//   - where the driver exports DMA-BUFs (the backports guest, required there), a DMA-BUF
//     labelled opaque_fd is refused naming it a DMA-BUF.
// Each child's open-fd count is unchanged (support/two_process.hpp); validation layers on.
#include <array>
#include <cstring>

#include "support/two_process.hpp"
#include "support/vulkan_queue.hpp"
#include "support/vulkan_test_device.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/vulkan/exporter.hpp"
#include "texshare/vulkan/importer.hpp"

namespace texshare::vulkan {
namespace {

using testing::Peer;
using testing::run_pair;
using testing::send_note;
using testing::TestQueue;
using testing::TestVulkan;
using testing::value_or_fail;
using testing::wait_note;

constexpr std::uint32_t width = 64;
constexpr std::uint32_t height = 48;

std::vector<std::uint8_t> pattern() {
    std::vector<std::uint8_t> pixels(std::size_t{width} * height * 4);
    for (std::size_t i = 0; i < pixels.size(); ++i)
        pixels[i] = static_cast<std::uint8_t>(i * 13 + i / 97 + 5);
    return pixels;
}

// No VK_EXT_queue_family_foreign: an OPAQUE_FD image goes between Vulkan devices through
// VK_QUEUE_FAMILY_EXTERNAL (FOREIGN is for non-Vulkan producers).
const std::vector<std::string> extensions{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                          VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME};

bool in_backports_guest() {
    const char* stack = std::getenv("TEXSHARE_VM_STACK");
    return stack != nullptr && std::string_view(stack) == "backports";
}

enum Step : std::uint32_t {
    frame_sent = 1,
    frame_refused,
    image_sent,
    image_read,
    dma_buf_sent,
    dma_buf_refused
};

class VulkanOpaqueVmTest : public testing::FdLeakTest {};

TEST_F(VulkanOpaqueVmTest,
       LavapipesOpaqueFdCrossesProcessesRefusedOnTheWireAndReadsBackExactlyWhenBuiltLocally) {
    run_pair(
        [](Peer& peer) {
            auto vk = value_or_fail(TestVulkan::create(extensions), "vulkan");
            ASSERT_TRUE(vk);
            auto queue = value_or_fail(TestQueue::create(*vk), "queue");
            Exporter::Options forced;
            forced.handle = ExportHandle::opaque_fd;
            auto exporter = value_or_fail(Exporter::create(vk->handles(), forced), "exporter");
            ASSERT_TRUE(queue && exporter);
            auto exported =
                value_or_fail(exporter->allocate(width, height, DRM_FORMAT_ABGR8888), "OPAQUE_FD export");
            ASSERT_TRUE(exported);
            ASSERT_EQ(exported->image.backing(), Backing::opaque_fd);
            ASSERT_TRUE(queue->upload(exported->vulkan.image(), {width, height}, pattern(), true, {}, {}));
            ASSERT_TRUE(queue->wait_idle());

            // 1. The frame protocol: a FrameSender shares it; the consumer refuses it.
            {
                auto sender = value_or_fail(FrameSender::create(std::move(peer.frames)), "sender");
                ASSERT_TRUE(sender);
                auto fd = value_or_fail(UniqueFd::dup(exported->image.plane_fd(0)), "dup");
                ASSERT_TRUE(fd);
                auto copy = value_or_fail(
                    DmaBufImage::adopt_opaque_fd(width, height, DRM_FORMAT_ABGR8888,
                                                 exported->image.opaque_memory(), std::move(*fd)),
                    "copy");
                ASSERT_TRUE(copy);
                ASSERT_TRUE(value_or_fail(sender->add_image(std::move(*copy)), "add_image"));
                send_note(peer, {frame_sent, 0, 0});
                EXPECT_EQ(wait_note(peer).message.step, frame_refused);
            }
            // 2. An ImageChannel: the descriptor and the fd, as send_image() sends them.
            ASSERT_TRUE(send_image(peer.images, 7, exported->image));
            send_note(peer, {image_sent, 0, 0});
            EXPECT_EQ(wait_note(peer).message.step, image_read);

            // 3. A DMA-BUF labelled opaque_fd (where this driver exports DMA-BUFs).
            auto dma_buf_exporter = Exporter::create(vk->handles());
            auto dma_buf = dma_buf_exporter ? dma_buf_exporter->allocate(width, height, DRM_FORMAT_ABGR8888)
                                            : Result<Exporter::Exported>(dma_buf_exporter.error());
            const bool have_dma_buf = dma_buf && dma_buf->image.backing() == Backing::dma_buf;
            if (in_backports_guest()) {
                EXPECT_TRUE(have_dma_buf) << "Mesa 25's lavapipe in the guest exports DMA-BUFs";
            }
            if (have_dma_buf) {
                ImageDescriptor forged = describe_image(8, dma_buf->image);
                forged.backing = static_cast<std::uint8_t>(Backing::opaque_fd);
                forged.modifier = DRM_FORMAT_MOD_INVALID;
                forged.planes = {};
                forged.opaque = exported->image.opaque_memory();
                const auto fds = dma_buf->image.plane_fds();
                ASSERT_TRUE(peer.images.send(forged, fds));
            }
            send_note(peer, {dma_buf_sent, have_dma_buf ? 1U : 0U, 0});
            EXPECT_EQ(wait_note(peer).message.step, dma_buf_refused);
        },
        [](Peer& peer) {
            auto vk = value_or_fail(TestVulkan::create(extensions), "vulkan");
            ASSERT_TRUE(vk);
            auto device = value_or_fail(Device::create(vk->handles()), "device");
            ASSERT_TRUE(device);
            auto importer = value_or_fail(Importer::create(*device), "importer");
            ASSERT_TRUE(importer);

            // 1. The FrameReceiver refuses lavapipe's opaque fd: a memfd, not a character device.
            {
                auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames)), "receiver");
                ASSERT_TRUE(receiver);
                EXPECT_EQ(wait_note(peer).message.step, frame_sent);
                auto handled = receiver->dispatch();
                ASSERT_FALSE(handled) << "the receiver accepted a memfd as opaque_fd";
                EXPECT_EQ(handled.error().code, Errc::rejected) << handled.error().message;
                EXPECT_NE(handled.error().message.find("is declared opaque_fd but its fd"), std::string::npos)
                    << handled.error().message;
                EXPECT_NE(handled.error().message.find("is a memfd"), std::string::npos)
                    << handled.error().message;
                std::cout << "[measured] lavapipe's OPAQUE_FD through the frame protocol: "
                          << handled.error().message << "\n";
                EXPECT_EQ(receiver->image(1), nullptr);
                send_note(peer, {frame_refused, 0, 0});
            }

            // 2. The same through import_image; then built here and imported with Vulkan.
            EXPECT_EQ(wait_note(peer).message.step, image_sent);
            auto raw = value_or_fail(peer.images.receive(), "receive");
            ASSERT_TRUE(raw);
            const ImageDescriptor& d = raw->message;
            PlaneFds probe{};
            probe[0] = *UniqueFd::dup(raw->fds[0].borrow());
            auto wire = import_image(d, std::move(probe));
            ASSERT_FALSE(wire);
            EXPECT_NE(wire.error().message.find("is a memfd"), std::string::npos) << wire.error().message;
            EXPECT_EQ(d.opaque.device_uuid, device->device_uuid()) << "one lavapipe in both processes";
            auto image = value_or_fail(
                DmaBufImage::adopt_opaque_fd(d.width, d.height, d.fourcc, d.opaque, std::move(raw->fds[0])),
                "opaque_fd image built locally");
            ASSERT_TRUE(image);
            auto imported = value_or_fail(importer->import(7, *image), "OPAQUE_FD import");
            ASSERT_TRUE(imported);
            auto pixels = value_or_fail(vk->read_back(*imported, 4), "read back");
            ASSERT_TRUE(pixels);
            const auto expected = pattern();
            ASSERT_EQ(pixels->size(), expected.size());
            std::size_t wrong = 0;
            for (std::size_t i = 0; i < expected.size(); ++i) wrong += (*pixels)[i] != expected[i] ? 1 : 0;
            EXPECT_EQ(wrong, 0U) << "bytes differing from what the producer process wrote";
            std::cout << "[measured] OPAQUE_FD across processes, built locally: " << expected.size()
                      << " bytes read back, " << wrong << " differ (allocation " << d.opaque.allocation_size
                      << " bytes, type " << d.opaque.memory_type_index << ", usage 0x" << std::hex
                      << d.opaque.image_usage << std::dec << ")\n";
            EXPECT_TRUE(importer->release(7));
            send_note(peer, {image_read, 0, 0});

            // 3. A DMA-BUF labelled opaque_fd.
            const auto note = wait_note(peer);
            EXPECT_EQ(note.message.step, dma_buf_sent);
            if (note.message.flag == 1) {
                auto forged = receive_image(peer.images);
                ASSERT_FALSE(forged) << "a DMA-BUF was accepted as opaque_fd";
                EXPECT_EQ(forged.error().code, Errc::rejected) << forged.error().message;
                EXPECT_NE(forged.error().message.find("is a DMA-BUF, not a character device"),
                          std::string::npos)
                    << forged.error().message;
            } else {
                std::cout
                    << "[skipped part] no DMA-BUF export on this driver: the DMA-BUF-as-opaque_fd refusal "
                       "runs in the backports guest\n";
            }
            send_note(peer, {dma_buf_refused, 0, 0});
        });
}

}  // namespace
}  // namespace texshare::vulkan
