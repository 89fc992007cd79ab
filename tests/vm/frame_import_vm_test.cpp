// VM lane: the EGL import cache (egl::ImportListener over an egl::Importer) kept in step with
// a FrameSender and a FrameReceiver in two processes, on real GBM DMA-BUFs in the qemu guest:
// a texture per shared image from the moment it is shared, gone when the image leaves, and
// a dead producer's last frame kept (or not) as Options::keep_last_frame says.
#include <poll.h>

#include <array>
#include <chrono>
#include <cstring>

#include "support/two_process.hpp"
#include "texshare/egl/fence.hpp"
#include "texshare/egl/import_listener.hpp"
#include "texshare/frame/protocol.hpp"
#include "vm/gl_side.hpp"

namespace texshare::egl {
namespace {

using namespace std::chrono_literals;
using testing::clear_texture;
using testing::Peer;
using testing::read_pixels;
using testing::run_pair;
using testing::send_note;
using testing::value_or_fail;
using testing::wait_note;

constexpr std::uint32_t side = 32;
// Only a bound for failing: the peer's first GL work (llvmpipe compiling its shaders, in a
// TCG guest sharing two host cores) took more than 5 s under load in the backports guest.
constexpr auto patience = 30s;

// Each image's pixels depend on its id, so a texture showing the wrong image is caught.
std::array<std::uint8_t, 4> pattern(std::uint64_t id, std::uint32_t x, std::uint32_t y) {
    return {static_cast<std::uint8_t>(id * 40), static_cast<std::uint8_t>(x * 8),
            static_cast<std::uint8_t>(y * 8), 255};
}

// A GBM image the CPU filled with pattern(id) (ABGR8888 memory is R, G, B, A: GL_RGBA).
std::optional<DmaBufImage> allocate_filled(const gbm::Device& device, std::uint64_t id) {
    auto image = value_or_fail(device.allocate({side, side, DRM_FORMAT_ABGR8888, {DRM_FORMAT_MOD_LINEAR}, 0}),
                               "allocation");
    if (!image) return std::nullopt;
    auto mapping = value_or_fail(image->map(Access::write), "mapping");
    if (!mapping) return std::nullopt;
    for (std::uint32_t y = 0; y < side; ++y) {
        for (std::uint32_t x = 0; x < side; ++x) {
            const auto rgba = pattern(id, x, y);
            std::memcpy(mapping->plane(0).data() + std::size_t{y} * mapping->stride(0) + x * 4, rgba.data(),
                        4);
        }
    }
    EXPECT_TRUE(mapping->finish());
    return image;
}

// Reads the texture of image `id` back through GL: every pixel must be pattern(written_as).
void expect_texture_shows(const testing::GlSide& gl, const ImportListener& listener, std::uint64_t id,
                          std::uint64_t written_as) {
    const ImportedTexture* texture = listener.texture(id);
    ASSERT_NE(texture, nullptr) << "image " << id << " has no texture";
    auto pixels = read_pixels(gl.display, texture->target, texture->texture, side, side);
    ASSERT_TRUE(pixels) << pixels.error().message;
    for (std::uint32_t i = 0; i < side * side; ++i) {
        const auto want = pattern(written_as, i % side, i / side);
        ASSERT_EQ(std::memcmp(pixels->data() + i * 4, want.data(), 4), 0) << "image " << id << " pixel " << i;
    }
}

// Polls and dispatches `endpoint` until `ready()`; a dispatch error (a dead peer) ends it.
template <typename Endpoint, typename Ready>
Result<void> dispatch_until(Endpoint& endpoint, Ready&& ready) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (!ready()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return make_error(Errc::timed_out, "dispatch_until");
        pollfd entry{endpoint.native_handle().get(), POLLIN, 0};
        (void)::poll(&entry, 1, 50);
        if (auto handled = endpoint.dispatch(); !handled) return std::move(handled).error();
    }
    return {};
}

// A producer's FrameSender over `peer` sharing `count` GBM images filled with pattern(id)
// under ids 1..count (a sender's first ids: checked). The device may go: the fds keep them.
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

using FrameImportVmTest = testing::FdLeakTest;

TEST_F(FrameImportVmTest, EveryProducerImageGetsOneTextureThatShowsItsPixelsUntilRetired) {
    run_pair(
        [](Peer& peer) {
            auto sender = sender_with_images(peer, 3);
            ASSERT_TRUE(sender);
            constexpr std::array<std::uint64_t, 3> ids{1, 2, 3};
            for (std::size_t k = 0; k < 2; ++k) {
                ASSERT_TRUE(sender->present(ids[k]));
                EXPECT_EQ(wait_note(peer).message.step, k + 1);
            }
            ASSERT_TRUE(
                dispatch_until(*sender, [&] { return sender->state(ids[0]) == FrameImageState::free; }));
            ASSERT_TRUE(sender->retire(ids[2]));
            ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->image(ids[2]) == nullptr; }));
            send_note(peer, {3, 0, 0});
            EXPECT_EQ(wait_note(peer).message.step, 4U);
        },
        [](Peer& peer) {
            auto gl = testing::open_gl_side();
            ASSERT_TRUE(gl);
            ImportListener listener(gl->importer);
            auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames)), "receiver");
            ASSERT_TRUE(receiver);
            receiver->set_listener(&listener);
            constexpr std::array<std::uint64_t, 3> ids{1, 2, 3};
            std::array<GLuint, 3> names{};
            std::uint64_t last_frame = 0;
            for (std::size_t k = 0; k < 2; ++k) {
                auto frame = value_or_fail(receiver->wait_for_frame(last_frame, patience), "frame");
                ASSERT_TRUE(frame);
                last_frame = frame->frame_number;
                EXPECT_EQ(frame->image_id, ids[k]);
                EXPECT_EQ(gl->importer.size(), 3U) << "one import per image, not per frame";
                for (std::size_t i = 0; i < ids.size(); ++i) {
                    const ImportedTexture* texture = listener.texture(ids[i]);
                    ASSERT_NE(texture, nullptr) << "image " << ids[i] << " was shared but has no texture";
                    if (k == 0) names[i] = texture->texture;
                    EXPECT_EQ(texture->texture, names[i]) << "image " << ids[i] << " was imported again";
                }
                expect_texture_shows(*gl, listener, frame->image_id, ids[k]);
                send_note(peer, {static_cast<std::uint32_t>(k + 1), 0, 0});
            }
            ASSERT_TRUE(dispatch_until(*receiver, [&] { return gl->importer.size() == 2; }))
                << "the retired image kept its texture";
            EXPECT_EQ(listener.texture(ids[2]), nullptr);
            EXPECT_NE(listener.texture(ids[1]), nullptr);
            EXPECT_EQ(wait_note(peer).message.step, 3U);
            receiver.reset();
            EXPECT_EQ(gl->importer.size(), 0U) << "a closed receiver leaves no textures behind";
            send_note(peer, {4, 0, 0});
        });
}

class ProducerDeathVmTest : public testing::FdLeakTest, public ::testing::WithParamInterface<bool> {};

TEST_P(ProducerDeathVmTest, LastFramesTextureSurvivesOnlyWithKeepLastFrame) {
    run_pair(
        [](Peer& peer) {
            auto sender = sender_with_images(peer, 2);
            ASSERT_TRUE(sender);
            ASSERT_TRUE(sender->present(2));
            wait_note(peer);
            sender.reset();  // dies without a bye: the consumer sees the socket close
            send_note(peer, {2, 0, 0});
        },
        [keep = GetParam()](Peer& peer) {
            auto gl = testing::open_gl_side();
            ASSERT_TRUE(gl);
            ImportListener listener(gl->importer);
            auto receiver = value_or_fail(
                FrameReceiver::create(std::move(peer.frames), {.keep_last_frame = keep}), "receiver");
            ASSERT_TRUE(receiver);
            receiver->set_listener(&listener);
            auto frame = value_or_fail(receiver->wait_for_frame(0, patience), "frame");
            ASSERT_TRUE(frame);
            EXPECT_EQ(gl->importer.size(), 2U);
            send_note(peer, {1, 0, 0});
            EXPECT_EQ(wait_note(peer).message.step, 2U);
            auto gone = dispatch_until(*receiver, [] { return false; });
            ASSERT_FALSE(gone);
            EXPECT_EQ(gone.error().code, Errc::peer_closed) << gone.error().message;
            EXPECT_EQ(listener.texture(1), nullptr);
            EXPECT_EQ(listener.texture(2), nullptr);
            if (!keep) {
                EXPECT_EQ(gl->importer.size(), 0U);
                EXPECT_FALSE(receiver->current());
                return;
            }
            EXPECT_EQ(gl->importer.size(), 1U);
            auto kept = receiver->current();
            ASSERT_TRUE(kept);
            EXPECT_EQ(kept->image_id, retained_image_id);
            EXPECT_TRUE(kept->producer_gone);
            expect_texture_shows(*gl, listener, retained_image_id, 2);  // the dead producer's last frame
            ASSERT_TRUE(receiver->release(retained_image_id));
            EXPECT_EQ(gl->importer.size(), 0U);
        });
}

INSTANTIATE_TEST_SUITE_P(KeepLastFrame, ProducerDeathVmTest, ::testing::Bool());

// The other allocation direction: the consumer shares its own GBM images (importing them
// itself, as local images); the producer imports them with its own listener and renders.
TEST_F(FrameImportVmTest, ConsumerImagesAreImportedOnBothSidesAndDroppedWhenRetired) {
    constexpr std::array<std::uint8_t, 4> rgba{51, 102, 153, 255};
    run_pair(
        [rgba](Peer& peer) {
            auto gl = testing::open_gl_side();
            ASSERT_TRUE(gl);
            ImportListener listener(gl->importer);
            auto sender = value_or_fail(FrameSender::create(std::move(peer.frames)), "sender");
            ASSERT_TRUE(sender);
            sender->set_listener(&listener);
            ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->image_count() == 2; }));
            EXPECT_EQ(gl->importer.size(), 2U);
            auto target = value_or_fail(sender->acquire_free_image(), "free image");
            ASSERT_TRUE(target);
            EXPECT_FALSE(sender->is_local(target->id));
            ASSERT_TRUE(wait_for_peer(gl->display, choose_sync_mode(gl->display),
                                      std::move(target->release_fence), *sender->image(target->id),
                                      Access::write, patience));
            const ImportedTexture* texture = listener.texture(target->id);
            ASSERT_NE(texture, nullptr);
            ASSERT_TRUE(clear_texture(gl->display, texture->texture, rgba[0] / 255.0F, rgba[1] / 255.0F,
                                      rgba[2] / 255.0F, rgba[3] / 255.0F));
            auto acquire = value_or_fail(fence_for_peer(gl->display, choose_sync_mode(gl->display),
                                                        *sender->image(target->id), Access::write),
                                         "fence");
            ASSERT_TRUE(acquire);
            ASSERT_TRUE(sender->present(target->id, acquire->borrow()));
            ASSERT_TRUE(dispatch_until(*sender, [&] { return gl->importer.size() == 1; }))
                << "the image the consumer retired kept its texture here";
            EXPECT_NE(listener.texture(target->id), nullptr);
            send_note(peer, {1, 0, 0});
            wait_note(peer);
        },
        [rgba](Peer& peer) {
            auto gl = testing::open_gl_side();
            ASSERT_TRUE(gl);
            ImportListener listener(gl->importer);
            auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames)), "receiver");
            ASSERT_TRUE(receiver);
            receiver->set_listener(&listener);
            std::array<std::uint64_t, 2> ids{};
            for (std::uint64_t& id : ids) {
                auto image = allocate_filled(gl->device, 0);
                ASSERT_TRUE(image);
                auto added = value_or_fail(receiver->add_image(std::move(*image)), "add_image");
                ASSERT_TRUE(added);
                EXPECT_NE(*added & consumer_image_id_bit, 0U);
                id = *added;
            }
            EXPECT_EQ(gl->importer.size(), 2U) << "this side's own images are imported when added";
            auto frame = value_or_fail(receiver->wait_for_frame(0, patience), "frame");
            ASSERT_TRUE(frame);
            ASSERT_TRUE(wait_for_peer(gl->display, choose_sync_mode(gl->display),
                                      receiver->take_acquire_fence(), *frame->image, Access::read, patience));
            const ImportedTexture* texture = listener.texture(frame->image_id);
            ASSERT_NE(texture, nullptr);
            auto pixels = read_pixels(gl->display, texture->target, texture->texture, side, side);
            ASSERT_TRUE(pixels) << pixels.error().message;
            for (std::uint32_t i = 0; i < side * side; ++i) {
                ASSERT_EQ(std::memcmp(pixels->data() + i * 4, rgba.data(), 4), 0) << "pixel " << i;
            }
            const std::uint64_t other = frame->image_id == ids[0] ? ids[1] : ids[0];
            ASSERT_TRUE(receiver->retire(other));
            ASSERT_TRUE(dispatch_until(*receiver, [&] { return gl->importer.size() == 1; }))
                << "the retired image kept its texture";
            EXPECT_EQ(listener.texture(other), nullptr);
            EXPECT_EQ(wait_note(peer).message.step, 1U);
            send_note(peer, {2, 0, 0});
        });
}

}  // namespace
}  // namespace texshare::egl
