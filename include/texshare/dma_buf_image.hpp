// DmaBufImage: an image's layout, the fds of its planes, and what kind of memory backs it.
//
// This is the unit texshare allocates, sends, receives and imports. Four backings:
//   dma_buf        GPU/device memory (GBM, a driver export); one fd per plane.
//   shared_memory  a sealed memfd, the CPU fallback that works on every machine.
//   cpu_only       pixels in this process's heap and no fd at all. Such an image can be
//                  described to a peer but its pixels never cross: it arrives there as a
//                  cpu_only image without pixel storage. Convert it with
//                  MemfdAllocator::share() when the peer needs the pixels.
//   opaque_fd      a driver's opaque external memory (Vulkan/CUDA OPAQUE_FD, e.g. NVIDIA's,
//                  whose driver has no DMA-BUF export): one fd, importable only by the same
//                  driver on the same device, with the OpaqueMemory identity it carries
//                  (opaque_memory.hpp). Its layout is width, height, a single-plane fourcc,
//                  modifier DRM_FORMAT_MOD_INVALID (the driver's private tiling) and one plane
//                  whose offset and stride are 0: where the pixels lie only the driver knows.
//                  It cannot be mapped, nor imported by EGL; texshare::vulkan imports it.
// Each plane owns its own fd; planes that share one buffer hold duplicates of one fd.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "texshare/color_info.hpp"
#include "texshare/detail/fd_closer.hpp"
#include "texshare/image_layout.hpp"
#include "texshare/image_mapping.hpp"
#include "texshare/opaque_memory.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

enum class Backing : std::uint8_t { cpu_only = 0, shared_memory = 1, dma_buf = 2, opaque_fd = 3 };
inline constexpr std::uint8_t last_backing = static_cast<std::uint8_t>(Backing::opaque_fd);

constexpr std::string_view to_string(Backing backing) noexcept {
    switch (backing) {
        case Backing::cpu_only:
            return "cpu_only";
        case Backing::shared_memory:
            return "shared_memory";
        case Backing::dma_buf:
            return "dma_buf";
        case Backing::opaque_fd:
            return "opaque_fd";
    }
    return "unknown";
}

using PlaneFds = std::array<UniqueFd, max_planes>;
struct ImageDescriptor;
class DmaBufImage;
inline Result<DmaBufImage> import_image(const ImageDescriptor& d, PlaneFds fds);

class DmaBufImage {
public:
    DmaBufImage() = default;  // empty: no planes, cpu_only, nothing to map
    DmaBufImage(DmaBufImage&&) noexcept = default;
    DmaBufImage& operator=(DmaBufImage&& other) noexcept {
        if (this != &other) {
            close_opaque_fd();
            layout_ = other.layout_;
            backing_ = other.backing_;
            opaque_ = other.opaque_;
            color_ = other.color_;
            fds_ = std::move(other.fds_);
            pixels_ = std::move(other.pixels_);
            pixel_bytes_ = std::exchange(other.pixel_bytes_, 0);
        }
        return *this;
    }
    DmaBufImage(const DmaBufImage&) = delete;
    DmaBufImage& operator=(const DmaBufImage&) = delete;
    // An opaque_fd image's fd is closed on texshare's closer thread (detail/fd_closer.hpp):
    // it is a character device (NVIDIA's /dev/nvidiactl) whose close runs its driver's
    // release, and a peer's character device may be one whose release waits (a tty drains
    // its output for up to closing_wait, 30 s by default). Every other backing's fds are of
    // a kind proven on receipt never to block in close, and are closed here.
    ~DmaBufImage() { close_opaque_fd(); }

    // Takes ownership of plane_fds (one per plane for dma_buf and shared_memory, none for
    // cpu_only). On error the fds are closed. The fds' kinds and sizes are not checked
    // here: images from a peer go through receive-side validation (image_wire.hpp) instead.
    static Result<DmaBufImage> adopt(const ImageLayout& layout, Backing backing, PlaneFds plane_fds) {
        if (backing == Backing::opaque_fd) {
            return make_error(Errc::invalid_argument,
                              "an opaque_fd image needs its OpaqueMemory identity: use DmaBufImage::adopt_opaque_fd");
        }
        if (backing > static_cast<Backing>(last_backing)) {
            return make_error(Errc::invalid_argument, "unknown backing {}", static_cast<unsigned>(backing));
        }
        if (auto valid = validate_layout(layout); !valid) return std::move(valid).error();
        if (auto linear = check_linear(layout, backing); !linear) return std::move(linear).error();
        const bool wants_fds = backing != Backing::cpu_only;
        for (std::size_t i = 0; i < max_planes; ++i) {
            const bool should_have = wants_fds && i < layout.plane_count;
            if (plane_fds[i].valid() != should_have) {
                return make_error(Errc::invalid_argument, "{} image plane {} {} an fd", to_string(backing), i,
                                  should_have ? "needs" : "must not have");
            }
        }
        return DmaBufImage(layout, backing, std::move(plane_fds));
    }

    // An opaque_fd image of width x height `fourcc` (opaque_layout(): one plane, modifier
    // INVALID, offset and stride 0) owning `fd`, the memory's one fd (vkGetMemoryFdKHR with
    // VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT), with the identity `memory` an importer
    // needs. Checks check_opaque_layout() (its Errc) and check_opaque_memory()
    // (Errc::invalid_argument here) and that `fd` is valid (Errc::invalid_argument); the fd's
    // kind is not checked here (a peer's is, on receipt: image_wire.hpp). On error `fd` is
    // closed.
    static Result<DmaBufImage> adopt_opaque_fd(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc,
                                               const OpaqueMemory& memory, UniqueFd fd) {
        const ImageLayout layout = opaque_layout(width, height, fourcc);
        if (auto valid = check_opaque_layout(layout); !valid) return std::move(valid).error();
        if (auto sane = check_opaque_memory(memory); !sane) {
            return make_error(Errc::invalid_argument, "{}", sane.error().message);
        }
        if (!fd.valid()) return make_error(Errc::invalid_argument, "an opaque_fd image needs its memory's fd");
        PlaneFds fds{};
        fds[0] = std::move(fd);
        DmaBufImage image(layout, Backing::opaque_fd, std::move(fds));
        image.opaque_ = memory;
        return image;
    }

    // Only dma_buf images may have a modifier other than LINEAR (opaque_fd images are checked
    // by check_opaque_layout instead).
    static Result<void> check_linear(const ImageLayout& layout, Backing backing) {
        if (backing != Backing::dma_buf && layout.modifier != DRM_FORMAT_MOD_LINEAR) {
            return make_error(Errc::invalid_layout, "a {} image is linear, but has modifier {}", to_string(backing),
                              modifier_name(layout.modifier));
        }
        return {};
    }

    // A cpu_only image with zeroed pixels of the given (linear) layout.
    static Result<DmaBufImage> create_cpu_only(const ImageLayout& layout) {
        auto image = adopt(layout, Backing::cpu_only, {});
        if (!image) return image;
        image->pixel_bytes_ = required_size(layout);
        image->pixels_ = std::make_unique<std::byte[]>(image->pixel_bytes_);
        return image;
    }

    bool empty() const noexcept { return layout_.plane_count == 0; }  // default-constructed or moved from
    const ImageLayout& layout() const noexcept { return layout_; }
    Backing backing() const noexcept { return backing_; }
    std::uint32_t width() const noexcept { return layout_.width; }
    std::uint32_t height() const noexcept { return layout_.height; }
    std::uint32_t fourcc() const noexcept { return layout_.fourcc; }
    // What importing an opaque_fd image needs (opaque_memory.hpp); all zero for other backings.
    const OpaqueMemory& opaque_memory() const noexcept { return opaque_; }
    // How the pixels are read as colour (color_info.hpp): set by the producer, sent once with
    // the image, checked on receipt. All unspecified unless set; resolve_color() gives the
    // documented defaults.
    const ColorInfo& color() const noexcept { return color_; }
    // Errc::invalid_argument naming the field and value when `color` breaks a rule of
    // check_color() for this image's format (an unknown value, YUV fields on an RGB format,
    // an alpha mode without alpha); the image keeps its colour then.
    Result<void> set_color(const ColorInfo& color) {
        if (auto checked = check_color(color, layout_.fourcc, Errc::invalid_argument); !checked) return checked;
        color_ = color;
        return {};
    }

    // The fd of plane i, or an empty BorrowedFd (cpu_only images, i past the planes).
    BorrowedFd plane_fd(std::size_t i) const noexcept {
        return i < max_planes ? fds_[i].borrow() : BorrowedFd();
    }
    std::array<BorrowedFd, max_planes> plane_fds() const noexcept {
        return {fds_[0].borrow(), fds_[1].borrow(), fds_[2].borrow(), fds_[3].borrow()};
    }

    // A cpu_only image that came from a peer has a layout but no pixels.
    bool has_cpu_pixels() const noexcept { return pixels_ != nullptr; }
    std::span<std::byte> cpu_pixels() const noexcept { return {pixels_.get(), pixel_bytes_}; }

    // CPU access to every plane; see ImageMapping. Fails for an image with no memory, and
    // for an opaque_fd image (Errc::unsupported): its fd is the driver's handle, not memory
    // with a known layout (an mmap of /dev/nvidiactl is NVIDIA's own ioctl protocol).
    Result<ImageMapping> map(Access access) const {
        if (backing_ == Backing::opaque_fd) {
            return make_error(Errc::unsupported,
                              "an opaque_fd image cannot be mapped: its fd is a driver's private memory handle "
                              "(only the same Vulkan driver on the same device imports it: texshare::vulkan)");
        }
        if (backing_ == Backing::cpu_only) {
            if (!pixels_) {
                return make_error(Errc::unsupported,
                                  "cpu_only image without pixel storage (received from a peer?) "
                                  "cannot be mapped");
            }
            return ImageMapping::of_memory(layout_, cpu_pixels());
        }
        return ImageMapping::of_fds(layout_, plane_fds(), access, backing_ == Backing::dma_buf);
    }

private:
    // import_image (image_wire.hpp) has checked everything adopt() checks, and more: it
    // builds the image without validating the layout a second time.
    friend Result<DmaBufImage> import_image(const ImageDescriptor& d, PlaneFds fds);
    DmaBufImage(const ImageLayout& layout, Backing backing, PlaneFds plane_fds) noexcept
        : layout_(layout), backing_(backing), fds_(std::move(plane_fds)) {}
    void close_opaque_fd() noexcept {
        if (backing_ == Backing::opaque_fd) detail::close_peer_fd(fds_[0]);
    }

    ImageLayout layout_{};
    Backing backing_ = Backing::cpu_only;
    OpaqueMemory opaque_{};
    ColorInfo color_{};
    PlaneFds fds_{};
    std::unique_ptr<std::byte[]> pixels_;
    std::size_t pixel_bytes_ = 0;
};

}  // namespace texshare
