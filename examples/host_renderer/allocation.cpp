#include "allocation.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include <drm_fourcc.h>
#include <fmt/format.h>

#include "texshare/memfd_allocator.hpp"
#if TEXSHARE_EXAMPLE_HAVE_GBM
#include "texshare/gbm_allocator.hpp"
#endif

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;

Result<Allocation> allocate_memfd(const Options& options, std::string why) {
    const texshare::MemfdAllocator allocator;
    Allocation allocation;
    for (texshare::DmaBufImage& slot : allocation.images) {
        auto image = allocator.allocate(options.width, options.height, DRM_FORMAT_ARGB8888);
        if (!image) return std::move(image).error();
        slot = std::move(*image);
    }
    allocation.description = fmt::format("{} memfd images, ARGB8888{}", swapchain_length, why);
    return allocation;
}

#if TEXSHARE_EXAMPLE_HAVE_GBM
// The renderer draws with the CPU, so it asks for LINEAR only: an implicit or tiled layout
// would need a detiling blit that a CPU renderer does not have.
Result<SwapchainImages> allocate_images(const texshare::gbm::Device& device, const Options& options,
                                        std::uint32_t fourcc) {
    SwapchainImages images;
    for (texshare::DmaBufImage& slot : images) {
        auto image = device.allocate(texshare::gbm::AllocationRequest{
            options.width, options.height, fourcc, {DRM_FORMAT_MOD_LINEAR}, 0});
        if (!image) return std::move(image).error();
        // gbm falls back to a read-only export where the kernel refuses a writable one;
        // finding that out now lets auto choose memfd instead of failing at frame 0.
        auto mapping = image->map(texshare::Access::write);
        if (!mapping) {
            return make_error(Errc::unsupported, "{} image cannot be mapped for writing: {}",
                              texshare::format_name(fourcc), mapping.error().message);
        }
        if (auto finished = mapping->finish(); !finished) return std::move(finished).error();
        slot = std::move(*image);
    }
    return images;
}

Result<Allocation> allocate_gbm(const Options& options) {
    auto device = texshare::gbm::Device::open_default();
    if (!device) return std::move(device).error();
    struct stat node {};
    if (::fstat(device->drm_fd().get(), &node) != 0) {
        return texshare::make_sys_error(errno, "fstat of {}", device->node().path);
    }
    std::string tried;
    // ARGB8888 is what the example prefers; some drivers allocate only ABGR8888.
    for (const std::uint32_t fourcc : {DRM_FORMAT_ARGB8888, DRM_FORMAT_ABGR8888}) {
        auto images = allocate_images(*device, options, fourcc);
        if (!images) {
            tried += fmt::format("; {}", images.error().message);
            continue;
        }
        // The images outlive the device: their DMA-BUF fds hold the memory.
        return Allocation{
            std::move(*images), static_cast<std::uint64_t>(node.st_rdev),
            fmt::format("{} gbm images on {} ({}), {} LINEAR", swapchain_length, device->node().path,
                        device->node().driver, texshare::format_name(fourcc))};
    }
    return make_error(Errc::unsupported, "{} ({}) allocates no CPU-writable LINEAR {}x{} image{}",
                      device->node().path, device->node().driver, options.width, options.height, tried);
}
#else
Result<Allocation> allocate_gbm(const Options&) {
    return make_error(Errc::unsupported,
                      "this build has no texshare::gbm (configured with TEXSHARE_GPU=OFF)");
}
#endif

}  // namespace

Result<Allocation> allocate_swapchain(const Options& options) {
    if (options.allocator == AllocatorChoice::memfd) return allocate_memfd(options, " (--allocator=memfd)");
    auto gbm = allocate_gbm(options);
    if (gbm) return gbm;
    if (options.allocator == AllocatorChoice::gbm) {
        texshare::Error error = std::move(gbm).error();
        error.message = "--allocator=gbm: " + error.message;
        return error;
    }
    return allocate_memfd(options, fmt::format(" (GBM unavailable: {})", gbm.error().message));
}

}  // namespace host_renderer
