#include "texshare/image_layout.hpp"

#include <gtest/gtest.h>

namespace texshare {
namespace {

ImageLayout argb(std::uint32_t width, std::uint32_t height, std::uint32_t stride, std::uint64_t offset = 0) {
    return ImageLayout{width, height, DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR, 1, {{{offset, stride}}}};
}

ImageLayout nv12(std::uint32_t width, std::uint32_t height) {
    ImageLayout layout{width, height, DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR, 2, {}};
    layout.planes[0] = {0, width};
    layout.planes[1] = {std::uint64_t{width} * height, width + (width & 1)};
    return layout;
}

void expect_rejected(const ImageLayout& layout, Errc code, const std::string& needle) {
    auto result = validate_layout(layout);
    ASSERT_FALSE(result) << "expected rejection containing: " << needle;
    EXPECT_EQ(result.error().code, code) << result.error().message;
    EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
}

TEST(ImageLayoutTest, AcceptsTightAndPaddedLayouts) {
    EXPECT_TRUE(validate_layout(argb(64, 64, 256)));
    EXPECT_TRUE(validate_layout(argb(64, 64, 512, 4096)));
    EXPECT_TRUE(validate_layout(nv12(64, 48)));
    EXPECT_TRUE(validate_layout(argb(max_image_dimension, 1, max_image_dimension * 4)));
}

TEST(ImageLayoutTest, RejectsUnknownFormat) {
    ImageLayout layout = argb(4, 4, 16);
    layout.fourcc = 0x20202020;
    expect_rejected(layout, Errc::unsupported, "unknown fourcc 0x20202020");
}

TEST(ImageLayoutTest, RejectsDimensionsOutOfRange) {
    expect_rejected(argb(0, 4, 16), Errc::invalid_layout, "size 0x4");
    expect_rejected(argb(4, 0, 16), Errc::invalid_layout, "size 4x0");
    expect_rejected(argb(max_image_dimension + 1, 1, (max_image_dimension + 1) * 4), Errc::invalid_layout,
                    "outside 1..16384");
}

TEST(ImageLayoutTest, RejectsStrideSmallerThanARow) {
    expect_rejected(argb(64, 64, 255), Errc::invalid_layout,
                    "stride 255 is smaller than one row of 64 pixels (256 bytes)");
    ImageLayout layout = nv12(64, 48);
    layout.planes[1].stride = 62;
    expect_rejected(layout, Errc::invalid_layout, "plane 1: stride 62");
}

TEST(ImageLayoutTest, SubsampledPlanesRoundUp) {
    // 5x3 NV12: chroma is 3x2 samples of 2 bytes, so the chroma stride must be >= 6.
    ImageLayout layout{5, 3, DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR, 2, {}};
    layout.planes[0] = {0, 5};
    layout.planes[1] = {15, 5};
    expect_rejected(layout, Errc::invalid_layout,
                    "plane 1: stride 5 is smaller than one row of 5 pixels (6 bytes)");
    layout.planes[1].stride = 6;
    ASSERT_TRUE(validate_layout(layout));
    EXPECT_EQ(plane_end(layout, 1), 15U + 6 * 2);  // two chroma rows for three luma rows
    EXPECT_EQ(required_size(layout), 27U);
}

TEST(ImageLayoutTest, RejectsPlaneCountThatDoesNotMatchFormat) {
    ImageLayout layout = argb(4, 4, 16);
    layout.plane_count = 2;
    layout.planes[1] = {64, 16};
    expect_rejected(layout, Errc::invalid_layout, "has 1 planes, layout declares 2");
    ImageLayout short_nv12 = nv12(4, 4);
    short_nv12.plane_count = 1;
    short_nv12.planes[1] = {};
    expect_rejected(short_nv12, Errc::invalid_layout, "has 2 planes, layout declares 1");
    layout.plane_count = 5;
    expect_rejected(layout, Errc::invalid_layout, "declares 5");
}

TEST(ImageLayoutTest, RejectsGarbageInUnusedPlanes) {
    ImageLayout layout = argb(4, 4, 16);
    layout.planes[3] = {7, 0};
    expect_rejected(layout, Errc::invalid_layout, "plane 3 is beyond the plane count 1 but has offset 7");
}

TEST(ImageLayoutTest, RejectsOverflowingExtents) {
    ImageLayout layout = argb(4, 4, 16, UINT64_MAX - 8);
    expect_rejected(layout, Errc::invalid_layout, "overflows 64 bits");
    expect_rejected(argb(16384, 16384, UINT32_MAX), Errc::invalid_layout, "beyond the 4294967296 limit");
    expect_rejected(argb(4, 4, 16, max_image_bytes), Errc::invalid_layout, "beyond the");
}

TEST(ImageLayoutTest, TiledModifiersAllowMetadataPlanes) {
    ImageLayout layout = argb(64, 64, 256);
    layout.modifier = I915_FORMAT_MOD_Y_TILED_CCS;
    layout.plane_count = 2;
    layout.planes[1] = {65536, 128};
    EXPECT_TRUE(validate_layout(layout));
    layout.modifier = DRM_FORMAT_MOD_LINEAR;
    expect_rejected(layout, Errc::invalid_layout, "with modifier LINEAR has 1 planes");
}

TEST(ImageLayoutTest, PackedLayoutAlignsStridesAndPlanes) {
    auto layout = make_packed_layout(DRM_FORMAT_NV12, 100, 50, 64);
    ASSERT_TRUE(layout) << layout.error().message;
    EXPECT_EQ(layout->plane_count, 2U);
    EXPECT_EQ(layout->planes[0].stride, 128U);
    EXPECT_EQ(layout->planes[1].offset, 128U * 50);
    EXPECT_EQ(layout->planes[1].stride, 128U);
    EXPECT_EQ(required_size(*layout), 128U * 50 + 128U * 25);

    auto yuv = make_packed_layout(DRM_FORMAT_YUV420, 33, 17, 16);
    ASSERT_TRUE(yuv);
    EXPECT_EQ(yuv->planes[1].stride, 32U);  // 17 chroma samples rounded to 16
    EXPECT_EQ(yuv->planes[2].offset, yuv->planes[1].offset + 32U * 9);
}

TEST(ImageLayoutTest, PackedLayoutRejectsBadRequests) {
    EXPECT_EQ(make_packed_layout(0, 4, 4).error().code, Errc::unsupported);
    EXPECT_EQ(make_packed_layout(DRM_FORMAT_ARGB8888, 4, 4, 48).error().code, Errc::invalid_argument);
    EXPECT_EQ(make_packed_layout(DRM_FORMAT_ARGB8888, 0, 4).error().code, Errc::invalid_layout);
}

}  // namespace
}  // namespace texshare
