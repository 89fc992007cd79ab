// VM lane, backports guest (Mesa 25's lavapipe, which imports DMA-BUFs): GBM DMA-BUFs a
// producer process shares through the frame protocol, imported into Vulkan by a consumer
// process with texshare::vulkan, every pixel read back through a Vulkan copy. Both import
// paths: with VK_EXT_image_drm_format_modifier (explicit LINEAR modifier and stride) and
// without it (not enabled: LINEAR tiling, the driver's row pitch must equal the stride, or
// the import is refused). The import cache follows add, retire and the receiver's end; each
// child's open-fd count is the same after its part as before (support/two_process.hpp).
#include <poll.h>

#include <array>
#include <chrono>
#include <cstring>

#include "support/two_process.hpp"
#include "support/vulkan_test_device.hpp"
#include "texshare/dma_heap_allocator.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/gbm/allocator.hpp"
#include "texshare/vulkan/import_listener.hpp"

namespace texshare::vulkan {
namespace {

using namespace std::chrono_literals;
using testing::Peer;
using testing::run_pair;
using testing::send_note;
using testing::value_or_fail;
using testing::wait_note;

constexpr std::uint32_t side = 64;
constexpr auto patience = 30s;  // a failure bound only (a loaded TCG guest)

// Each image's pixels depend on its id, so an import showing the wrong image is caught.
std::array<std::uint8_t, 4> pattern(std::uint64_t id, std::uint32_t x, std::uint32_t y) {
    return {static_cast<std::uint8_t>(id * 40), static_cast<std::uint8_t>(x * 4), static_cast<std::uint8_t>(y * 4),
            255};
}

// A GBM LINEAR ABGR8888 image (bytes R, G, B, A) the CPU filled with pattern(id).
std::optional<DmaBufImage> allocate_filled(const gbm::Device& device, std::uint64_t id) {
    auto image = value_or_fail(device.allocate({side, side, DRM_FORMAT_ABGR8888, {DRM_FORMAT_MOD_LINEAR}, 0}),
                               "allocation");
    if (!image) return std::nullopt;
    auto mapping = value_or_fail(image->map(Access::write), "mapping");
    if (!mapping) return std::nullopt;
    for (std::uint32_t y = 0; y < side; ++y) {
        for (std::uint32_t x = 0; x < side; ++x) {
            const auto rgba = pattern(id, x, y);
            std::memcpy(mapping->plane(0).data() + std::size_t{y} * mapping->stride(0) + x * 4, rgba.data(), 4);
        }
    }
    EXPECT_TRUE(mapping->finish());
    return image;
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

// A producer's FrameSender sharing `count` GBM images filled with pattern(id), ids 1..count.
std::optional<FrameSender> sender_with_images(Peer& peer, std::uint64_t count) {
    auto device = value_or_fail(gbm::Device::open_default(), "gbm device");
    auto sender = value_or_fail(FrameSender::create(std::move(peer.frames)), "sender");
    if (!device || !sender) return std::nullopt;
    for (std::uint64_t id = 1; id <= count; ++id) {
        auto image = allocate_filled(*device, id);
        if (!image) return std::nullopt;
        auto added = value_or_fail(sender->add_image(std::move(*image)), "add_image");
        if (!added) return std::nullopt;
        EXPECT_EQ(*added, id);
    }
    return sender;
}

// The consumer's Vulkan: an application's device with DMA-BUF import and, where
// `modifiers`, VK_EXT_image_drm_format_modifier (left out otherwise: not enabled at all).
struct Consumer {
    testing::TestVulkan vk;
    Importer importer;
};
std::optional<Consumer> open_consumer(bool modifiers) {
    std::vector<std::string> wanted{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                    VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME,
                                    VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME};
    if (modifiers) wanted.emplace_back(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME);
    auto vk = value_or_fail(testing::TestVulkan::create(wanted), "vulkan");
    if (!vk) return std::nullopt;
    EXPECT_EQ(vk->enabled().size(), wanted.size()) << "Mesa 25's lavapipe in the guest offers all of these";
    auto device = value_or_fail(Device::create(vk->handles()), "vulkan::Device");
    if (!device) return std::nullopt;
    EXPECT_EQ(device->has_drm_format_modifiers(), modifiers);
    auto importer = value_or_fail(Importer::create(*device), "importer");
    if (!importer) return std::nullopt;
    return Consumer{std::move(*vk), std::move(*importer)};
}

// Every pixel of the import, copied by Vulkan, must be pattern(written_as) at row y * row_step.
void expect_shows(const Consumer& consumer, const ImportedImage& imported, std::uint64_t written_as,
                  std::uint32_t row_step = 1) {
    auto pixels = consumer.vk.read_back(imported, 4);
    ASSERT_TRUE(pixels) << pixels.error().message;
    const VkExtent2D e = imported.extent;
    for (std::uint32_t i = 0; i < e.width * e.height; ++i) {
        const auto want = pattern(written_as, i % e.width, (i / e.width) * row_step);
        ASSERT_EQ(std::memcmp(pixels->data() + std::size_t{i} * 4, want.data(), 4), 0)
            << "image " << written_as << " pixel " << i;
    }
}

class VulkanImportVmTest : public testing::FdLeakTest, public ::testing::WithParamInterface<bool> {};

TEST_P(VulkanImportVmTest, EveryProducerImageImportsOnceShowsItsPixelsAndGoesWhenRetired) {
    run_pair(
        [](Peer& peer) {
            auto sender = sender_with_images(peer, 3);
            ASSERT_TRUE(sender);
            for (std::uint64_t id : {1, 2}) {
                ASSERT_TRUE(sender->present(id));
                EXPECT_EQ(wait_note(peer).message.step, id);
            }
            ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->state(1) == FrameImageState::free; }));
            ASSERT_TRUE(sender->retire(3));
            ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->image(3) == nullptr; }));
            send_note(peer, {3, 0, 0});
            EXPECT_EQ(wait_note(peer).message.step, 4U);
        },
        [modifiers = GetParam()](Peer& peer) {
            auto consumer = open_consumer(modifiers);
            ASSERT_TRUE(consumer);
            ImportListener listener(consumer->importer);
            auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames)), "receiver");
            ASSERT_TRUE(receiver);
            receiver->set_listener(&listener);
            std::array<VkImage, 3> handles{};
            std::uint64_t last_frame = 0;
            for (std::uint64_t id : {1, 2}) {
                auto frame = value_or_fail(receiver->wait_for_frame(last_frame, patience), "frame");
                ASSERT_TRUE(frame);
                last_frame = frame->frame_number;
                EXPECT_EQ(frame->image_id, id);
                EXPECT_EQ(consumer->importer.size(), 3U) << "one import per image, not per frame";
                for (std::uint64_t other = 1; other <= 3; ++other) {
                    const ImportedImage* imported = listener.image(other);
                    ASSERT_NE(imported, nullptr) << "image " << other << " was shared but not imported";
                    if (id == 1) handles[other - 1] = imported->image;
                    EXPECT_EQ(imported->image, handles[other - 1]) << "image " << other << " was imported again";
                    EXPECT_EQ(imported->tiling, modifiers ? VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT
                                                          : VK_IMAGE_TILING_LINEAR);
                    EXPECT_FALSE(imported->disjoint);
                }
                expect_shows(*consumer, *listener.image(id), id);
                send_note(peer, {static_cast<std::uint32_t>(id), 0, 0});
            }
            ASSERT_TRUE(dispatch_until(*receiver, [&] { return consumer->importer.size() == 2; }))
                << "the retired image kept its import";
            EXPECT_EQ(listener.image(3), nullptr);
            EXPECT_NE(listener.image(2), nullptr);
            expect_shows(*consumer, *listener.image(1), 1);  // the others are untouched
            EXPECT_EQ(wait_note(peer).message.step, 3U);
            receiver.reset();
            EXPECT_EQ(consumer->importer.size(), 0U) << "a closed receiver leaves no imports behind";
            send_note(peer, {4, 0, 0});
        });
}

// The same received DMA-BUF described with twice its stride (every other row, 32 rows): with
// the modifier extension the explicit stride is honoured exactly; without it the driver's
// row pitch for a 64-wide LINEAR image is not that stride, so the import is refused, naming
// both, and nothing is kept or leaked. An id already imported is refused too.
TEST_P(VulkanImportVmTest, AStrideIsHonouredExplicitlyOrTheImportRefused) {
    run_pair(
        [](Peer& peer) {
            auto sender = sender_with_images(peer, 1);
            ASSERT_TRUE(sender);
            ASSERT_TRUE(sender->present(1));
            EXPECT_EQ(wait_note(peer).message.step, 1U);
        },
        [modifiers = GetParam()](Peer& peer) {
            auto consumer = open_consumer(modifiers);
            ASSERT_TRUE(consumer);
            ImportListener listener(consumer->importer);
            auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames)), "receiver");
            ASSERT_TRUE(receiver);
            receiver->set_listener(&listener);
            auto frame = value_or_fail(receiver->wait_for_frame(0, patience), "frame");
            ASSERT_TRUE(frame);
            const DmaBufImage& received = *frame->image;
            const std::uint32_t stride = received.layout().planes[0].stride * 2;
            ImageLayout skipping = received.layout();
            skipping.height = side / 2;
            skipping.planes[0].stride = stride;
            PlaneFds fds{};
            fds[0] = *UniqueFd::dup(received.plane_fd(0));
            auto image = DmaBufImage::adopt(skipping, Backing::dma_buf, std::move(fds));
            ASSERT_TRUE(image) << image.error().message;
            const int open_fds = testing::open_fd_count();
            auto again = consumer->importer.import(1, *image);
            ASSERT_FALSE(again);
            EXPECT_EQ(again.error().code, Errc::invalid_argument) << again.error().message;
            ColorInfo colour;  // issue 16: the import hands the image's colour on
            colour.transfer = TransferFunction::linear;
            colour.primaries = ColorPrimaries::bt2020;
            ASSERT_TRUE(image->set_color(colour));
            auto imported = consumer->importer.import(100, *image);
            if (modifiers) {
                ASSERT_TRUE(imported) << imported.error().message;
                EXPECT_EQ(imported->color, colour);
                expect_shows(*consumer, *imported, 1, 2);
                ASSERT_TRUE(consumer->importer.release(100));
            } else {
                ASSERT_FALSE(imported);
                EXPECT_EQ(imported.error().code, Errc::unsupported);
                EXPECT_NE(imported.error().message.find(fmt::format("the DMA-BUF has stride {}", stride)),
                          std::string::npos)
                    << imported.error().message;
                EXPECT_NE(imported.error().message.find("row pitch"), std::string::npos) << imported.error().message;
            }
            EXPECT_EQ(consumer->importer.size(), 1U);
            EXPECT_EQ(testing::open_fd_count(), open_fds) << "an import and release (or a refusal) left an fd";
            send_note(peer, {1, 0, 0});
        });
}

// A producer dying without a word: with keep_last_frame its last frame's import survives
// under retained_image_id (ImportListener::image_renamed) and still shows its pixels; the
// other image's import goes.
TEST_P(VulkanImportVmTest, ADeadProducersLastFrameKeepsItsImportUnderTheRetainedId) {
    run_pair(
        [](Peer& peer) {
            auto sender = sender_with_images(peer, 2);
            ASSERT_TRUE(sender);
            ASSERT_TRUE(sender->present(2));
            EXPECT_EQ(wait_note(peer).message.step, 1U);
            sender.reset();  // the socket closes: no bye
            send_note(peer, {2, 0, 0});
        },
        [modifiers = GetParam()](Peer& peer) {
            auto consumer = open_consumer(modifiers);
            ASSERT_TRUE(consumer);
            ImportListener listener(consumer->importer);
            auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames), {.keep_last_frame = true}),
                                          "receiver");
            ASSERT_TRUE(receiver);
            receiver->set_listener(&listener);
            ASSERT_TRUE(value_or_fail(receiver->wait_for_frame(0, patience), "frame"));
            EXPECT_EQ(consumer->importer.size(), 2U);
            send_note(peer, {1, 0, 0});
            EXPECT_EQ(wait_note(peer).message.step, 2U);
            auto gone = dispatch_until(*receiver, [] { return false; });
            ASSERT_FALSE(gone);
            EXPECT_EQ(gone.error().code, Errc::peer_closed) << gone.error().message;
            EXPECT_EQ(consumer->importer.size(), 1U);
            EXPECT_EQ(listener.image(1), nullptr);
            EXPECT_EQ(listener.image(2), nullptr);
            const ImportedImage* kept = listener.image(retained_image_id);
            ASSERT_NE(kept, nullptr);
            expect_shows(*consumer, *kept, 2);
            ASSERT_TRUE(receiver->release(retained_image_id));
            EXPECT_EQ(consumer->importer.size(), 0U);
        });
}

INSTANTIATE_TEST_SUITE_P(DrmFormatModifiers, VulkanImportVmTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                             return param.param ? "WithModifierExtension" : "WithoutModifierExtension";
                         });

}  // namespace
}  // namespace texshare::vulkan

namespace texshare::vulkan {
namespace {

// NV12 from the DMA-BUF heap, in one buffer (planes at offsets of one DMA-BUF) and in two
// (a DMA-BUF per plane, which texshare imports as a disjoint image). Mesa 25.0's lavapipe,
// the one driver here that imports DMA-BUFs, imports no NV12 DMA-BUF at all
// (vkGetPhysicalDeviceImageFormatProperties2 gives VK_ERROR_FORMAT_NOT_SUPPORTED for
// G8_B8R8_2PLANE_420_UNORM with the LINEAR modifier, disjoint or not, even for transfer
// only; measured): asserted here as that fact, with texshare's error naming the format,
// modifier and VkResult, nothing kept and no fd leaked. The multi-plane and disjoint import
// paths are therefore not proven with pixels on any driver this project reaches.
using VulkanPlanesVmTest = testing::FdLeakTest;

TEST_F(VulkanPlanesVmTest, LavapipeRefusesNv12DmaBufsInOneBufferAndInTwoWithTheDriversReason) {
    testing::run_alone([](Peer&) {
        auto heap = value_or_fail(DmaHeapAllocator::open(), "dma heap");
        ASSERT_TRUE(heap);
        auto consumer = open_consumer(true);
        ASSERT_TRUE(consumer);
        auto whole = value_or_fail(heap->allocate(side, side, DRM_FORMAT_NV12), "NV12 allocation");
        auto y = value_or_fail(heap->allocate(side, side, DRM_FORMAT_R8), "Y buffer");
        auto c = value_or_fail(heap->allocate(side / 2, side / 2, DRM_FORMAT_GR88), "CbCr buffer");
        ASSERT_TRUE(whole && y && c);
        const ImageLayout layout{side, side, DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR, 2,
                                 {{{0, y->layout().planes[0].stride}, {0, c->layout().planes[0].stride}}}};
        PlaneFds fds{};
        fds[0] = *UniqueFd::dup(y->plane_fd(0));
        fds[1] = *UniqueFd::dup(c->plane_fd(0));
        auto split = value_or_fail(DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds)), "adopt");
        ASSERT_TRUE(split);
        const int open_fds = testing::open_fd_count();
        for (const DmaBufImage* image : {&*whole, &*split}) {
            auto imported = consumer->importer.import(1, *image);
            ASSERT_FALSE(imported) << "lavapipe imported an NV12 DMA-BUF: prove its pixels here instead";
            EXPECT_EQ(imported.error().code, Errc::unsupported);
            const std::string& message = imported.error().message;
            EXPECT_NE(message.find("NV12 (NV12) with modifier LINEAR"), std::string::npos) << message;
            EXPECT_NE(message.find("VK_ERROR_FORMAT_NOT_SUPPORTED"), std::string::npos) << message;
        }
        EXPECT_EQ(consumer->importer.size(), 0U);
        EXPECT_EQ(testing::open_fd_count(), open_fds);
    });
}

}  // namespace
}  // namespace texshare::vulkan
