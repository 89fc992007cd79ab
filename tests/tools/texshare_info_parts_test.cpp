// Host lane: texshare-info's small parts: the EGL extension list, the round-trip pattern
// and its mismatch report, and the command line.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "collect.hpp"
#include "options.hpp"
#include "pattern.hpp"

namespace texshare::info {
namespace {

TEST(TexshareInfoExtensions, SplitAtSpacesWithoutEmptyNames) {
    EXPECT_EQ(split_extensions("EGL_KHR_image_base EGL_EXT_image_dma_buf_import "),
              (std::vector<std::string>{"EGL_KHR_image_base", "EGL_EXT_image_dma_buf_import"}));
    EXPECT_EQ(split_extensions("  one  two"), (std::vector<std::string>{"one", "two"}));
    EXPECT_TRUE(split_extensions("").empty());
}

// The importer's error repeats the display's extensions; the report keeps them once.
TEST(TexshareInfoExtensions, TheImportersListIsCutFromItsError) {
    EXPECT_EQ(without_extension_list("EGL_EXT_image_dma_buf_import is missing on the surfaceless display, so "
                                     "EGL cannot import DMA-BUFs there (display extensions: EGL_KHR_a "
                                     "EGL_KHR_b )"),
              "EGL_EXT_image_dma_buf_import is missing on the surfaceless display, so EGL cannot import "
              "DMA-BUFs there");
    EXPECT_EQ(without_extension_list("GL_OES_EGL_image is missing (llvmpipe)"),
              "GL_OES_EGL_image is missing (llvmpipe)");
}

TEST(TexshareInfoPattern, WhatIsWrittenMatchesAndOneWrongByteIsFound) {
    constexpr std::uint32_t width = 4, height = 4, stride = 20;  // padded rows, like GBM's
    std::vector<std::byte> pixels(stride * height);
    const ByteOrder order = *byte_order(DRM_FORMAT_ARGB8888);
    write_pattern(pixels, stride, order, width, height);
    EXPECT_EQ(find_mismatch(pixels, stride, order, true, width, height), "");
    EXPECT_NE(find_mismatch(pixels, stride, rgba_order, true, width, height), "") << "R and B swapped";
    pixels[stride * 2 + 1 * 4 + order[1]] ^= std::byte{0xff};  // green of pixel (1, 2)
    const auto [r, g, b, a] = pattern_rgba(1, 2);
    EXPECT_EQ(find_mismatch(pixels, stride, order, true, width, height),
              fmt::format("1 of 16 pixels differ; first at (1, 2): got {},{},{},{}, want {},{},{},{}", r,
                          g ^ 0xff, b, a, r, g, b, a));
}

TEST(TexshareInfoPattern, AlphaIsIgnoredOnlyWhenAsked) {
    constexpr std::uint32_t width = 2, height = 2, stride = 8;
    std::vector<std::byte> pixels(stride * height);
    write_pattern(pixels, stride, rgba_order, width, height);
    for (std::size_t i = 3; i < pixels.size(); i += 4) pixels[i] = std::byte{0xff};  // what GL gives for X
    EXPECT_EQ(find_mismatch(pixels, stride, rgba_order, false, width, height), "");
    EXPECT_NE(find_mismatch(pixels, stride, rgba_order, true, width, height), "");
}

TEST(TexshareInfoPattern, TooFewBytesAreReportedNotRead) {
    std::vector<std::byte> pixels(15);
    EXPECT_EQ(find_mismatch(pixels, 8, rgba_order, true, 2, 2),
              "15 bytes with stride 8 cannot hold 2x2 pixels");
    EXPECT_EQ(find_mismatch(pixels, 4, rgba_order, true, 2, 2),
              "15 bytes with stride 4 cannot hold 2x2 pixels");
    EXPECT_FALSE(byte_order(DRM_FORMAT_NV12).has_value());
}

TEST(TexshareInfoOptions, ParsesEveryFlagAndRejectsTheRest) {
    const char* none[] = {"unused"};
    auto defaults = parse_options(std::span<const char* const>(none, 0));
    ASSERT_TRUE(defaults);
    EXPECT_FALSE(defaults->json || defaults->check_zero_copy || defaults->help);
    const char* all[] = {"--json", "--check-zero-copy", "-h"};
    auto flags = parse_options(all);
    ASSERT_TRUE(flags);
    EXPECT_TRUE(flags->json && flags->check_zero_copy && flags->help);
    const char* bad[] = {"--json", "--jsn"};
    auto rejected = parse_options(bad);
    ASSERT_FALSE(rejected);
    EXPECT_EQ(rejected.error().code, Errc::invalid_argument);
    EXPECT_EQ(rejected.error().message, "unknown argument \"--jsn\"");
}

}  // namespace
}  // namespace texshare::info
