// Writing the host's last frame to a PNG file with libpng.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "texshare/result.hpp"

namespace host_renderer {

// rgba holds height rows of width pixels, 4 bytes each (R, G, B, A), with no padding.
texshare::Result<void> write_png_rgba(const std::string& path, std::uint32_t width, std::uint32_t height,
                                      std::span<const std::uint8_t> rgba);

}  // namespace host_renderer
