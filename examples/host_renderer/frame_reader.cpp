#include "frame_reader.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <array>
#include <cstddef>
#include <utility>

#include <fmt/format.h>

#include "pattern.hpp"
#include "texshare/format.hpp"
#if TEXSHARE_EXAMPLE_HAVE_GBM
#include "texshare/gbm_allocator.hpp"
#endif
#if TEXSHARE_EXAMPLE_HAVE_EGL
#include "texshare/egl_importer.hpp"
#endif

namespace host_renderer {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;

#if TEXSHARE_EXAMPLE_HAVE_EGL
// Members in this order so they are destroyed importer first, GBM device last: the EGL
// display was opened on the device and must go before it.
struct FrameReader::Gpu {
    texshare::gbm::Device device;
    texshare::egl::Display display;
    texshare::egl::Importer importer;
    std::array<texshare::egl::ImportedTexture, swapchain_length> textures{};

    // Imports every image once; from here on each frame is only a readback.
    static Result<std::unique_ptr<Gpu>> create(texshare::gbm::Device device, const SwapchainImages& images) {
        auto display = texshare::egl::Display::open(device.native());
        if (!display) return std::move(display).error();
        auto importer = texshare::egl::Importer::create(*display);
        if (!importer) return std::move(importer).error();
        auto gpu =
            std::make_unique<Gpu>(Gpu{std::move(device), std::move(*display), std::move(*importer), {}});
        for (std::size_t i = 0; i < swapchain_length; ++i) {
            auto imported = gpu->importer.import(i + 1, images[i]);
            if (!imported) {
                texshare::Error error = std::move(imported).error();
                error.message = fmt::format("import of image {}: {}", i + 1, error.message);
                return error;
            }
            gpu->textures[i] = *imported;
        }
        return gpu;
    }
};
#else
struct FrameReader::Gpu {};
#endif

namespace {

#if TEXSHARE_EXAMPLE_HAVE_GBM
// The renderer names its device by number; the host finds the node and opens it itself, so
// what it imports into is the very device that allocated the images.
Result<texshare::gbm::Device> open_renderer_device(std::uint64_t device) {
    auto nodes = texshare::gbm::list_drm_nodes();
    if (!nodes) return std::move(nodes).error();
    for (const texshare::gbm::DrmNode& node : *nodes) {
        struct stat file {};
        if (::stat(node.path.c_str(), &file) == 0 && S_ISCHR(file.st_mode) && file.st_rdev == device) {
            return texshare::gbm::Device::open(node.path);
        }
    }
    return make_error(Errc::unsupported, "no DRM node here is device {}:{}", major(device), minor(device));
}
#endif

// The image's memory order rewritten as RGBA rows, so both ways of reading give the same.
Result<std::vector<std::uint8_t>> read_mapped(const texshare::DmaBufImage& image) {
    const auto order = byte_order(image.fourcc());
    if (!order) return make_error(Errc::unsupported, "cannot read {}", texshare::format_name(image.fourcc()));
    auto mapping = image.map(texshare::Access::read);
    if (!mapping) return std::move(mapping).error();
    const std::span<const std::byte> plane = mapping->plane(0);
    const std::uint32_t stride = mapping->stride(0);
    const std::size_t width = image.width();
    const std::size_t height = image.height();
    // The layout came from another process: check before touching a byte.
    if (stride < width * 4 || plane.size() < std::size_t{stride} * (height - 1) + width * 4) {
        return make_error(Errc::rejected, "plane 0 ({} bytes, stride {}) cannot hold {}x{}", plane.size(),
                          stride, width, height);
    }
    std::vector<std::uint8_t> rgba(width * height * 4);
    for (std::size_t y = 0; y < height; ++y) {
        const std::byte* row = plane.data() + std::size_t{stride} * y;
        for (std::size_t x = 0; x < width; ++x) {
            for (std::size_t c = 0; c < 4; ++c) {
                rgba[(y * width + x) * 4 + c] = std::to_integer<std::uint8_t>(row[x * 4 + (*order)[c]]);
            }
        }
    }
    if (auto finished = mapping->finish(); !finished) return std::move(finished).error();
    return rgba;
}

}  // namespace

FrameReader::FrameReader(FrameReader&&) noexcept = default;
FrameReader& FrameReader::operator=(FrameReader&&) noexcept = default;
FrameReader::~FrameReader() = default;

FrameReader FrameReader::create(const SwapchainImages& images, std::uint64_t device) {
    FrameReader reader;
    reader.method_ = "CPU mapping";
    if (images[0].backing() != texshare::Backing::dma_buf) return reader;
    reader.device_ = fmt::format("DRM device {}:{}", major(device), minor(device));
#if TEXSHARE_EXAMPLE_HAVE_GBM
    auto opened = open_renderer_device(device);
    if (!opened) {
        reader.method_ = fmt::format("CPU mapping (the host cannot open the renderer's device: {})",
                                     opened.error().message);
        return reader;
    }
    reader.device_ = fmt::format("gbm on {}, {}", opened->node().path, opened->node().driver);
#if TEXSHARE_EXAMPLE_HAVE_EGL
    auto gpu = Gpu::create(std::move(*opened), images);
    if (!gpu) {
        reader.method_ = fmt::format("CPU mapping (EGL import unavailable: {})", gpu.error().message);
        return reader;
    }
    reader.gpu_ = std::move(*gpu);
    reader.method_ = fmt::format("EGL import + FBO readback ({} display, {})",
                                 reader.gpu_->display.platform(), reader.gpu_->display.renderer());
#else
    reader.method_ = "CPU mapping (this build has no texshare::egl)";
#endif
#else
    reader.method_ = "CPU mapping (this build has no texshare::gbm to open the device with)";
#endif
    return reader;
}

Result<std::vector<std::uint8_t>> FrameReader::read_rgba(std::uint64_t id, const SwapchainImages& images) {
    if (id < 1 || id > swapchain_length) return make_error(Errc::invalid_argument, "no image {}", id);
    const texshare::DmaBufImage& image = images[id - 1];
#if TEXSHARE_EXAMPLE_HAVE_EGL
    if (gpu_) {
        const texshare::egl::ImportedTexture& texture = gpu_->textures[id - 1];
        return texshare::egl::read_pixels(gpu_->display, texture.target, texture.texture, image.width(),
                                          image.height());
    }
#endif
    return read_mapped(image);
}

}  // namespace host_renderer
