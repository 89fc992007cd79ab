// Command line of texshare_host_renderer, shared by its two modes (host and renderer).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "texshare/result.hpp"

namespace host_renderer {

// Who allocates the host's images. automatic: GBM where a DRM device can allocate, memfd
// otherwise; gbm: GBM or fail; memfd: always memfd, even where GBM would work; heap: the
// system DMA-BUF heap (/dev/dma_heap/system) or fail; udmabuf: memfds, as for a renderer
// without a GPU, which the host turns into DMA-BUFs (udmabuf) and imports with EGL where it
// can, reading them on the CPU (a copy) where it cannot.
enum class AllocatorChoice { automatic, gbm, memfd, heap, udmabuf };

std::string_view to_string(AllocatorChoice choice) noexcept;

// What draws and what reads. cpu: the renderer draws with the CPU into the host's images and
// the host reads them through EGL where it can import them (else a CPU mapping). vulkan: the
// renderer allocates its own images with texshare::vulkan::Exporter and draws with a Vulkan
// compute shader; the host imports them with texshare::vulkan (vulkan_host.cpp).
enum class Api { cpu, vulkan };

std::string_view to_string(Api api) noexcept;

struct Size {
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    bool operator==(const Size&) const = default;
};

struct Options {
    bool help = false;
    bool renderer = false;       // run as the child the host spawned
    std::uint64_t frames = 300;  // host: presents in all; renderer: presents it makes
    // Host only. The plan counts presents the host has received (from any renderer):
    Size size{256, 256};            // of the first 3 images
    std::uint64_t resize_at = 100;  // then retire them and add 3 of resize_to (0: never)
    Size resize_to{384, 320};
    std::uint64_t kill_at = 200;  // then SIGKILL the renderer and spawn another (0: never)
    AllocatorChoice allocator = AllocatorChoice::automatic;
    // Both modes. vulkan: no resize and no kill (the renderer owns the images), and the
    // renderer is told the size.
    Api api = Api::cpu;
    // --api=vulkan, both modes: --fences=cpu_wait takes vulkan::Fences' CPU-wait fallback even
    // where the driver has SYNC_FD semaphores (to run that path too); auto lets it choose.
    bool vulkan_cpu_wait = false;
    std::string output = "host_renderer_last_frame.png";
    // Both modes: each renderer forks a helper that keeps its channel end open this many
    // seconds after the renderer is gone (0: none), so only the pidfd tells its death.
    std::uint64_t helper_hold_s = 0;
    // Host: the rate of its begin_frame timer (a timerfd), the vsync of its screen; the
    // renderer is paced by it, one frame per begin_frame. 0: no timer, the renderer runs free.
    std::uint32_t rate_hz = 60;
    // Renderer: ask the host to pace it (FrameSenderOptions::paced); the host sets it.
    bool paced = false;
};

// Parses the arguments after argv[0]. Any argument that is unknown, repeated, malformed,
// out of range or meant for the other mode is an invalid_argument error naming it.
texshare::Result<Options> parse_options(std::span<char* const> arguments);

std::string usage(std::string_view program);

// The arguments the host gives a renderer that is to present `frames` frames (after argv[0]).
// --paced when the host runs its begin_frame timer (options.rate_hz > 0).
std::vector<std::string> renderer_arguments(std::uint64_t frames, const Options& options);
// The arguments of an --api=vulkan renderer: --frames, --size and --fences of `options`.
std::vector<std::string> renderer_arguments(const Options& options);

}  // namespace host_renderer
