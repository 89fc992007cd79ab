#include "texshare/format_table.hpp"

#include <sys/eventfd.h>

#include <algorithm>

#include "support/fd_count.hpp"

namespace texshare {
namespace {

class FormatTableTest : public testing::FdLeakTest {
protected:
    static FormatTable sample() {
        return FormatTable{0xe200,
                           {{DRM_FORMAT_ARGB8888, I915_FORMAT_MOD_X_TILED, format_scanout},
                            {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR},
                            {DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR, format_external_only}}};
    }
    // A memfd holding `bytes`, sealed with `seals`.
    static UniqueFd memfd_with(const std::vector<std::byte>& bytes, unsigned seals = format_table_seals) {
        UniqueFd fd(::memfd_create("table", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        EXPECT_EQ(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
        if (seals != 0) {
            EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, seals), 0);
        }
        return fd;
    }
    static std::vector<std::byte> bytes_of(BorrowedFd fd) {
        std::vector<std::byte> bytes(static_cast<std::size_t>(::lseek(fd.get(), 0, SEEK_END)));
        EXPECT_EQ(::pread(fd.get(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
        return bytes;
    }
    static void expect_rejected(Result<FormatTable> decoded, const std::string& needle) {
        ASSERT_FALSE(decoded);
        EXPECT_EQ(decoded.error().code, Errc::rejected) << decoded.error().message;
        EXPECT_NE(decoded.error().message.find(needle), std::string::npos) << decoded.error().message;
    }
};

TEST_F(FormatTableTest, RoundTripsThroughASealedReadOnlyMemfd) {
    auto fd = encode_format_table(sample());
    ASSERT_TRUE(fd) << fd.error().message;
    EXPECT_EQ(::fcntl(fd->get(), F_GET_SEALS) & format_table_seals, static_cast<int>(format_table_seals));
    EXPECT_EQ(::write(fd->get(), "x", 1), -1) << "sealed against writes";
    auto decoded = decode_format_table(fd->borrow());
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, sample());
    EXPECT_TRUE(decoded->contains(DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR));
    EXPECT_FALSE(decoded->contains(DRM_FORMAT_NV12, I915_FORMAT_MOD_X_TILED));
    EXPECT_EQ(decoded->formats.find(DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR)->flags, format_external_only);
}

// The wire lists pairs one by one; a peer may interleave fourccs. Decoded, each fourcc's
// modifiers keep the peer's order (its preference), grouped under the fourcc.
TEST_F(FormatTableTest, InterleavedPairsDecodeGroupedByFourccInTheirOrder) {
    auto fd = encode_format_table(sample());
    ASSERT_TRUE(fd);
    auto bytes = bytes_of(fd->borrow());
    // Swap entries 1 (ARGB8888 LINEAR) and 2 (NV12 LINEAR): ARGB, NV12, ARGB on the wire.
    std::swap_ranges(bytes.begin() + 24 + 16, bytes.begin() + 24 + 32, bytes.begin() + 24 + 32);
    auto decoded = decode_format_table(memfd_with(bytes).borrow());
    ASSERT_TRUE(decoded) << decoded.error().message;
    ASSERT_EQ(decoded->formats.size(), 2U);
    EXPECT_EQ(decoded->formats.formats()[0].fourcc, DRM_FORMAT_ARGB8888);
    EXPECT_EQ(decoded->formats.formats()[0].modifiers,
              (std::vector<FormatModifier>{{I915_FORMAT_MOD_X_TILED, format_scanout}, {DRM_FORMAT_MOD_LINEAR, 0}}));
    EXPECT_EQ(*decoded, sample());
}

TEST_F(FormatTableTest, RefusesAPairListedTwice) {
    auto fd = encode_format_table(sample());
    ASSERT_TRUE(fd);
    auto bytes = bytes_of(fd->borrow());
    std::copy(bytes.begin() + 24, bytes.begin() + 40, bytes.begin() + 40);  // entry 1 = entry 0
    expect_rejected(decode_format_table(memfd_with(bytes).borrow()), "lists AR24");
}

TEST_F(FormatTableTest, AnEmptyTableIsValid) {
    auto fd = encode_format_table(FormatTable{});
    ASSERT_TRUE(fd);
    auto decoded = decode_format_table(fd->borrow());
    ASSERT_TRUE(decoded);
    EXPECT_TRUE(decoded->formats.empty());
}

TEST_F(FormatTableTest, RefusesATableThatCouldStillChange) {
    auto fd = encode_format_table(sample());
    ASSERT_TRUE(fd);
    const auto bytes = bytes_of(fd->borrow());
    expect_rejected(decode_format_table(memfd_with(bytes, 0).borrow()), "is a memfd with seals 0x0, missing 0xf");
    expect_rejected(decode_format_table(memfd_with(bytes, F_SEAL_SHRINK | F_SEAL_GROW).borrow()), "missing 0x9");
}

TEST_F(FormatTableTest, RefusesWhatIsNotAMemfd) {
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    expect_rejected(decode_format_table(event.borrow()), "is not a memfd of the kernel's shm mount");
}

TEST_F(FormatTableTest, RefusesWrongSizesCountsAndHeaders) {
    auto fd = encode_format_table(sample());
    ASSERT_TRUE(fd);
    auto bytes = bytes_of(fd->borrow());
    auto shorter = bytes;
    shorter.resize(bytes.size() - 1);
    expect_rejected(decode_format_table(memfd_with(shorter).borrow()), "declares 3 entries");
    auto too_many = bytes;
    const std::uint32_t huge = 1u << 30;
    std::memcpy(too_many.data() + 8, &huge, 4);
    expect_rejected(decode_format_table(memfd_with(too_many).borrow()), "declares 1073741824 entries (at most 4096)");
    auto bad_magic = bytes;
    bad_magic[0] = std::byte{0};
    expect_rejected(decode_format_table(memfd_with(bad_magic).borrow()), "header magic");
    expect_rejected(decode_format_table(memfd_with(std::vector<std::byte>(10)).borrow()), "has no header");
    auto bad_flags = bytes;
    bad_flags[24 + 4] = std::byte{0x80};
    expect_rejected(decode_format_table(memfd_with(bad_flags).borrow()), "unknown flags");
}

// Issue 14: the consumer's capabilities travel in the header's first reserved field. A table
// without them is version 1, byte for byte what earlier releases wrote (so they still read it);
// one with them is version 2, which an earlier decoder refuses by its version number.
TEST_F(FormatTableTest, CapabilitiesTravelAsVersionTwoAndOnlyThen) {
    auto plain = encode_format_table(sample());
    ASSERT_TRUE(plain);
    auto plain_bytes = bytes_of(plain->borrow());
    std::uint16_t version = 0, capabilities = 0;
    std::memcpy(&version, plain_bytes.data() + 4, 2);
    std::memcpy(&capabilities, plain_bytes.data() + 6, 2);
    EXPECT_EQ(version, 1);
    EXPECT_EQ(capabilities, 0);

    FormatTable table = sample();
    table.capabilities = consumer_converts_shared_memory;
    auto fd = encode_format_table(table);
    ASSERT_TRUE(fd);
    auto bytes = bytes_of(fd->borrow());
    std::memcpy(&version, bytes.data() + 4, 2);
    std::memcpy(&capabilities, bytes.data() + 6, 2);
    EXPECT_EQ(version, 2);
    EXPECT_EQ(capabilities, consumer_converts_shared_memory);
    auto decoded = decode_format_table(fd->borrow());
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, table);
    std::vector<std::byte> rest(bytes.begin() + 8, bytes.end()), plain_rest(plain_bytes.begin() + 8, plain_bytes.end());
    EXPECT_EQ(rest, plain_rest) << "only the version and capabilities differ";
}

TEST_F(FormatTableTest, RefusesCapabilitiesInVersionOneAndUnknownOnes) {
    FormatTable table = sample();
    table.capabilities = consumer_converts_shared_memory;
    auto fd = encode_format_table(table);
    ASSERT_TRUE(fd);
    auto bytes = bytes_of(fd->borrow());
    auto as_version_one = bytes;
    as_version_one[4] = std::byte{1};
    expect_rejected(decode_format_table(memfd_with(as_version_one).borrow()), "version 1 reserved 1/0");
    auto unknown = bytes;
    unknown[6] = std::byte{0x82};
    expect_rejected(decode_format_table(memfd_with(unknown).borrow()), "unknown capabilities 0x82");
    auto version_three = bytes;
    version_three[4] = std::byte{3};
    expect_rejected(decode_format_table(memfd_with(version_three).borrow()), "version 3");
    auto version_two_without = bytes;  // what the encoder writes as version 1
    version_two_without[6] = std::byte{0};
    expect_rejected(decode_format_table(memfd_with(version_two_without).borrow()), "version 2 reserved 0/0");

    table.capabilities = 0x40;
    auto refused = encode_format_table(table);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_NE(refused.error().message.find("unknown capabilities 0x40"), std::string::npos) << refused.error().message;
}

// Issue 15: the consumer's Vulkan device and driver UUIDs travel as version 2's extension
// block (format_table_has_uuids in the header's second field, 32 bytes before the entries),
// with or without consumer_imports_opaque_memory; a table without them stays as it was.
DeviceUuids some_uuids() {
    DeviceUuids ids;
    for (std::uint8_t i = 0; i < 16; ++i) {
        ids.device[i] = static_cast<std::uint8_t>(0x10 + i);
        ids.driver[i] = static_cast<std::uint8_t>(0xa0 + i);
    }
    return ids;
}

TEST_F(FormatTableTest, UuidsTravelAsAVersionTwoBlockBeforeTheEntries) {
    auto plain = encode_format_table(sample());
    ASSERT_TRUE(plain);
    const auto plain_bytes = bytes_of(plain->borrow());
    constexpr std::uint16_t both = consumer_imports_opaque_memory | consumer_converts_shared_memory;
    for (std::uint16_t capabilities : {std::uint16_t{0}, consumer_imports_opaque_memory, both}) {
        SCOPED_TRACE(capabilities);
        FormatTable table = sample();
        table.capabilities = capabilities;
        table.uuids = some_uuids();
        auto fd = encode_format_table(table);
        ASSERT_TRUE(fd) << fd.error().message;
        const auto bytes = bytes_of(fd->borrow());
        ASSERT_EQ(bytes.size(), plain_bytes.size() + 32);
        std::uint16_t version = 0, wire_capabilities = 0;
        std::uint32_t extensions = 0;
        std::memcpy(&version, bytes.data() + 4, 2);
        std::memcpy(&wire_capabilities, bytes.data() + 6, 2);
        std::memcpy(&extensions, bytes.data() + 12, 4);
        EXPECT_EQ(version, 2);
        EXPECT_EQ(wire_capabilities, capabilities);
        EXPECT_EQ(extensions, format_table_has_uuids);
        EXPECT_EQ(std::memcmp(bytes.data() + 24, table.uuids.device.data(), 16), 0);
        EXPECT_EQ(std::memcmp(bytes.data() + 40, table.uuids.driver.data(), 16), 0);
        EXPECT_TRUE(std::equal(bytes.begin() + 56, bytes.end(), plain_bytes.begin() + 24)) << "the same entries";
        auto decoded = decode_format_table(fd->borrow());
        ASSERT_TRUE(decoded) << decoded.error().message;
        EXPECT_EQ(*decoded, table);
    }
}

// Version 1 stays byte for byte what earlier releases wrote: the same table, the same bytes.
TEST_F(FormatTableTest, VersionOneIsByteIdenticalToEarlierReleases) {
    auto fd = encode_format_table(FormatTable{0xe200, {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}}});
    ASSERT_TRUE(fd);
    const std::vector<std::uint8_t> earlier{
        0x54, 0x58, 0x53, 0x46, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,  // magic, version 1, 0, 1 entry, 0
        0x00, 0xe2, 0, 0, 0, 0, 0, 0,                                  // device
        0x41, 0x52, 0x32, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // AR24, flags 0, LINEAR
    const auto bytes = bytes_of(fd->borrow());
    ASSERT_EQ(bytes.size(), earlier.size());
    EXPECT_EQ(std::memcmp(bytes.data(), earlier.data(), earlier.size()), 0);
}

TEST_F(FormatTableTest, RefusesMalformedUuidBlocks) {
    FormatTable table = sample();
    table.capabilities = consumer_imports_opaque_memory;
    table.uuids = some_uuids();
    auto fd = encode_format_table(table);
    ASSERT_TRUE(fd);
    const auto bytes = bytes_of(fd->borrow());
    auto zero_device = bytes;
    std::fill(zero_device.begin() + 24, zero_device.begin() + 40, std::byte{0});
    expect_rejected(decode_format_table(memfd_with(zero_device).borrow()),
                    "device UUID 00000000-0000-0000-0000-000000000000 and driver UUID "
                    "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf: an all-zero UUID");
    auto zero_driver = bytes;
    std::fill(zero_driver.begin() + 40, zero_driver.begin() + 56, std::byte{0});
    expect_rejected(decode_format_table(memfd_with(zero_driver).borrow()), "an all-zero UUID");
    auto without_block_flag = bytes;  // 32 bytes too many for what the header declares
    without_block_flag[12] = std::byte{0};
    expect_rejected(decode_format_table(memfd_with(without_block_flag).borrow()),
                    "declares 3 entries (at most 4096) in 104 bytes");
    auto truncated = bytes;  // the block cut off: too few bytes for the block and the entries
    truncated.resize(24 + 16);
    expect_rejected(decode_format_table(memfd_with(truncated).borrow()),
                    "declares 3 entries (at most 4096) and UUIDs in 40 bytes");
    auto unknown_extension = bytes;
    unknown_extension[12] = std::byte{0x3};
    expect_rejected(decode_format_table(memfd_with(unknown_extension).borrow()), "unknown extensions 0x3");
    auto in_version_one = bytes;
    in_version_one[4] = std::byte{1};
    in_version_one[6] = std::byte{0};
    expect_rejected(decode_format_table(memfd_with(in_version_one).borrow()), "version 1 reserved 0/1");
    // The capability without the block: an opaque import of no device in particular.
    FormatTable without = sample();
    without.capabilities = consumer_converts_shared_memory;
    auto converting = encode_format_table(without);
    ASSERT_TRUE(converting);
    auto claims_opaque = bytes_of(converting->borrow());
    claims_opaque[6] = std::byte{consumer_imports_opaque_memory};
    expect_rejected(decode_format_table(memfd_with(claims_opaque).borrow()),
                    "claims consumer_imports_opaque_memory without the UUIDs");
}

TEST_F(FormatTableTest, EncodingRefusesHalfAnIdentityAndAnOpaqueClaimWithoutOne) {
    FormatTable half = sample();
    half.uuids.device = some_uuids().device;
    auto refused = encode_format_table(half);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_NE(refused.error().message.find("driver UUID 00000000-0000-0000-0000-000000000000: both or neither"),
              std::string::npos)
        << refused.error().message;
    FormatTable claim = sample();
    claim.capabilities = consumer_imports_opaque_memory;
    auto unnamed = encode_format_table(claim);
    ASSERT_FALSE(unnamed);
    EXPECT_EQ(unnamed.error().code, Errc::invalid_argument);
    EXPECT_NE(unnamed.error().message.find("consumer_imports_opaque_memory without the device and driver UUIDs"),
              std::string::npos)
        << unnamed.error().message;
}

TEST_F(FormatTableTest, EncodingRefusesAnOversizedTable) {
    FormatTable table;
    for (std::uint64_t modifier = 0; modifier <= max_format_table_entries; ++modifier) {
        table.formats.add(DRM_FORMAT_ARGB8888, modifier);
    }
    auto fd = encode_format_table(table);
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error().code, Errc::invalid_argument);
    table.formats.remove(DRM_FORMAT_ARGB8888, 0);
    EXPECT_TRUE(encode_format_table(table)) << "exactly the limit";
}

TEST_F(FormatTableTest, EncodingRefusesAFlagTheWireDoesNotDefine) {
    auto fd = encode_format_table(FormatTable{0, {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR, 0x80}}});
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error().code, Errc::invalid_argument);
    EXPECT_NE(fd.error().message.find("unknown flags 0x80"), std::string::npos) << fd.error().message;
}

}  // namespace
}  // namespace texshare
