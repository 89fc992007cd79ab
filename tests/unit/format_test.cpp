#include "texshare/format.hpp"

#include <gtest/gtest.h>

#include <set>

namespace texshare {
namespace {

struct Expected {
    std::uint32_t fourcc;
    int planes;
    int bytes[3];
    int hsub, vsub;  // of the chroma planes
};

TEST(FormatTest, FactsForRequiredFormats) {
    const Expected table[] = {
        {DRM_FORMAT_ARGB8888, 1, {4}, 1, 1},     {DRM_FORMAT_XRGB8888, 1, {4}, 1, 1},
        {DRM_FORMAT_ABGR8888, 1, {4}, 1, 1},     {DRM_FORMAT_XBGR8888, 1, {4}, 1, 1},
        {DRM_FORMAT_RGB565, 1, {2}, 1, 1},       {DRM_FORMAT_ARGB2101010, 1, {4}, 1, 1},
        {DRM_FORMAT_NV12, 2, {1, 2}, 2, 2},      {DRM_FORMAT_P010, 2, {2, 4}, 2, 2},
        {DRM_FORMAT_YUV420, 3, {1, 1, 1}, 2, 2},
    };
    for (const Expected& want : table) {
        const FormatInfo* info = find_format(want.fourcc);
        ASSERT_NE(info, nullptr) << format_name(want.fourcc);
        EXPECT_EQ(info->plane_count, want.planes) << info->name;
        for (int i = 0; i < want.planes; ++i) {
            EXPECT_EQ(info->planes[i].bytes_per_pixel, want.bytes[i]) << info->name << " plane " << i;
            const int expected_sub = i == 0 ? 1 : want.hsub;
            EXPECT_EQ(info->planes[i].horizontal_subsampling, expected_sub) << info->name;
            EXPECT_EQ(info->planes[i].vertical_subsampling, i == 0 ? 1 : want.vsub) << info->name;
        }
    }
}

TEST(FormatTest, UnknownFourccHasNoFacts) {
    EXPECT_EQ(find_format(0), nullptr);
    EXPECT_EQ(find_format(0x12345678), nullptr);
}

TEST(FormatTest, TableHasNoDuplicatesAndSaneFacts) {
    std::set<std::uint32_t> seen;
    for (const FormatInfo& info : known_formats()) {
        EXPECT_TRUE(seen.insert(info.fourcc).second) << info.name;
        EXPECT_GE(info.plane_count, 1);
        EXPECT_LE(info.plane_count, 4);
        for (int i = 0; i < info.plane_count; ++i) EXPECT_GT(info.planes[i].bytes_per_pixel, 0);
    }
}

TEST(FormatTest, NamesComeFromLibdrm) {
    EXPECT_EQ(format_name(DRM_FORMAT_ARGB8888), "AR24 (ARGB8888)");
    EXPECT_EQ(format_name(DRM_FORMAT_NV12), "NV12 (NV12)");
    EXPECT_EQ(format_name(0x12345678), "unknown fourcc 0x12345678");
}

TEST(FormatTest, ModifierNamesComeFromLibdrm) {
    EXPECT_EQ(modifier_name(DRM_FORMAT_MOD_LINEAR), "LINEAR");
    EXPECT_EQ(modifier_name(DRM_FORMAT_MOD_INVALID), "INVALID");
    EXPECT_EQ(modifier_name(I915_FORMAT_MOD_X_TILED), "INTEL_X_TILED");
    EXPECT_EQ(modifier_name(0x0f00000000000001ULL), "unknown modifier 0x0f00000000000001");
}

}  // namespace
}  // namespace texshare
