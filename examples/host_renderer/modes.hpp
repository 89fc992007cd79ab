// The two ways texshare_host_renderer runs; each returns the process exit code.
#pragma once

#include <string>

#include "options.hpp"

namespace host_renderer {

// Spawns the renderer, verifies its frames, writes the last one; 0 only if all checked out.
int run_host(const Options& options, const std::string& program);

// The child: shares a swapchain over the inherited fds and renders into it.
int run_renderer(const Options& options);

// --api=vulkan (vulkan_host.cpp, vulkan_renderer.cpp): the renderer exports its own images
// with texshare::vulkan and draws with a compute shader; the host imports them into Vulkan.
// Where this build or machine has no Vulkan that can share images, run_vulkan_host exits with
// unsupported_exit_code after saying what is missing.
inline constexpr int unsupported_exit_code = 3;
int run_vulkan_host(const Options& options, const std::string& program);
int run_vulkan_renderer(const Options& options);

}  // namespace host_renderer
