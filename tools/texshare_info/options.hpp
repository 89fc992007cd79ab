// texshare-info's command line.
//
// Use parse_options() on argv; an unknown argument is an Errc::invalid_argument naming it,
// which main turns into exit status 2 with the usage on stderr.
#pragma once

#include <span>
#include <string_view>

#include "texshare/result.hpp"

namespace texshare::info {

struct Options {
    bool json = false;
    bool check_zero_copy = false;  // exit 1 unless zero-copy GBM->EGL works
    bool help = false;
};

inline constexpr std::string_view usage =
    "usage: texshare-info [--json] [--check-zero-copy] [--help]\n"
    "Prints this machine's DRM devices, what GBM allocates on each, the EGL platforms and what\n"
    "they import, whether a GBM -> EGL round trip works per device and format, kernel features\n"
    "(DMA-BUF sync_file import/export, memfd sealing), the DMA-BUF exporters that need no GPU\n"
    "(each DMA-BUF heap with a real allocation; udmabuf with a real conversion and an import\n"
    "with each EGL display, pixels read back) and a verdict per sharing path.\n"
    "  --json             the same as one JSON document\n"
    "  --check-zero-copy  exit with status 1 unless zero-copy GBM->EGL works here\n"
    "Exit status: 0, 1 (--check-zero-copy failed), 2 (bad arguments).\n";

Result<Options> parse_options(std::span<const char* const> arguments);

}  // namespace texshare::info
