// The two ways texshare_host_renderer runs; each returns the process exit code.
#pragma once

#include <string>

#include "options.hpp"

namespace host_renderer {

// Spawns the renderer, verifies its frames, writes the last one; 0 only if all checked out.
int run_host(const Options& options, const std::string& program);

// The child: shares a swapchain over the inherited fds and renders into it.
int run_renderer(const Options& options);

}  // namespace host_renderer
