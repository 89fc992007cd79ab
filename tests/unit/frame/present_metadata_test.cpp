// Per-present metadata (frame/present_metadata.hpp): building damage, collapsing it, checking
// a received one against its image, and counting damaged pixels.
#include "texshare/frame/present_metadata.hpp"

#include <gtest/gtest.h>

#include <tuple>
#include <vector>

#include "support/frame_pair.hpp"

namespace texshare {
namespace {

using testing::expect_error;

TEST(PresentMetadata, NoDamageIsTheWholeImage) {
    auto m = make_present_metadata({}, 64, 32);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->damage_count, 0U);
    EXPECT_TRUE(check_present_metadata(*m, 64, 32));
    EXPECT_EQ(damaged_pixel_count(*m, 64, 32), 64U * 32U);
}

TEST(PresentMetadata, UpToEightRectanglesGoAsTheyAre) {
    std::vector<DamageRect> rects;
    for (std::uint32_t i = 0; i < max_damage_rects; ++i) rects.push_back({i * 4, i, 2, 3});
    PresentInfo info;
    info.damage = rects;
    info.content_time_ns = 1234;
    info.flags = present_flag_opaque;
    auto m = make_present_metadata(info, 64, 32);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->damage_count, max_damage_rects);
    EXPECT_EQ(m->damage[7], (DamageRect{28, 7, 2, 3}));
    EXPECT_EQ(m->content_time_ns, 1234);
    EXPECT_EQ(m->flags, present_flag_opaque);
    EXPECT_TRUE(check_present_metadata(*m, 64, 32));
    EXPECT_EQ(damaged_pixel_count(*m, 64, 32), 8U * 6U);
}

TEST(PresentMetadata, MoreThanEightCollapseIntoTheirBoundingBox) {
    std::vector<DamageRect> rects;
    for (std::uint32_t i = 0; i < 9; ++i) rects.push_back({10 + i, 5 + 2 * i, 1, 1});
    PresentInfo info;
    info.damage = rects;
    auto m = make_present_metadata(info, 64, 32);
    ASSERT_TRUE(m) << m.error().message;
    ASSERT_EQ(m->damage_count, 1U);
    EXPECT_EQ(m->damage[0], (DamageRect{10, 5, 9, 17}));
    for (std::size_t i = 1; i < max_damage_rects; ++i) EXPECT_EQ(m->damage[i], DamageRect{});
    EXPECT_TRUE(check_present_metadata(*m, 64, 32));
}

// Two presents' damage for a consumer that shows only the second (merge_damage).
TEST(PresentMetadata, MergedDamageKeepsBothOrTheirBoundingBox) {
    PresentMetadata into, later;
    into.damage_count = 2;
    into.damage[0] = {0, 0, 2, 2};
    into.damage[1] = {4, 4, 2, 2};
    later.damage_count = 3;
    later.damage[0] = {10, 1, 1, 1};
    later.damage[1] = {1, 20, 3, 1};
    later.damage[2] = {6, 6, 1, 1};
    PresentMetadata merged = into;
    merge_damage(merged, later, true);
    ASSERT_EQ(merged.damage_count, 5U);
    EXPECT_EQ(merged.damage[4], (DamageRect{6, 6, 1, 1}));
    EXPECT_TRUE(check_present_metadata(merged, 64, 32));
    // Nine in all: their bounding box, the rest zero (a checked message again).
    later.damage_count = 7;
    for (std::uint32_t i = 3; i < 7; ++i) later.damage[i] = {30 + i, 2, 1, 1};
    merged = into;
    merge_damage(merged, later, true);
    ASSERT_EQ(merged.damage_count, 1U);
    EXPECT_EQ(merged.damage[0], (DamageRect{0, 0, 37, 21}));
    for (std::size_t i = 1; i < max_damage_rects; ++i) EXPECT_EQ(merged.damage[i], DamageRect{});
    EXPECT_TRUE(check_present_metadata(merged, 64, 32));
    // Whole if either is whole, or the sizes differ.
    for (const auto& [whole_first, whole_later, same_size] :
         {std::tuple{true, false, true}, std::tuple{false, true, true}, std::tuple{false, false, false}}) {
        PresentMetadata a = into, b = later;
        if (whole_first) a.damage_count = 0, a.damage = {};
        if (whole_later) b.damage_count = 0, b.damage = {};
        merge_damage(a, b, same_size);
        EXPECT_EQ(a.damage_count, 0U);
        EXPECT_EQ(a.damage[0], DamageRect{});
    }
}

TEST(PresentMetadata, OverlapsAreCountedOnce) {
    PresentMetadata m;
    m.damage_count = 3;
    m.damage[0] = {0, 0, 10, 10};
    m.damage[1] = {5, 5, 10, 10};  // overlaps the first in 5x5
    m.damage[2] = {0, 0, 10, 10};  // the first again
    EXPECT_EQ(damaged_pixel_count(m, 64, 32), 100U + 100U - 25U);
}

TEST(PresentMetadata, TheProducerCannotSendDamageOutsideTheImage) {
    const DamageRect outside[] = {{60, 0, 5, 1}, {0, 0, 0, 1}, {0, 31, 1, 2}, {0xffffffffU, 0, 2, 1}};
    for (const DamageRect& r : outside) {
        PresentInfo info;
        info.damage = {&r, 1};
        expect_error(make_present_metadata(info, 64, 32).error(), Errc::invalid_argument,
                     "is empty or outside the 64x32 image");
    }
    PresentInfo flags;
    flags.flags = 0x10;
    expect_error(make_present_metadata(flags, 64, 32).error(), Errc::invalid_argument, "flags 0x10");
}

// Each rule of check_present_metadata, one field at a time, with the overflow cases that a
// 32-bit sum would let through.
TEST(PresentMetadata, ReceivedMetadataIsCheckedFieldByField) {
    struct Case {
        void (*tamper)(PresentMetadata&);
        const char* error;
    };
    const Case cases[] = {
        {[](PresentMetadata& m) { m.flags = 0x80000000U; },
         "present flags 0x80000000 has unknown bits 0x80000000"},
        {[](PresentMetadata& m) { m.content_time_ns = -1; }, "content time -1 ns is negative"},
        {[](PresentMetadata& m) { m.damage_count = 9; }, "9 damage rectangles, more than 8"},
        {[](PresentMetadata& m) {
             m.damage[3] = {1, 1, 1, 1};
         },
         "damage rectangle 3 is set, but the count is 1"},
        {[](PresentMetadata& m) {
             m.damage[0] = {0, 0, 0, 4};
         },
         "damage rectangle 0 (0,0 0x4) is empty"},
        {[](PresentMetadata& m) {
             m.damage[0] = {0, 0, 4, 0};
         },
         "damage rectangle 0 (0,0 4x0) is empty"},
        {[](PresentMetadata& m) {
             m.damage[0] = {63, 0, 2, 1};
         },
         "outside the 64x32 image"},
        {[](PresentMetadata& m) {
             m.damage[0] = {0, 31, 1, 2};
         },
         "outside the 64x32 image"},
        {[](PresentMetadata& m) {
             m.damage[0] = {0xfffffff0U, 0, 0x20, 1};
         },
         "outside the 64x32 image"},  // wraps in 32 bits
        {[](PresentMetadata& m) {
             m.damage[0] = {0, 0xffffffffU, 1, 1};
         },
         "outside the 64x32 image"},
    };
    for (const Case& c : cases) {
        PresentMetadata m;
        m.damage_count = 1;
        m.damage[0] = {0, 0, 64, 32};
        ASSERT_TRUE(check_present_metadata(m, 64, 32));
        c.tamper(m);
        auto checked = check_present_metadata(m, 64, 32);
        ASSERT_FALSE(checked) << c.error;
        expect_error(checked.error(), Errc::protocol, c.error);
    }
}

}  // namespace
}  // namespace texshare
