#include "texshare/format_set.hpp"

#include <drm_fourcc.h>
#include <gtest/gtest.h>

namespace texshare {
namespace {

constexpr std::uint64_t y_tiled = I915_FORMAT_MOD_Y_TILED;

TEST(FormatSetTest, AddKeepsOrderAndMergesFlagsOfAPairAddedAgain) {
    FormatSet set;
    EXPECT_TRUE(set.add(DRM_FORMAT_ARGB8888, y_tiled));
    EXPECT_TRUE(set.add(DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR));
    EXPECT_TRUE(set.add(DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR));
    EXPECT_FALSE(set.add(DRM_FORMAT_ARGB8888, y_tiled, format_scanout)) << "already there";
    ASSERT_EQ(set.size(), 2U);
    EXPECT_EQ(set.pair_count(), 3U);
    EXPECT_EQ(set.formats()[0].fourcc, DRM_FORMAT_ARGB8888);
    EXPECT_EQ(set.formats()[0].modifiers,
              (std::vector<FormatModifier>{{y_tiled, format_scanout}, {DRM_FORMAT_MOD_LINEAR, 0}}));
    EXPECT_EQ(set.formats()[1].fourcc, DRM_FORMAT_XRGB8888);
    EXPECT_TRUE(set.contains(DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR));
    EXPECT_FALSE(set.contains(DRM_FORMAT_XRGB8888, y_tiled));
    EXPECT_FALSE(set.contains(DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR));
    EXPECT_EQ(set.find(DRM_FORMAT_NV12), nullptr);
}

TEST(FormatSetTest, InitializerListIsAddInOrder) {
    FormatSet listed{{DRM_FORMAT_ARGB8888, y_tiled}, {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR, format_scanout}};
    FormatSet added;
    added.add(DRM_FORMAT_ARGB8888, y_tiled);
    added.add(DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR, format_scanout);
    EXPECT_EQ(listed, added);
    FormatSet reordered{{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR, format_scanout}, {DRM_FORMAT_ARGB8888, y_tiled}};
    EXPECT_NE(listed, reordered) << "the order is the preference";
}

TEST(FormatSetTest, RemoveDropsAFourccWithItsLastModifier) {
    FormatSet set{{DRM_FORMAT_ARGB8888, y_tiled}, {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}};
    EXPECT_FALSE(set.remove(DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_INVALID));
    EXPECT_FALSE(set.remove(DRM_FORMAT_NV12, y_tiled));
    EXPECT_TRUE(set.remove(DRM_FORMAT_ARGB8888, y_tiled));
    ASSERT_NE(set.find(DRM_FORMAT_ARGB8888), nullptr);
    EXPECT_TRUE(set.remove(DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR));
    EXPECT_EQ(set.find(DRM_FORMAT_ARGB8888), nullptr);
    EXPECT_TRUE(set.empty());
}

TEST(FormatSetTest, IntersectKeepsThisSidesOrderAndFlags) {
    const FormatSet consumer{{DRM_FORMAT_ARGB8888, y_tiled, format_scanout},
                             {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR},
                             {DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR, format_external_only}};
    const FormatSet producer{{DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR},
                             {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR},
                             {DRM_FORMAT_ARGB8888, y_tiled}};
    EXPECT_EQ(consumer.intersect(producer),
              (FormatSet{{DRM_FORMAT_ARGB8888, y_tiled, format_scanout}, {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}}));
    EXPECT_TRUE(consumer.intersect(FormatSet{}).empty());
}

TEST(FormatSetTest, WithoutDropsPairsCarryingAFlag) {
    // EGL's importable formats minus the external-only ones: what it can render to.
    const FormatSet importable{{DRM_FORMAT_ARGB8888, y_tiled, format_external_only},
                               {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR},
                               {DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR, format_external_only}};
    EXPECT_EQ(importable.without(format_external_only), (FormatSet{{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}}));
    EXPECT_EQ(importable.without(0), importable);
}

}  // namespace
}  // namespace texshare
