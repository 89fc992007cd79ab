#include "frame_reader.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "pattern.hpp"
#include "texshare/format.hpp"
#include "texshare/sync_file.hpp"
#if TEXSHARE_EXAMPLE_HAVE_EGL
#include "support/gl_helpers.hpp"
#include "texshare/egl/fence.hpp"
#include "texshare/egl/import_listener.hpp"
#include "texshare/gbm/allocator.hpp"
#endif

namespace host_renderer {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;
using namespace std::chrono_literals;

#if TEXSHARE_EXAMPLE_HAVE_EGL
// The listener refers to the importer, which shares the display, which may sit on a GBM
// device of its own (heap and udmabuf images come from no GBM device): members in that order.
struct FrameReader::Gpu {
    std::optional<texshare::gbm::Device> own_device;
    texshare::egl::Display display;
    texshare::egl::Importer importer;
    texshare::egl::ImportListener listener;
    texshare::egl::SyncMode sync_mode;
    bool cpu_reported = false;

    Gpu(std::optional<texshare::gbm::Device> device, texshare::egl::Display d, texshare::egl::Importer i,
        bool udmabuf)
        : own_device(std::move(device)),
          display(std::move(d)),
          importer(std::move(i)),
          listener(importer,
                   {.convert_shared_memory = udmabuf, .require_conversion = false, .conversion = {}}),
          sync_mode(texshare::egl::choose_sync_mode(display)) {}
};

namespace {

// EGL for images no GBM device of ours allocated: on the first DRM device that allocates
// (the GPU a compositor would use), else surfaceless.
Result<texshare::egl::Display> open_foreign_display(std::optional<texshare::gbm::Device>& device) {
    auto opened = texshare::gbm::Device::open_default();
    if (!opened) return texshare::egl::Display::open_surfaceless();
    device.emplace(std::move(*opened));
    return texshare::egl::Display::open(device->native());
}

}  // namespace
#else
struct FrameReader::Gpu {};
#endif

namespace {

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

FrameReader FrameReader::create([[maybe_unused]] const Allocator& allocator) {
    FrameReader reader;
    reader.method_ = "CPU mapping";
#if TEXSHARE_EXAMPLE_HAVE_EGL
    const bool udmabuf = allocator.choice() == AllocatorChoice::udmabuf;
    const bool foreign = udmabuf || allocator.choice() == AllocatorChoice::heap;
    if (allocator.device() == nullptr && !foreign) return reader;  // memfds: EGL imports DMA-BUFs only
    // EGL on the device that allocated the images imports what it allocated.
    std::optional<texshare::gbm::Device> own_device;
    auto display = foreign ? open_foreign_display(own_device)
                           : texshare::egl::Display::open(allocator.device()->native());
    auto importer = display ? texshare::egl::Importer::create(*display)
                            : Result<texshare::egl::Importer>(display.error());
    if (!importer) {
        // Importer::create lists the display's extensions; the log line needs only why.
        std::string why = importer.error().message;
        why = why.substr(0, why.find(" (display extensions: "));
        reader.method_ = fmt::format("CPU mapping{} (EGL import unavailable: {})",
                                     udmabuf ? ", a copy per frame, no udmabuf import" : "", why);
        return reader;
    }
    reader.gpu_ =
        std::make_unique<Gpu>(std::move(own_device), std::move(*display), std::move(*importer), udmabuf);
    reader.method_ =
        fmt::format("{}EGL import + FBO readback ({} display, {}, sync {})",
                    udmabuf ? "udmabuf (no copy) + " : "", reader.gpu_->display.platform(),
                    reader.gpu_->display.renderer(), texshare::egl::to_string(reader.gpu_->sync_mode));
#elif TEXSHARE_EXAMPLE_HAVE_GBM
    if (allocator.device() != nullptr) reader.method_ = "CPU mapping (this build has no texshare::egl)";
#endif
    return reader;
}

texshare::FrameImageListener* FrameReader::listener() noexcept {
#if TEXSHARE_EXAMPLE_HAVE_EGL
    if (gpu_) return &gpu_->listener;
#endif
    return nullptr;
}

void FrameReader::image_added([[maybe_unused]] std::uint64_t id) {
#if TEXSHARE_EXAMPLE_HAVE_EGL
    if (!gpu_ || gpu_->cpu_reported || gpu_->listener.path(id) != texshare::egl::ImagePath::cpu) return;
    gpu_->cpu_reported = true;
    method_ = fmt::format("CPU mapping, a copy per frame (the udmabuf path did not work: {})",
                          gpu_->listener.cpu_reason(id));
#endif
}

bool FrameReader::samples_in_place([[maybe_unused]] std::uint64_t id) const {
#if TEXSHARE_EXAMPLE_HAVE_EGL
    return gpu_ && gpu_->listener.path(id) != texshare::egl::ImagePath::cpu;
#else
    return false;
#endif
}

void FrameReader::fall_back_to_cpu(const texshare::Error& why) {
    gpu_.reset();
    method_ = fmt::format("CPU mapping (EGL could not import an image: {})", why.message);
}

Result<void> FrameReader::wait_for_renderer(texshare::UniqueFd fence, const texshare::DmaBufImage& image) {
#if TEXSHARE_EXAMPLE_HAVE_EGL
    if (gpu_) {
        return texshare::egl::wait_for_peer(gpu_->display, gpu_->sync_mode, std::move(fence), image,
                                            texshare::Access::read, 5s);
    }
#endif
    (void)image;
    return texshare::wait_fence(fence.borrow(), 5s);
}

Result<std::vector<std::uint8_t>> FrameReader::read_rgba(std::uint64_t id,
                                                         const texshare::DmaBufImage& image) {
#if TEXSHARE_EXAMPLE_HAVE_EGL
    if (gpu_ && gpu_->listener.path(id) != texshare::egl::ImagePath::cpu) {
        const texshare::egl::ImportedTexture* texture = gpu_->listener.texture(id);
        if (texture == nullptr) return make_error(Errc::invalid_argument, "image {} was never imported", id);
        return texshare::testing::read_pixels(gpu_->display, texture->target, texture->texture, image.width(),
                                              image.height());
    }
#endif
    (void)id;
    return read_mapped(image);
}

}  // namespace host_renderer
