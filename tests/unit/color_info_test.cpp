#include "texshare/color_info.hpp"

#include <gtest/gtest.h>

#include "texshare/memfd_allocator.hpp"

namespace texshare {
namespace {

void expect_refused(const Result<void>& result, Errc code, const std::string& needle) {
    ASSERT_FALSE(result) << "expected: " << needle;
    EXPECT_EQ(result.error().code, code) << result.error().message;
    EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
}

ColorInfo bt709_limited_video() {
    ColorInfo c;
    c.matrix = YuvMatrix::bt709;
    c.range = YuvRange::limited;
    c.chroma_horizontal = ChromaSiting::cosited;
    c.chroma_vertical = ChromaSiting::midpoint;
    c.transfer = TransferFunction::bt709;
    c.primaries = ColorPrimaries::bt709;
    return c;
}

TEST(ColorInfo, EveryFieldIsOneByteAndZeroMeansUnspecified) {
    EXPECT_EQ(sizeof(ColorInfo), 8U);
    const ColorInfo c;
    std::uint8_t bytes[8];
    std::memcpy(bytes, &c, sizeof bytes);
    for (std::uint8_t b : bytes) EXPECT_EQ(b, 0);
    EXPECT_EQ(to_string(c.matrix), "unspecified");
    EXPECT_EQ(to_string(static_cast<TransferFunction>(9)), "unknown");
}

TEST(ColorInfo, AcceptsVideoOnYuvAndTransferPrimariesAlphaOnRgb) {
    EXPECT_TRUE(check_color(bt709_limited_video(), DRM_FORMAT_NV12, Errc::protocol));
    ColorInfo everything = bt709_limited_video();
    everything.matrix = YuvMatrix::bt2020;
    everything.range = YuvRange::full;
    everything.transfer = TransferFunction::pq;
    everything.primaries = ColorPrimaries::bt2020;
    EXPECT_TRUE(check_color(everything, DRM_FORMAT_P010, Errc::protocol));
    EXPECT_TRUE(check_color(everything, DRM_FORMAT_YUV420, Errc::protocol));
    ColorInfo hdr;
    hdr.transfer = TransferFunction::linear;
    hdr.primaries = ColorPrimaries::bt2020;
    hdr.alpha = AlphaMode::straight;
    EXPECT_TRUE(check_color(hdr, DRM_FORMAT_ABGR16161616F, Errc::protocol));
    EXPECT_TRUE(check_color(ColorInfo{}, DRM_FORMAT_XRGB8888, Errc::protocol));
    hdr.alpha = AlphaMode::unspecified;
    hdr.transfer = TransferFunction::hlg;
    EXPECT_TRUE(check_color(hdr, DRM_FORMAT_XRGB2101010, Errc::protocol));
}

TEST(ColorInfo, RefusesUnknownValuesNamingFieldAndValue) {
    const auto refused = [](auto mutate, const std::string& needle) {
        ColorInfo c = bt709_limited_video();
        mutate(c);
        expect_refused(check_color(c, DRM_FORMAT_NV12, Errc::protocol), Errc::protocol, needle);
    };
    refused([](ColorInfo& c) { c.matrix = static_cast<YuvMatrix>(4); },
            "colour matrix 4 is unknown (this side knows 0..3)");
    refused([](ColorInfo& c) { c.range = static_cast<YuvRange>(3); },
            "colour range 3 is unknown (this side knows 0..2)");
    refused([](ColorInfo& c) { c.chroma_horizontal = static_cast<ChromaSiting>(3); },
            "colour chroma_horizontal 3 is unknown");
    refused([](ColorInfo& c) { c.chroma_vertical = static_cast<ChromaSiting>(255); },
            "colour chroma_vertical 255 is unknown");
    refused([](ColorInfo& c) { c.transfer = static_cast<TransferFunction>(6); },
            "colour transfer 6 is unknown (this side knows 0..5)");
    refused([](ColorInfo& c) { c.primaries = static_cast<ColorPrimaries>(6); },
            "colour primaries 6 is unknown (this side knows 0..5)");
    refused([](ColorInfo& c) { c.alpha = static_cast<AlphaMode>(3); },
            "colour alpha 3 is unknown (this side knows 0..2)");
    refused([](ColorInfo& c) { c.reserved = 7; }, "colour reserved byte is 7, not 0");
}

TEST(ColorInfo, RefusesYuvFieldsOnRgbAndAlphaWithoutAlpha) {
    const auto refused = [](auto mutate, std::uint32_t fourcc, const std::string& needle) {
        ColorInfo c;
        mutate(c);
        expect_refused(check_color(c, fourcc, Errc::invalid_argument), Errc::invalid_argument, needle);
    };
    refused([](ColorInfo& c) { c.matrix = YuvMatrix::bt709; }, DRM_FORMAT_ARGB8888,
            "YUV matrix bt709, range unspecified, chroma siting unspecified/unspecified are for YUV formats "
            "only");
    refused([](ColorInfo& c) { c.range = YuvRange::full; }, DRM_FORMAT_XBGR8888, "range full");
    refused([](ColorInfo& c) { c.chroma_horizontal = ChromaSiting::midpoint; }, DRM_FORMAT_R8,
            "YUV formats only");
    refused([](ColorInfo& c) { c.chroma_vertical = ChromaSiting::cosited; }, DRM_FORMAT_ABGR2101010,
            "YUV formats only");
    refused([](ColorInfo& c) { c.alpha = AlphaMode::premultiplied; }, DRM_FORMAT_XRGB8888,
            "alpha mode premultiplied on a format without alpha");
    refused([](ColorInfo& c) { c.alpha = AlphaMode::straight; }, DRM_FORMAT_NV12,
            "on a format without alpha");
    expect_refused(check_color(ColorInfo{}, 0x41414141, Errc::protocol), Errc::unsupported, "unknown fourcc");
}

TEST(ColorInfo, ResolveGivesTheDocumentedDefaults) {
    const ColorInfo yuv = resolve_color(ColorInfo{}, *find_format(DRM_FORMAT_NV12));
    EXPECT_EQ(yuv.matrix, YuvMatrix::bt601);
    EXPECT_EQ(yuv.range, YuvRange::limited);
    EXPECT_EQ(yuv.chroma_horizontal, ChromaSiting::cosited);
    EXPECT_EQ(yuv.chroma_vertical, ChromaSiting::cosited);
    EXPECT_EQ(yuv.transfer, TransferFunction::srgb);
    EXPECT_EQ(yuv.primaries, ColorPrimaries::bt709);
    EXPECT_EQ(yuv.alpha, AlphaMode::unspecified) << "NV12 has no alpha";
    const ColorInfo rgba = resolve_color(ColorInfo{}, *find_format(DRM_FORMAT_ABGR8888));
    EXPECT_EQ(rgba.matrix, YuvMatrix::unspecified);
    EXPECT_EQ(rgba.range, YuvRange::unspecified);
    EXPECT_EQ(rgba.alpha, AlphaMode::premultiplied);
    EXPECT_TRUE(check_color(rgba, DRM_FORMAT_ABGR8888, Errc::protocol))
        << "resolved colour still follows the rules";
    EXPECT_TRUE(check_color(yuv, DRM_FORMAT_NV12, Errc::protocol));
    const ColorInfo set = resolve_color(bt709_limited_video(), *find_format(DRM_FORMAT_NV12));
    EXPECT_EQ(set.matrix, YuvMatrix::bt709) << "a value the producer gave is kept";
    EXPECT_EQ(set.chroma_vertical, ChromaSiting::midpoint);
    EXPECT_EQ(set.transfer, TransferFunction::bt709);
}

TEST(ColorInfo, DmaBufImageKeepsItsColourAndRefusesABadOne) {
    auto image = MemfdAllocator().allocate(16, 16, DRM_FORMAT_NV12);
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_EQ(image->color(), ColorInfo{});
    ASSERT_TRUE(image->set_color(bt709_limited_video()));
    EXPECT_EQ(image->color(), bt709_limited_video());
    ColorInfo bad = bt709_limited_video();
    bad.alpha = AlphaMode::straight;
    expect_refused(image->set_color(bad), Errc::invalid_argument, "NV12");
    EXPECT_EQ(image->color(), bt709_limited_video()) << "a refused colour leaves the image's as it was";
    DmaBufImage moved;
    moved = std::move(*image);
    EXPECT_EQ(moved.color(), bt709_limited_video()) << "move assignment carries the colour";
}

}  // namespace
}  // namespace texshare
