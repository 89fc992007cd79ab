// texshare_host_renderer: a host process and the renderer child it spawns share a swapchain
// of images once, then exchange only image ids per frame. See README.md beside this file.
#include <span>
#include <string>

#include <fmt/format.h>

#include "modes.hpp"
#include "options.hpp"

int main(int argc, char** argv) {
    const std::string program = argc > 0 && argv[0] != nullptr ? argv[0] : "texshare_host_renderer";
    auto options = host_renderer::parse_options(
        std::span<char* const>(argv, static_cast<std::size_t>(argc)).subspan(argc > 0 ? 1 : 0));
    if (!options) {
        fmt::print(stderr, "host_renderer: {}\n{}", options.error().message, host_renderer::usage(program));
        return 2;
    }
    if (options->help) {
        fmt::print("{}", host_renderer::usage(program));
        return 0;
    }
    if (options->api == host_renderer::Api::vulkan) {
#if TEXSHARE_EXAMPLE_HAVE_VULKAN
        return options->renderer ? host_renderer::run_vulkan_renderer(*options)
                                 : host_renderer::run_vulkan_host(*options, program);
#else
        fmt::print(stderr, "host_renderer: --api=vulkan: this build has no texshare::vulkan (CMake found no Vulkan: "
                           "libvulkan-dev) or no TEXSHARE_GPU\n");
        return host_renderer::unsupported_exit_code;
#endif
    }
    return options->renderer ? host_renderer::run_renderer(*options)
                             : host_renderer::run_host(*options, program);
}
