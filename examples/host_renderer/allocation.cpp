#include "allocation.hpp"

#include <utility>
#include <vector>

#include <drm_fourcc.h>
#include <fmt/format.h>

#include "texshare/dma_heap_allocator.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/negotiation.hpp"
#if TEXSHARE_EXAMPLE_HAVE_EGL
#include "texshare/egl/importer.hpp"
#endif
#if TEXSHARE_EXAMPLE_HAVE_GBM
#include "texshare/gbm/allocator.hpp"
#else
namespace texshare::gbm {
class Device {};  // a build without texshare::gbm (TEXSHARE_GPU=OFF) never makes one
}  // namespace texshare::gbm
#endif

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;

// Rows 256-byte aligned, as GPUs want them (and DmaHeapAllocator makes them), so the same
// memfd imports through udmabuf where the host's GPU API takes it.
Result<SwapchainImages> allocate_memfd(Size size, std::uint32_t fourcc) {
    SwapchainImages images;
    for (texshare::DmaBufImage& slot : images) {
        auto image =
            texshare::MemfdAllocator({.stride_alignment = 256}).allocate(size.width, size.height, fourcc);
        if (!image) return std::move(image).error();
        slot = std::move(*image);
    }
    return images;
}

Result<SwapchainImages> allocate_heap(const texshare::DmaHeapAllocator& heap, Size size) {
    SwapchainImages images;
    for (texshare::DmaBufImage& slot : images) {
        auto image = heap.allocate(size.width, size.height, DRM_FORMAT_ARGB8888);
        if (!image) return std::move(image).error();
        slot = std::move(*image);
    }
    return images;
}

// The renderer draws with the CPU and has no GPU (no DMA-BUF allocator); the host reads what
// its CPU path reads and converts shared memory (udmabuf). negotiate() says whether that
// makes the udmabuf path, and in which format.
Result<texshare::NegotiatedFormat> negotiate_udmabuf() {
    texshare::FormatTable host{
        0,
        {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}, {DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR}},
        texshare::consumer_converts_shared_memory};
    const std::uint32_t wanted[] = {DRM_FORMAT_ARGB8888, DRM_FORMAT_ABGR8888};
    return texshare::negotiate(host, texshare::ProducerCapabilities{}, wanted);
}

#if TEXSHARE_EXAMPLE_HAVE_GBM
// The renderer draws with the CPU, so the host asks for LINEAR only: an implicit or tiled
// layout would need a detiling blit that a CPU renderer does not have.
Result<SwapchainImages> allocate_gbm(const texshare::gbm::Device& device, Size size, std::uint32_t fourcc) {
    SwapchainImages images;
    for (texshare::DmaBufImage& slot : images) {
        auto image = device.allocate({size.width, size.height, fourcc, {DRM_FORMAT_MOD_LINEAR}, 0});
        if (!image) return std::move(image).error();
        // gbm falls back to a read-only export where the kernel refuses a writable one; the
        // renderer maps the same fd for writing, so find that out here, before sharing.
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

// What the host can read, as the FormatTable a consumer advertises: what its EGL imports
// (where EGL works on the device), else what its CPU path reads (LINEAR ARGB8888, ABGR8888).
texshare::FormatTable host_format_table(const texshare::gbm::Device& device) {
    texshare::FormatTable table{
        device.node().device_number,
        {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}, {DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR}}};
#if TEXSHARE_EXAMPLE_HAVE_EGL
    auto display = texshare::egl::Display::open_gbm(device.native());
    auto importer = display ? texshare::egl::Importer::create(*display) : display.error();
    if (importer && !importer->formats().empty()) table.formats = importer->formats();
#endif
    return table;
}

// Negotiated like two processes would: the host's table against what the device allocates
// and the renderer can write. The renderer draws with the CPU, so only LINEAR: an implicit
// or tiled layout would need a detiling blit that a CPU renderer does not have.
Result<std::uint32_t> open_gbm(std::unique_ptr<texshare::gbm::Device>& device, Size size,
                               SwapchainImages& images, std::string& reason) {
    auto opened = texshare::gbm::Device::open_default();
    if (!opened) return std::move(opened).error();
    device = std::make_unique<texshare::gbm::Device>(std::move(*opened));
    const texshare::FormatSet cpu_writable{{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR},
                                           {DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR}};
    const texshare::ProducerCapabilities capabilities{device->node().device_number,
                                                      device->allocatable_formats().intersect(cpu_writable)};
    const std::uint32_t wanted[] = {DRM_FORMAT_ARGB8888, DRM_FORMAT_ABGR8888};  // what the renderer draws
    auto choice = texshare::negotiate(host_format_table(*device), capabilities, wanted);
    if (!choice) return std::move(choice).error();
    reason = choice->reason;
    if (choice->path == texshare::SharingPath::shared_memory) {
        return make_error(Errc::unsupported, "negotiation: {}", choice->reason);
    }
    auto allocated = allocate_gbm(*device, size, choice->fourcc);
    if (!allocated) {
        return make_error(Errc::unsupported, "{} ({}) allocates no CPU-writable LINEAR {}x{} {}: {}",
                          device->node().path, device->node().driver, size.width, size.height,
                          texshare::format_name(choice->fourcc), allocated.error().message);
    }
    images = std::move(*allocated);
    return choice->fourcc;
}
#else
Result<std::uint32_t> open_gbm(std::unique_ptr<texshare::gbm::Device>&, Size, SwapchainImages&,
                               std::string&) {
    return make_error(Errc::unsupported,
                      "this build has no texshare::gbm (configured with TEXSHARE_GPU=OFF)");
}
#endif

}  // namespace

Allocator::Allocator(Allocator&&) noexcept = default;
Allocator& Allocator::operator=(Allocator&&) noexcept = default;
Allocator::~Allocator() = default;

Result<Allocator> Allocator::open(AllocatorChoice choice, Size first, SwapchainImages& first_images) {
    Allocator allocator;
    allocator.choice_ = choice;
    if (choice == AllocatorChoice::heap) {
        auto heap = texshare::DmaHeapAllocator::open();
        if (!heap) return make_error(heap.error().code, "--allocator=heap: {}", heap.error().message);
        auto images = allocate_heap(*heap, first);
        if (!images) return make_error(images.error().code, "--allocator=heap: {}", images.error().message);
        first_images = std::move(*images);
        allocator.heap_ = std::make_unique<texshare::DmaHeapAllocator>(std::move(*heap));
        allocator.fourcc_ = DRM_FORMAT_ARGB8888;
        allocator.description_ = fmt::format(
            "DMA-BUF heap \"{}\", {} LINEAR, rows of {} bytes", allocator.heap_->heap(),
            texshare::format_name(DRM_FORMAT_ARGB8888), first_images[0].layout().planes[0].stride);
        return allocator;
    }
    if (choice == AllocatorChoice::udmabuf) {
        auto negotiated = negotiate_udmabuf();
        if (!negotiated) return std::move(negotiated).error();
        auto images = allocate_memfd(first, negotiated->fourcc);
        if (!images) return std::move(images).error();
        first_images = std::move(*images);
        allocator.fourcc_ = negotiated->fourcc;
        // The reason stays out of the line: negotiate()'s path says what was chosen.
        allocator.description_ =
            fmt::format("memfd, {}, for the udmabuf path (negotiated: {})",
                        texshare::format_name(negotiated->fourcc), texshare::to_string(negotiated->path));
        return allocator;
    }
    std::string why = " (--allocator=memfd)";
    if (choice != AllocatorChoice::memfd) {
        std::string negotiated;
        auto fourcc = open_gbm(allocator.device_, first, first_images, negotiated);
#if TEXSHARE_EXAMPLE_HAVE_GBM
        if (fourcc) {
            allocator.fourcc_ = *fourcc;
            allocator.description_ =
                fmt::format("gbm on {} ({}), {} LINEAR (negotiated: {})", allocator.device_->node().path,
                            allocator.device_->node().driver, texshare::format_name(*fourcc), negotiated);
            return allocator;
        }
#endif
        if (choice == AllocatorChoice::gbm) {
            texshare::Error error = std::move(fourcc).error();
            error.message = "--allocator=gbm: " + error.message;
            return error;
        }
        allocator.device_.reset();
        why = fmt::format(" (GBM unavailable: {})", fourcc.error().message);
    }
    auto images = allocate_memfd(first, DRM_FORMAT_ARGB8888);
    if (!images) return std::move(images).error();
    first_images = std::move(*images);
    allocator.fourcc_ = DRM_FORMAT_ARGB8888;
    allocator.description_ = "memfd, " + texshare::format_name(DRM_FORMAT_ARGB8888) + why;
    return allocator;
}

Result<SwapchainImages> Allocator::allocate(Size size) const {
#if TEXSHARE_EXAMPLE_HAVE_GBM
    if (device_) return allocate_gbm(*device_, size, fourcc_);
#endif
    if (heap_) return allocate_heap(*heap_, size);
    return allocate_memfd(size, fourcc_);
}

}  // namespace host_renderer
