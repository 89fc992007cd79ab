// FormatTable: what a consumer can import (its DRM device and a FormatSet of (fourcc,
// modifier) pairs in preference order), and its wire form, a read-only sealed memfd.
//
// Use it to stop the most common DMA-BUF failure before it happens: an image the other
// side cannot import. The consumer builds a table from what its EGL importer reports
// (FormatTable{device, importer.formats()}) and advertises it (FrameReceiver::advertise);
// the producer reads it once per change (FrameSender::peer_formats) and allocates what
// negotiate() picks (negotiation.hpp). Like Wayland's linux-dmabuf feedback the table
// travels as a memfd sealed against writes, shrinking and growing, so a table of any size
// costs one fd and the consumer cannot change it after the producer has checked it.
// Decoding trusts nothing: the kind of file (a memfd of the kernel's shm mount, asked
// without a probe that could block), seals, exact size, entry count, reserved bits,
// unknown flags, a pair listed twice.
//
// Wire versions: 1 is the header with both reserved fields zero. 2 gives the first reserved
// field a meaning, the consumer's capabilities (consumer_converts_shared_memory,
// consumer_imports_opaque_memory), and the second one too, the extension blocks that follow
// the header (format_table_has_uuids: the consumer's Vulkan device and driver UUIDs, 32
// bytes, before the entries). A table with neither is still written as version 1, byte for
// byte what earlier releases wrote, so only a consumer that claims a capability or sends its
// UUIDs needs a producer that knows version 2 (an older one refuses it naming "version 2",
// or the capability or extension bit it does not know, never misreads it).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "texshare/detail/fd_probe.hpp"
#include "texshare/format.hpp"
#include "texshare/format_set.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

// A Vulkan physical device's identity (VkPhysicalDeviceIDProperties::deviceUUID and
// driverUUID). Memory exported as an OPAQUE_FD handle imports only where both equal the
// exporter's (Vulkan spec, "External memory handle types compatibility": OPAQUE_FD needs
// the same driverUUID and deviceUUID), so texshare compares them before offering it.
// All zero: unknown (no Vulkan device, or one that did not say).
struct DeviceUuids {
    std::array<std::uint8_t, 16> device{};  // VK_UUID_SIZE bytes, as Vulkan gives them
    std::array<std::uint8_t, 16> driver{};

    // Both UUIDs nonzero: an identity that can be compared (Vulkan gives both or neither;
    // one all-zero UUID is no identity).
    bool known() const noexcept { return !all_zero(device) && !all_zero(driver); }
    bool empty() const noexcept { return all_zero(device) && all_zero(driver); }
    static bool all_zero(const std::array<std::uint8_t, 16>& uuid) noexcept {
        for (std::uint8_t byte : uuid) {
            if (byte != 0) return false;
        }
        return true;
    }
    friend bool operator==(const DeviceUuids&, const DeviceUuids&) = default;
};

// "8-4-4-4-12" lowercase hex (RFC 4122's text form), for messages.
inline std::string uuid_name(const std::array<std::uint8_t, 16>& uuid) {
    std::string text;
    for (std::size_t i = 0; i < uuid.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
        text += fmt::format("{:02x}", uuid[i]);
    }
    return text;
}

struct FormatTable {
    // st_rdev of a node of the consumer's DRM device: its render node where it has one
    // (/dev/dri/renderD128), else the node it imports on. negotiate() compares devices, not
    // node numbers (same_drm_device), so the primary node of the same GPU matches too.
    // 0: no DRM device, or unknown.
    std::uint64_t device = 0;
    FormatSet formats;  // in the consumer's order of preference
    // What the consumer can do besides importing the DMA-BUFs in `formats`
    // (consumer_converts_shared_memory, consumer_imports_opaque_memory); 0: nothing more.
    std::uint16_t capabilities = 0;
    // The consumer's Vulkan device and driver (vulkan/format_table.hpp fills them); empty
    // where it has no Vulkan device. consumer_imports_opaque_memory needs them known.
    DeviceUuids uuids{};

    bool contains(std::uint32_t fourcc, std::uint64_t modifier) const noexcept {
        return formats.contains(fourcc, modifier);
    }
    friend bool operator==(const FormatTable&, const FormatTable&) = default;
};

inline constexpr std::uint32_t format_table_magic = 0x46535854;  // "TXSF" in memory order
inline constexpr std::uint16_t format_table_version = 2;  // the newest this decodes (and writes)
// The consumer turns a received shared-memory image into a DMA-BUF (udmabuf.hpp) and imports
// that as a LINEAR image of a format in `formats`: a producer without a DMA-BUF allocator can
// then share sealed memfds and still reach the consumer's GPU without a copy (negotiation.hpp).
inline constexpr std::uint16_t consumer_converts_shared_memory = 1;
// The consumer imports Vulkan OPAQUE_FD memory (Backing::opaque_fd) made by the device and
// driver its `uuids` name: negotiate() offers SharingPath::opaque_fd only to such a consumer
// whose UUIDs equal the producer's. Needs known `uuids` (a claim without them is refused).
inline constexpr std::uint16_t consumer_imports_opaque_memory = 2;
inline constexpr std::uint16_t known_consumer_capabilities =
    consumer_converts_shared_memory | consumer_imports_opaque_memory;
// Version 2's extension blocks (the header's second field), in this order after the header.
// format_table_has_uuids: 16 bytes of device UUID, then 16 of driver UUID, both nonzero.
inline constexpr std::uint32_t format_table_has_uuids = 1;
inline constexpr std::uint32_t known_format_table_extensions = format_table_has_uuids;
inline constexpr std::size_t max_format_table_entries = 4096;
inline constexpr unsigned format_table_seals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

namespace detail {
struct FormatTableHeader {
    std::uint32_t magic = format_table_magic;
    std::uint16_t version = format_table_version;
    std::uint16_t capabilities = 0;  // version 2; zero (then "reserved") in version 1
    std::uint32_t entry_count = 0;
    std::uint32_t extensions = 0;  // version 2; zero (then "reserved") in version 1
    std::uint64_t device = 0;
};
// format_table_has_uuids' block.
struct FormatTableUuids {
    std::array<std::uint8_t, 16> device{};
    std::array<std::uint8_t, 16> driver{};
};
// One (fourcc, modifier) pair; the table lists a format's pairs together, in the set's order.
struct FormatTableEntry {
    std::uint32_t fourcc = 0;
    std::uint32_t flags = 0;  // format_scanout, format_external_only (format_set.hpp)
    std::uint64_t modifier = 0;
};
static_assert(sizeof(FormatTableHeader) == 24 && sizeof(FormatTableEntry) == 16 && sizeof(FormatTableUuids) == 32,
              "wire sizes");
}  // namespace detail

// The table as a new memfd (owned by the caller), sealed read-only at its exact size.
// Version 1 when the table has no capabilities and empty uuids, else 2 (with the UUID block
// where uuids are known). Errc::invalid_argument for more than max_format_table_entries
// pairs, a flag that format_set.hpp does not define, an unknown capability, uuids with one
// UUID all zero and the other not, or consumer_imports_opaque_memory without known uuids;
// Errc::system when memfd_create, write or F_ADD_SEALS fail.
inline Result<UniqueFd> encode_format_table(const FormatTable& table) {
    const std::size_t count = table.formats.pair_count();
    if (count > max_format_table_entries) {
        return make_error(Errc::invalid_argument, "format table of {} entries; at most {}", count,
                          max_format_table_entries);
    }
    if ((table.capabilities & ~known_consumer_capabilities) != 0) {
        return make_error(Errc::invalid_argument, "format table has unknown capabilities 0x{:x}", table.capabilities);
    }
    if (!table.uuids.known() && !table.uuids.empty()) {
        return make_error(Errc::invalid_argument, "format table has device UUID {} and driver UUID {}: both or neither",
                          uuid_name(table.uuids.device), uuid_name(table.uuids.driver));
    }
    if ((table.capabilities & consumer_imports_opaque_memory) != 0 && !table.uuids.known()) {
        return make_error(Errc::invalid_argument,
                          "format table claims consumer_imports_opaque_memory without the device and driver UUIDs "
                          "that say which device's opaque memory");
    }
    std::vector<detail::FormatTableEntry> entries;
    entries.reserve(count);
    for (const DrmFormat& format : table.formats) {
        for (const FormatModifier& m : format.modifiers) {
            if ((m.flags & ~known_format_flags) != 0) {
                return make_error(Errc::invalid_argument, "format table entry {} {} has unknown flags 0x{:x}",
                                  format_name(format.fourcc), modifier_name(m.modifier), m.flags);
            }
            entries.push_back(detail::FormatTableEntry{format.fourcc, m.flags, m.modifier});
        }
    }
    detail::FormatTableHeader header;
    header.extensions = table.uuids.known() ? format_table_has_uuids : 0;
    header.version = table.capabilities == 0 && header.extensions == 0 ? 1 : 2;
    header.capabilities = table.capabilities;
    header.entry_count = static_cast<std::uint32_t>(count);
    header.device = table.device;
    const std::size_t blocks = header.extensions != 0 ? sizeof(detail::FormatTableUuids) : 0;
    std::vector<std::byte> bytes(sizeof header + blocks + count * sizeof(detail::FormatTableEntry));
    std::memcpy(bytes.data(), &header, sizeof header);
    if (blocks != 0) {
        const detail::FormatTableUuids uuids{table.uuids.device, table.uuids.driver};
        std::memcpy(bytes.data() + sizeof header, &uuids, sizeof uuids);
    }
    if (count != 0) {
        std::memcpy(bytes.data() + sizeof header + blocks, entries.data(), count * sizeof(detail::FormatTableEntry));
    }
    UniqueFd memfd(::memfd_create("texshare-format-table", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!memfd) return make_sys_error(errno, "memfd_create for a format table");
    std::size_t written = 0;
    while (written < bytes.size()) {
        const ssize_t n = ::write(memfd.get(), bytes.data() + written, bytes.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return make_sys_error(errno, "write of a {}-byte format table", bytes.size());
        written += static_cast<std::size_t>(n);
    }
    if (::fcntl(memfd.get(), F_ADD_SEALS, format_table_seals) != 0) {
        return make_sys_error(errno, "F_ADD_SEALS on the format table");
    }
    return memfd;
}

// Reads a table a peer sent (`fd` stays the caller's; close it off the dispatching thread
// unless this proved it a memfd). Errc::rejected for anything but a memfd of the kernel's
// shm mount (not a MFD_HUGETLB one, not a tmpfs or disk file) sealed read-only at its exact
// size, a known magic and version (1 or 2), zero reserved fields (capabilities and extensions
// count as such in version 1; version 2 without either is refused too: one table, one
// encoding), only known capabilities and extensions, a UUID block with both UUIDs nonzero,
// consumer_imports_opaque_memory only with that block, at most max_format_table_entries
// entries, known flags and each pair once.
inline Result<FormatTable> decode_format_table(BorrowedFd fd) {
    // Only a memfd of the kernel's shm mount: its reads never wait on another process and
    // never fault (detail/fd_probe.hpp), where a FUSE file's pread waits for its daemon.
    auto size = detail::require_shm_memfd(fd, format_table_seals, "format table");
    if (!size) return std::move(size).error();
    detail::FormatTableHeader header;
    if (*size < sizeof header ||
        ::pread(fd.get(), &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) {
        return make_error(Errc::rejected, "format table of {} bytes has no header", *size);
    }
    const bool known_version = header.version == 1 || header.version == 2;
    const bool extended = header.capabilities != 0 || header.extensions != 0;
    if (header.magic != format_table_magic || !known_version || (header.version == 1 && extended) ||
        (header.version == 2 && !extended)) {
        return make_error(Errc::rejected, "format table header magic 0x{:08x} version {} reserved {}/{}", header.magic,
                          header.version, header.capabilities, header.extensions);
    }
    if ((header.capabilities & ~known_consumer_capabilities) != 0) {
        return make_error(Errc::rejected, "format table has unknown capabilities 0x{:x}", header.capabilities);
    }
    if ((header.extensions & ~known_format_table_extensions) != 0) {
        return make_error(Errc::rejected, "format table has unknown extensions 0x{:x}", header.extensions);
    }
    const std::size_t blocks = (header.extensions & format_table_has_uuids) != 0 ? sizeof(detail::FormatTableUuids) : 0;
    if (header.entry_count > max_format_table_entries ||
        *size != sizeof header + blocks + std::uint64_t{header.entry_count} * sizeof(detail::FormatTableEntry)) {
        return make_error(Errc::rejected, "format table declares {} entries (at most {}){} in {} bytes",
                          header.entry_count, max_format_table_entries, blocks != 0 ? " and UUIDs" : "", *size);
    }
    FormatTable table;
    table.device = header.device;
    table.capabilities = header.capabilities;
    if (blocks != 0) {
        detail::FormatTableUuids uuids;
        if (::pread(fd.get(), &uuids, sizeof uuids, sizeof header) != static_cast<ssize_t>(sizeof uuids)) {
            return make_sys_error(errno, "pread of the format table's UUIDs");
        }
        table.uuids = DeviceUuids{uuids.device, uuids.driver};
        if (!table.uuids.known()) {  // one table, one encoding: unknown UUIDs are no block
            return make_error(Errc::rejected,
                              "format table's UUID block has device UUID {} and driver UUID {}: an all-zero UUID",
                              uuid_name(uuids.device), uuid_name(uuids.driver));
        }
    }
    if ((table.capabilities & consumer_imports_opaque_memory) != 0 && blocks == 0) {
        return make_error(Errc::rejected,
                          "format table claims consumer_imports_opaque_memory without the UUIDs naming the device");
    }
    std::vector<detail::FormatTableEntry> entries(header.entry_count);
    const std::size_t entry_bytes = entries.size() * sizeof(detail::FormatTableEntry);
    if (entry_bytes != 0 &&
        ::pread(fd.get(), entries.data(), entry_bytes, sizeof header + blocks) != static_cast<ssize_t>(entry_bytes)) {
        return make_sys_error(errno, "pread of {} format table entries", entries.size());
    }
    for (const detail::FormatTableEntry& entry : entries) {
        if ((entry.flags & ~known_format_flags) != 0) {
            return make_error(Errc::rejected, "format table entry {} has unknown flags 0x{:x}",
                              format_name(entry.fourcc), entry.flags);
        }
        if (!table.formats.add(entry.fourcc, entry.modifier, entry.flags)) {
            return make_error(Errc::rejected, "format table lists {} {} twice", format_name(entry.fourcc),
                              modifier_name(entry.modifier));
        }
    }
    return table;
}

}  // namespace texshare
