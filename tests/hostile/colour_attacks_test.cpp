// Attacks on the colour of an image (issue 16, descriptor version 3: color_info.hpp). A peer
// sends add_image with a colour no texshare knows (every field, the reserved byte), YUV
// fields on an RGB image, or an alpha mode on a format without alpha. The victim is a
// FrameReceiver; the check is import_image()'s check_color(). Each refusal is Errc::protocol
// naming the field and its value, adds no image, leaves no fd open (the fixture's count) and
// the peer is still heard; a well-labelled NV12 video image is taken with its colour.
#include "hostile/hostile_peer.hpp"
#include "texshare/color_info.hpp"

namespace texshare::hostile {
namespace {

// A well-formed 16x16 NV12 shared-memory add_image for `id` (planes at 0 and 256, rows of 16
// bytes, both in one 384-byte memfd), labelled BT.709 limited range video, before tampering.
FrameMessage nv12_add_image(std::uint64_t id) {
    FrameMessage message = add_image_message(id);
    ImageDescriptor d = message.descriptor();
    d.fourcc = DRM_FORMAT_NV12;
    d.plane_count = 2;
    d.fd_plane_mask = 0b11;
    d.planes[0] = WirePlane{0, 16, 0};
    d.planes[1] = WirePlane{256, 16, 0};
    d.color.matrix = YuvMatrix::bt709;
    d.color.range = YuvRange::limited;
    d.color.chroma_horizontal = ChromaSiting::cosited;
    d.color.chroma_vertical = ChromaSiting::midpoint;
    d.color.transfer = TransferFunction::bt709;
    d.color.primaries = ColorPrimaries::bt709;
    message.set_descriptor(d);
    return message;
}

class ColourAttack : public ConsumerUnderAttack {
protected:
    // Sends `message` after `edit` changed its colour, with its planes' fds.
    template <typename Edit>
    void send_coloured(FrameMessage message, Edit edit) {
        ImageDescriptor d = message.descriptor();
        edit(d.color);
        message.set_descriptor(d);
        UniqueFd memory = sealed_memfd(16 * 16 * 4);
        if (d.plane_count == 2) {
            send(message, 0b11, {memory.get(), memory.get()});
        } else {
            send(message, 0b1, {memory.get()});
        }
    }
    template <typename Edit>
    void expect_colour_refused(FrameMessage message, Edit edit, const std::string& needle) {
        send_coloured(std::move(message), edit);
        expect_refused(Errc::protocol, needle);
        EXPECT_EQ(victim_->image(1), nullptr);
        expect_still_usable();
    }
};

TEST_F(ColourAttack, WellLabelledVideoIsTakenWithItsColour) {
    send_coloured(nv12_add_image(1), [](ColorInfo&) {});
    auto handled = victim_->dispatch();
    ASSERT_TRUE(handled) << handled.error().message;
    ASSERT_NE(victim_->image(1), nullptr);
    EXPECT_EQ(victim_->image(1)->color(), nv12_add_image(1).descriptor().color);
}

TEST_F(ColourAttack, UnknownMatrix) {
    expect_colour_refused(
        nv12_add_image(1), [](ColorInfo& c) { c.matrix = static_cast<YuvMatrix>(4); },
        "image 1: colour matrix 4 is unknown (this side knows 0..3)");
}
TEST_F(ColourAttack, UnknownRange) {
    expect_colour_refused(
        nv12_add_image(1), [](ColorInfo& c) { c.range = static_cast<YuvRange>(255); },
        "colour range 255 is unknown (this side knows 0..2)");
}
TEST_F(ColourAttack, UnknownHorizontalSiting) {
    expect_colour_refused(
        nv12_add_image(1), [](ColorInfo& c) { c.chroma_horizontal = static_cast<ChromaSiting>(3); },
        "colour chroma_horizontal 3 is unknown");
}
TEST_F(ColourAttack, UnknownVerticalSiting) {
    expect_colour_refused(
        nv12_add_image(1), [](ColorInfo& c) { c.chroma_vertical = static_cast<ChromaSiting>(128); },
        "colour chroma_vertical 128 is unknown");
}
TEST_F(ColourAttack, UnknownTransferFunction) {
    expect_colour_refused(
        nv12_add_image(1), [](ColorInfo& c) { c.transfer = static_cast<TransferFunction>(6); },
        "colour transfer 6 is unknown (this side knows 0..5)");
}
TEST_F(ColourAttack, UnknownPrimaries) {
    expect_colour_refused(
        nv12_add_image(1), [](ColorInfo& c) { c.primaries = static_cast<ColorPrimaries>(77); },
        "colour primaries 77 is unknown");
}
TEST_F(ColourAttack, UnknownAlphaMode) {
    expect_colour_refused(
        add_image_message(1), [](ColorInfo& c) { c.alpha = static_cast<AlphaMode>(3); },
        "colour alpha 3 is unknown (this side knows 0..2)");
}
TEST_F(ColourAttack, ReservedByteSet) {
    expect_colour_refused(
        add_image_message(1), [](ColorInfo& c) { c.reserved = 0x80; }, "colour reserved byte is 128, not 0");
}
TEST_F(ColourAttack, RgbImageWithAYuvMatrix) {
    expect_colour_refused(
        add_image_message(1), [](ColorInfo& c) { c.matrix = YuvMatrix::bt2020; },
        "colour of AR24 (ARGB8888): YUV matrix bt2020");
}
TEST_F(ColourAttack, RgbImageWithARange) {
    expect_colour_refused(
        add_image_message(1), [](ColorInfo& c) { c.range = YuvRange::limited; },
        "range limited, chroma siting unspecified/unspecified are for YUV formats only");
}
TEST_F(ColourAttack, RgbImageWithAChromaSiting) {
    expect_colour_refused(
        add_image_message(1), [](ColorInfo& c) { c.chroma_horizontal = ChromaSiting::midpoint; },
        "chroma siting midpoint/unspecified are for YUV formats only");
}
TEST_F(ColourAttack, AlphaModeOnAFormatWithoutAlpha) {
    expect_colour_refused(
        nv12_add_image(1), [](ColorInfo& c) { c.alpha = AlphaMode::straight; },
        "colour of NV12 (NV12): alpha mode straight on a format without alpha");
}

}  // namespace
}  // namespace texshare::hostile
