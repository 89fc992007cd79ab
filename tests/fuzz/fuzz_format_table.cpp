// Fuzz target: format table decoding (format_table.hpp), issue 15's UUID block included.
// The input is the table's bytes, written to a memfd sealed as a table must be (or, with the
// first byte's low bit set, left without F_SEAL_WRITE, which must be refused). Whatever
// decode_format_table() accepts must encode again and decode to the same table: an accepted
// table the encoder refuses (half a UUID, an opaque claim without an identity) would be a
// validation gap, and so would one that changes on the way.
//   input: u8 mode | table bytes
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>

#include "fuzz/fuzz_support.hpp"
#include "texshare/format_table.hpp"

using namespace texshare;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::LeakCheck leak_check;
    fuzz::Input input(data, size);
    const auto mode = input.take<std::uint8_t>();
    const auto bytes = input.rest();
    UniqueFd fd(::memfd_create("fuzz-table", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) return 0;
    if (!bytes.empty() && ::write(fd.get(), bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        return 0;
    }
    const unsigned seals = (mode & 1U) != 0 ? (format_table_seals & ~unsigned{F_SEAL_WRITE}) : format_table_seals;
    if (::fcntl(fd.get(), F_ADD_SEALS, seals) != 0) return 0;
    auto table = decode_format_table(fd.borrow());
    if (!table) return 0;
    if ((mode & 1U) != 0) {
        std::fprintf(stderr, "a writable table was accepted\n");
        std::abort();
    }
    auto again = encode_format_table(*table);
    if (!again) {
        std::fprintf(stderr, "an accepted table does not encode: %s\n", again.error().message.c_str());
        std::abort();
    }
    auto decoded = decode_format_table(again->borrow());
    if (!decoded || !(*decoded == *table)) {
        std::fprintf(stderr, "an accepted table changed on its way through the encoder\n");
        std::abort();
    }
    return 0;
}
