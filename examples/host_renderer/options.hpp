// Command line of texshare_host_renderer, shared by its two modes (host and renderer).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "texshare/result.hpp"

namespace host_renderer {

// Who allocates the renderer's images. automatic: GBM where a DRM device can allocate,
// memfd otherwise; gbm: GBM or fail; memfd: always memfd, even where GBM would work.
enum class AllocatorChoice { automatic, gbm, memfd };

std::string_view to_string(AllocatorChoice choice) noexcept;

struct Options {
    bool help = false;
    bool renderer = false;  // run as the child the host spawned
    std::uint64_t frames = 120;
    std::uint32_t width = 256;
    std::uint32_t height = 256;
    AllocatorChoice allocator = AllocatorChoice::automatic;  // the host passes it on
    std::string output = "host_renderer_last_frame.png";     // host only
    int image_fd = -1;                                       // renderer only
    int frame_fd = -1;                                       // renderer only
};

// Parses the arguments after argv[0]. Any argument that is unknown, repeated, malformed,
// out of range or meant for the other mode is an invalid_argument error naming it.
texshare::Result<Options> parse_options(std::span<char* const> arguments);

std::string usage(std::string_view program);

// The command line the host gives the renderer it spawns (argv[0] included).
std::vector<std::string> renderer_command_line(const Options& host, std::string_view program, int image_fd,
                                               int frame_fd);

}  // namespace host_renderer
