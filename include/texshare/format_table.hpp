// FormatTable: what a consumer can import (its DRM device and (fourcc, modifier) pairs in
// preference order), and its wire form, a read-only sealed memfd.
//
// Use it to stop the most common DMA-BUF failure before it happens: an image the other
// side cannot import. The consumer builds a table from what its EGL importer reports and
// advertises it (FrameReceiver::advertise); the producer reads it once per change
// (FrameSender::peer_formats) and allocates what negotiate() picks (negotiation.hpp). Like
// Wayland's linux-dmabuf feedback the table travels as a memfd sealed against writes,
// shrinking and growing, so a table of any size costs one fd and the consumer cannot change
// it after the producer has checked it. Decoding trusts nothing: seals, exact size, entry
// count, reserved bits.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "texshare/detail/fd_probe.hpp"
#include "texshare/format.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

struct FormatTableEntry {
    std::uint32_t fourcc = 0;
    std::uint32_t flags = 0;  // format_scanout where known
    std::uint64_t modifier = 0;
    friend bool operator==(const FormatTableEntry&, const FormatTableEntry&) = default;
};
inline constexpr std::uint32_t format_scanout = 1;  // the consumer can put it on a display plane

struct FormatTable {
    std::uint64_t device = 0;  // dev_t of the consumer's DRM device; 0: none or unknown
    std::vector<FormatTableEntry> entries;  // in preference order

    bool contains(std::uint32_t fourcc, std::uint64_t modifier) const noexcept {
        for (const FormatTableEntry& entry : entries) {
            if (entry.fourcc == fourcc && entry.modifier == modifier) return true;
        }
        return false;
    }
    friend bool operator==(const FormatTable&, const FormatTable&) = default;
};

inline constexpr std::uint32_t format_table_magic = 0x46535854;  // "TXSF" in memory order
inline constexpr std::uint16_t format_table_version = 1;
inline constexpr std::size_t max_format_table_entries = 4096;
inline constexpr unsigned format_table_seals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

namespace detail {
struct FormatTableHeader {
    std::uint32_t magic = format_table_magic;
    std::uint16_t version = format_table_version;
    std::uint16_t reserved = 0;
    std::uint32_t entry_count = 0;
    std::uint32_t reserved2 = 0;
    std::uint64_t device = 0;
};
static_assert(sizeof(FormatTableHeader) == 24 && sizeof(FormatTableEntry) == 16, "wire sizes");
}  // namespace detail

inline Result<UniqueFd> encode_format_table(const FormatTable& table) {
    if (table.entries.size() > max_format_table_entries) {
        return make_error(Errc::invalid_argument, "format table of {} entries; at most {}", table.entries.size(),
                          max_format_table_entries);
    }
    detail::FormatTableHeader header;
    header.entry_count = static_cast<std::uint32_t>(table.entries.size());
    header.device = table.device;
    std::vector<std::byte> bytes(sizeof header + table.entries.size() * sizeof(FormatTableEntry));
    std::memcpy(bytes.data(), &header, sizeof header);
    if (!table.entries.empty()) {
        std::memcpy(bytes.data() + sizeof header, table.entries.data(), table.entries.size() * sizeof(FormatTableEntry));
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

// Reads a table a peer sent. Refuses anything but a memfd sealed read-only at its exact
// size, a known magic and version, zero reserved fields and at most
// max_format_table_entries entries.
inline Result<FormatTable> decode_format_table(BorrowedFd fd) {
    if (auto sealed = detail::require_seals(fd, format_table_seals); !sealed) {
        return make_error(Errc::rejected, "format table fd {} is not a memfd sealed read-only ({})", fd.get(),
                          sealed.error().message);
    }
    auto size = detail::regular_file_size(fd);
    if (!size) return std::move(size).error();
    detail::FormatTableHeader header;
    if (*size < sizeof header ||
        ::pread(fd.get(), &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) {
        return make_error(Errc::rejected, "format table of {} bytes has no header", *size);
    }
    if (header.magic != format_table_magic || header.version != format_table_version || header.reserved != 0 ||
        header.reserved2 != 0) {
        return make_error(Errc::rejected, "format table header magic 0x{:08x} version {} reserved {}/{}", header.magic,
                          header.version, header.reserved, header.reserved2);
    }
    if (header.entry_count > max_format_table_entries ||
        *size != sizeof header + std::uint64_t{header.entry_count} * sizeof(FormatTableEntry)) {
        return make_error(Errc::rejected, "format table declares {} entries (at most {}) in {} bytes", header.entry_count,
                          max_format_table_entries, *size);
    }
    FormatTable table;
    table.device = header.device;
    table.entries.resize(header.entry_count);
    const std::size_t entry_bytes = table.entries.size() * sizeof(FormatTableEntry);
    if (entry_bytes != 0 && ::pread(fd.get(), table.entries.data(), entry_bytes, sizeof header) !=
                                static_cast<ssize_t>(entry_bytes)) {
        return make_sys_error(errno, "pread of {} format table entries", table.entries.size());
    }
    for (const FormatTableEntry& entry : table.entries) {
        if ((entry.flags & ~format_scanout) != 0) {
            return make_error(Errc::rejected, "format table entry {} has unknown flags 0x{:x}",
                              format_name(entry.fourcc), entry.flags);
        }
    }
    return table;
}

}  // namespace texshare
