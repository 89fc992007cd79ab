// VM lane, backports guest (6.12's /dev/udmabuf, Mesa 25's lavapipe): a producer without a
// GPU shares sealed memfds (MemfdAllocator) through the frame protocol; the consumer's
// vulkan::ImportListener with Options::convert_shared_memory turns each into a DMA-BUF once
// (udmabuf: the same pages, no copy), imports it into Vulkan, and every pixel reads back
// exactly through a Vulkan copy, also after the producer writes the memfd again (no
// re-conversion, no re-import). A retired image's import and conversion are released, and
// each child's open-fd count is checked (support/two_process.hpp, and here after retire).
// The consumer advertises what it does (vulkan::format_table with converts_shared_memory)
// and the producer negotiates SharingPath::shared_memory_udmabuf from it.
#include <poll.h>

#include <chrono>
#include <cstring>

#include "support/fd_count.hpp"
#include "support/two_process.hpp"
#include "support/vulkan_test_device.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/negotiation.hpp"
#include "texshare/vulkan/format_table.hpp"
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

// Each (image, generation)'s pixels differ, so an import showing the wrong image or stale
// memory is caught.
std::array<std::uint8_t, 4> pattern(std::uint64_t value, std::uint32_t x, std::uint32_t y) {
    return {static_cast<std::uint8_t>(value * 40 + 7), static_cast<std::uint8_t>(x * 4),
            static_cast<std::uint8_t>(y * 4), static_cast<std::uint8_t>(255 - value)};
}

void fill(const DmaBufImage& image, std::uint64_t value) {
    auto mapping = value_or_fail(image.map(Access::write), "mapping");
    ASSERT_TRUE(mapping);
    for (std::uint32_t y = 0; y < side; ++y) {
        for (std::uint32_t x = 0; x < side; ++x) {
            const auto rgba = pattern(value, x, y);
            std::memcpy(mapping->plane(0).data() + std::size_t{y} * mapping->stride(0) + x * 4, rgba.data(), 4);
        }
    }
    EXPECT_TRUE(mapping->finish());
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

struct Consumer {
    testing::TestVulkan vk;
    Device device;
    Importer importer;
};
std::optional<Consumer> open_consumer() {
    const std::vector<std::string> wanted{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                          VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME,
                                          VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME,
                                          VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME};
    auto vk = value_or_fail(testing::TestVulkan::create(wanted), "vulkan");
    if (!vk) return std::nullopt;
    EXPECT_EQ(vk->enabled().size(), wanted.size()) << "Mesa 25's lavapipe in the guest offers all of these";
    auto device = value_or_fail(Device::create(vk->handles()), "vulkan::Device");
    if (!device) return std::nullopt;
    auto importer = value_or_fail(Importer::create(*device), "importer");
    if (!importer) return std::nullopt;
    return Consumer{std::move(*vk), std::move(*device), std::move(*importer)};
}

void expect_shows(const Consumer& consumer, const ImportedImage* imported, std::uint64_t value) {
    ASSERT_NE(imported, nullptr);
    auto pixels = consumer.vk.read_back(*imported, 4);
    ASSERT_TRUE(pixels) << pixels.error().message;
    for (std::uint32_t i = 0; i < side * side; ++i) {
        const auto want = pattern(value, i % side, i / side);
        ASSERT_EQ(std::memcmp(pixels->data() + std::size_t{i} * 4, want.data(), 4), 0)
            << "value " << value << " pixel " << i;
    }
}

using VulkanUdmabufVmTest = testing::FdLeakTest;

TEST_F(VulkanUdmabufVmTest, APeersSharedMemoryIsConvertedOnceImportedReadExactlyAndReleasedOnRetire) {
    run_pair(
        [](Peer& peer) {
            auto sender = value_or_fail(FrameSender::create(std::move(peer.frames)), "sender");
            ASSERT_TRUE(sender);
            // The consumer's table first: it says it converts shared memory, and the
            // producer (no GPU at all) negotiates the udmabuf path from it.
            ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->peer_formats() != nullptr; }));
            const std::uint32_t wanted[] = {DRM_FORMAT_ABGR8888};
            auto choice =
                value_or_fail(negotiate(*sender->peer_formats(), ProducerCapabilities{}, wanted), "negotiate");
            ASSERT_TRUE(choice);
            EXPECT_EQ(choice->path, SharingPath::shared_memory_udmabuf) << choice->reason;
            const MemfdAllocator allocator({choice->stride_alignment});
            for (std::uint64_t id : {1, 2}) {
                auto image = value_or_fail(allocator.allocate(side, side, choice->fourcc), "memfd allocation");
                ASSERT_TRUE(image);
                fill(*image, id);
                auto added = value_or_fail(sender->add_image(std::move(*image)), "add_image");
                ASSERT_TRUE(added);
                EXPECT_EQ(*added, id);
            }
            for (std::uint64_t id : {1, 2}) {
                ASSERT_TRUE(sender->present(id));
                EXPECT_EQ(wait_note(peer).message.step, id);
            }
            // Image 1 again, rewritten in place: the same pages the consumer's import maps.
            ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->state(1) == FrameImageState::free; }));
            fill(*sender->image(1), 5);
            ASSERT_TRUE(sender->present(1));
            EXPECT_EQ(wait_note(peer).message.step, 3U);
            ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->state(2) == FrameImageState::free; }));
            ASSERT_TRUE(sender->retire(2));
            ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->image(2) == nullptr; }));
            send_note(peer, {4, 0, 0});
            EXPECT_EQ(wait_note(peer).message.step, 5U);
        },
        [](Peer& peer) {
            const int fds_at_start = testing::open_fd_count();
            {
                auto consumer = open_consumer();
                ASSERT_TRUE(consumer);
                ImportListener listener(consumer->importer, {.convert_shared_memory = true,
                                                             .require_conversion = true,
                                                             .conversion = {}});
                auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames)), "receiver");
                ASSERT_TRUE(receiver);
                receiver->set_listener(&listener);
                auto table = value_or_fail(
                    format_table(consumer->device, FormatTableOptions{.converts_shared_memory = true}), "table");
                ASSERT_TRUE(table);
                ASSERT_TRUE(receiver->advertise(*table));
                std::uint64_t last_frame = 0;
                for (std::uint64_t id : {1, 2}) {
                    auto frame = value_or_fail(receiver->wait_for_frame(last_frame, patience), "frame");
                    ASSERT_TRUE(frame);
                    last_frame = frame->frame_number;
                    EXPECT_EQ(frame->image_id, id);
                    EXPECT_EQ(frame->image->backing(), Backing::shared_memory) << "a memfd on the wire";
                    EXPECT_EQ(listener.path(id), ImagePath::udmabuf) << listener.cpu_reason(id);
                    expect_shows(*consumer, listener.image(id), id);
                    ASSERT_TRUE(receiver->release(id));
                    send_note(peer, {static_cast<std::uint32_t>(id), 0, 0});
                }
                ASSERT_NE(listener.conversions(), nullptr);
                EXPECT_EQ(listener.conversions()->conversions(), 2U) << "one conversion per image, not per frame";
                EXPECT_EQ(consumer->importer.size(), 2U);
                const ImportedImage* first = listener.image(1);
                const VkImage first_handle = first->image;
                auto again = value_or_fail(receiver->wait_for_frame(last_frame, patience), "frame 3");
                ASSERT_TRUE(again);
                EXPECT_EQ(again->image_id, 1U);
                EXPECT_EQ(listener.image(1)->image, first_handle) << "not imported again";
                expect_shows(*consumer, listener.image(1), 5);  // the producer's new writes, as they are
                EXPECT_EQ(listener.conversions()->conversions(), 2U) << "not converted again";
                const int fds_with_both = testing::open_fd_count();
                ASSERT_TRUE(receiver->release(1));
                send_note(peer, {3, 0, 0});
                ASSERT_TRUE(dispatch_until(*receiver, [&] { return consumer->importer.size() == 1; }))
                    << "the retired image kept its import";
                EXPECT_EQ(listener.image(2), nullptr);
                EXPECT_EQ(listener.path(2), ImagePath::unknown);
                EXPECT_EQ(listener.conversions()->find(2), nullptr) << "the retired image's DMA-BUF is closed";
                EXPECT_EQ(listener.conversions()->size(), 1U);
                // The memfd the producer sent and the udmabuf DMA-BUF made of it, at least;
                // lavapipe may or may not keep its own duplicate of the import.
                EXPECT_LE(testing::open_fd_count(), fds_with_both - 2) << "the retired image's fds stayed open";
                expect_shows(*consumer, listener.image(1), 5);  // the other one is untouched
                EXPECT_EQ(wait_note(peer).message.step, 4U);
                receiver.reset();
                EXPECT_EQ(consumer->importer.size(), 0U) << "a closed receiver leaves no imports behind";
                EXPECT_EQ(listener.conversions()->size(), 0U) << "nor conversions";
            }
            // Everything texshare and Vulkan opened is closed again, /dev/udmabuf included;
            // the frame channel went with the receiver.
            EXPECT_EQ(testing::open_fd_count(), fds_at_start - 1);
            send_note(peer, {5, 0, 0});
        });
}

}  // namespace
}  // namespace texshare::vulkan
