// Host lane: texshare-info's small parts: JSON string escaping and layout, the round-trip
// pattern and its mismatch report, and the command line.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "json_writer.hpp"
#include "options.hpp"
#include "pattern.hpp"

namespace texshare::info {
namespace {

std::string parsed_string(const std::string& quoted) {
    return nlohmann::json::parse(quoted).get<std::string>();
}

TEST(TexshareInfoJsonString, EscapesWhatJsonRequires) {
    EXPECT_EQ(json_string("plain"), "\"plain\"");
    EXPECT_EQ(json_string("say \"hi\" \\ bye"), R"("say \"hi\" \\ bye")");
    EXPECT_EQ(json_string("a\nb\tc\rd\x01\x1f"), R"("a\nb\tc\rd\u0001\u001f")");
    EXPECT_EQ(parsed_string(json_string("a\nb\tc\rd\x01\x1f")), "a\nb\tc\rd\x01\x1f");
    EXPECT_EQ(json_string(std::string_view("nul\0byte", 8)), R"("nul\u0000byte")");
}

TEST(TexshareInfoJsonString, KeepsUtf8AndReplacesWhatIsNot) {
    const std::string utf8 = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";  // é, €, an emoji
    EXPECT_EQ(json_string(utf8), "\"" + utf8 + "\"");
    EXPECT_EQ(parsed_string(json_string(utf8)), utf8);
    const std::string replacement = "\xEF\xBF\xBD";
    // A stray byte, an overlong '/', a surrogate, a cut sequence, past U+10FFFF.
    for (const std::string bad : {"\xFF", "\xC0\xAF", "\xED\xA0\x80", "\xE2\x82", "\xF4\x90\x80\x80"}) {
        const std::string quoted = json_string("x" + bad + "y");
        EXPECT_NE(quoted.find("\\ufffd"), std::string::npos) << quoted;
        const std::string back = parsed_string(quoted);
        EXPECT_EQ(back.front(), 'x');
        EXPECT_EQ(back.back(), 'y');
        EXPECT_NE(back.find(replacement), std::string::npos);
    }
}

TEST(TexshareInfoJsonWriter, PlacesCommasAndIndentation) {
    JsonWriter json;
    json.begin_object().field("name", "texshare").field("big", std::numeric_limits<std::uint64_t>::max());
    json.field("small", std::int32_t{-3}).field("flag", false);
    json.key("empty_object").begin_object().end_object();
    json.key("empty_array").begin_array().end_array();
    json.key("list").begin_array().value(1).null().begin_object().field("k", "v").end_object().end_array();
    json.end_object();
    const std::string document = json.finish();
    EXPECT_EQ(document,
              "{\n"
              "  \"name\": \"texshare\",\n"
              "  \"big\": 18446744073709551615,\n"
              "  \"small\": -3,\n"
              "  \"flag\": false,\n"
              "  \"empty_object\": {},\n"
              "  \"empty_array\": [],\n"
              "  \"list\": [\n"
              "    1,\n"
              "    null,\n"
              "    {\n"
              "      \"k\": \"v\"\n"
              "    }\n"
              "  ]\n"
              "}\n");
    const auto parsed = nlohmann::json::parse(document);
    EXPECT_EQ(parsed["big"].get<std::uint64_t>(), std::numeric_limits<std::uint64_t>::max());
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
