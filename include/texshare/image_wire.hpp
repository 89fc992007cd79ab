// Sharing a DmaBufImage with another process: the descriptor on the wire and its checks.
//
// Use send_image()/receive_image() to share each image once, under an id both sides then
// use per frame. Or, when images travel inside a protocol of your own, describe_image()
// and import_image() are the two halves: import_image() is the one place a peer's claims
// about an image are checked, before any fd it sent is used:
//   magic and version; backing known; reserved bytes zero; the layout rules of
//   validate_layout(); which planes carry fds agrees with the backing and with the fds that
//   arrived; each fd is what the backing claims (a DMA-BUF by its file system magic, or
//   the device number of the file system that magic was seen on; shared memory by the
//   device of the kernel's memfd mount and its seal against shrinking, so that nothing
//   the peer does later can make a read of it fault: no MFD_HUGETLB memfd, no tmpfs or
//   disk file); and each plane lies inside its fd's real size. An opaque_fd image is checked
//   differently (detail/opaque_fd_probe.hpp says what can and cannot be): its layout by
//   check_opaque_layout, its OpaqueMemory by check_opaque_memory, and its one fd must be a
//   character device (NVIDIA's /dev/nvidiactl), never a DMA-BUF, memfd, file, pipe, socket
//   or anonymous inode; that the fd is really that memory only the Vulkan import can tell.
//   Every other backing's OpaqueMemory bytes must be zero. No probe blocks on the fd
//   (detail/fd_probe.hpp); a refused import's fds are closed off the calling thread
//   (detail/fd_closer.hpp), since their close could block.
// A CPU-only image is described but carries no fds and arrives without pixels.
//
// Wire versions: 1 had no OpaqueMemory; 2 (issue 15) appends it (56 bytes, opaque_memory.hpp)
// after the planes, so the descriptor is 160 bytes; 3 (issue 16) appends the image's
// ColorInfo (8 bytes, color_info.hpp: YUV matrix, range, chroma siting, transfer function,
// primaries, alpha mode, a reserved byte), 168 bytes. Its values are checked on receipt by
// check_color() (Errc::protocol naming the field and value: unknown values, YUV fields on an
// RGB format, an alpha mode on a format without alpha); all zero means "unspecified", and
// the consumer applies resolve_color()'s documented defaults. A peer of an older version
// sends a message of another size, refused by the channel before any field is read.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <sys/stat.h>

#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "texshare/aux_channel.hpp"
#include "texshare/color_info.hpp"
#include "texshare/detail/fd_closer.hpp"
#include "texshare/detail/fd_probe.hpp"
#include "texshare/detail/opaque_fd_probe.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/image_layout.hpp"
#include "texshare/opaque_memory.hpp"
#include "texshare/result.hpp"

namespace texshare {

inline constexpr std::uint32_t image_descriptor_magic = 0x49535854;  // "TXSI" in memory order
inline constexpr std::uint16_t image_descriptor_version = 3;

struct WirePlane {
    std::uint64_t offset = 0;
    std::uint32_t stride = 0;
    std::uint32_t reserved = 0;  // must be zero
};

// Every byte is a named field, so nothing uninitialised is ever sent.
struct ImageDescriptor {
    std::uint32_t magic = image_descriptor_magic;
    std::uint16_t version = image_descriptor_version;
    std::uint8_t backing = 0;        // Backing
    std::uint8_t fd_plane_mask = 0;  // bit i: plane i's fd travels with this message
    std::uint64_t image_id = 0;
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    std::uint32_t fourcc = 0;
    std::uint32_t plane_count = 0;
    std::uint64_t modifier = 0;
    std::array<WirePlane, max_planes> planes{};
    OpaqueMemory opaque{};  // Backing::opaque_fd only; all zero for every other backing
    ColorInfo color{};      // version 3: how the pixels are read as colour (color_info.hpp)
};
static_assert(sizeof(ImageDescriptor) == 168, "descriptor version 3 is 168 bytes (see the wire versions above)");
static_assert(std::has_unique_object_representations_v<ImageDescriptor>, "no padding on the wire");

using ImageChannel = AuxChannel<ImageDescriptor, max_planes>;

inline ImageDescriptor describe_image(std::uint64_t image_id, const DmaBufImage& image) {
    const ImageLayout& layout = image.layout();
    ImageDescriptor descriptor;
    descriptor.backing = static_cast<std::uint8_t>(image.backing());
    descriptor.image_id = image_id;
    descriptor.width = layout.width;
    descriptor.height = layout.height;
    descriptor.fourcc = layout.fourcc;
    descriptor.plane_count = layout.plane_count;
    descriptor.modifier = layout.modifier;
    for (std::size_t i = 0; i < max_planes; ++i) {
        descriptor.planes[i] = WirePlane{layout.planes[i].offset, layout.planes[i].stride, 0};
        if (image.plane_fd(i).valid()) descriptor.fd_plane_mask |= static_cast<std::uint8_t>(1U << i);
    }
    descriptor.opaque = image.opaque_memory();
    descriptor.color = image.color();
    return descriptor;
}

namespace detail {
inline Result<void> check_plane_fd(const ImageDescriptor& d, const ImageLayout& layout, std::size_t plane,
                                   BorrowedFd fd) {
    const auto backing = static_cast<Backing>(d.backing);
    Result<std::uint64_t> size = std::uint64_t{0};
    if (backing == Backing::opaque_fd) {
        // No size to compare: a character device's is 0, and the driver checks the import.
        return require_opaque_memory_fd(fd, fmt::format("image {}: plane {} is declared opaque_fd but its",
                                                        d.image_id, plane));
    }
    if (backing == Backing::dma_buf) {
        auto dma_buf_size = dma_buf_size_if_dma_buf(fd);
        if (!dma_buf_size) return std::move(dma_buf_size).error();
        if (!*dma_buf_size) {
            return make_error(Errc::rejected,
                              "image {}: plane {} is declared dma_buf but its fd "
                              "is not a DMA-BUF (not an anonymous inode of DMA_BUF_MAGIC)",
                              d.image_id, plane);
        }
        size = **dma_buf_size;
    } else {
        // Safe to map means on the kernel's memfd mount and sealed against shrinking: see
        // require_shm_memfd for why a hugetlbfs memfd or a tmpfs file is not.
        const auto what = fmt::format("image {}: plane {} is declared shared_memory but its", d.image_id, plane);
        size = require_shm_memfd(fd, F_SEAL_SHRINK, what);
    }
    if (!size) return std::move(size).error();
    const std::uint64_t end = plane_end(layout, plane);
    if (end > *size) {
        return make_error(Errc::rejected, "image {}: plane {} ends at byte {} but its fd holds {} bytes",
                          d.image_id, plane, end, *size);
    }
    return {};
}

// Every check of import_image(); the layout they proved, for the image to be built of.
inline Result<ImageLayout> check_import(const ImageDescriptor& d, const PlaneFds& fds) {
    if (d.magic != image_descriptor_magic || d.version != image_descriptor_version) {
        return make_error(Errc::protocol,
                          "image descriptor magic 0x{:08x} version {}, expected "
                          "0x{:08x} version {}",
                          d.magic, d.version, image_descriptor_magic, image_descriptor_version);
    }
    if (d.backing > last_backing) {
        return make_error(Errc::protocol, "image {}: unknown backing {}", d.image_id, d.backing);
    }
    const auto backing = static_cast<Backing>(d.backing);
    ImageLayout layout{d.width, d.height, d.fourcc, d.modifier, d.plane_count, {}};
    for (std::size_t i = 0; i < max_planes; ++i) {
        if (d.planes[i].reserved != 0) {
            return make_error(Errc::protocol, "image {}: plane {} reserved field is {}, not 0", d.image_id, i,
                              d.planes[i].reserved);
        }
        layout.planes[i] = PlaneLayout{d.planes[i].offset, d.planes[i].stride};
        const bool declared = ((d.fd_plane_mask >> i) & 1U) != 0;
        if (declared != fds[i].valid()) {
            return make_error(Errc::protocol, "image {}: plane {} {} an fd but {} arrived", d.image_id, i,
                              declared ? "declares" : "does not declare", declared ? "none" : "one");
        }
    }
    if ((d.fd_plane_mask >> max_planes) != 0) {
        return make_error(Errc::protocol, "image {}: fd plane mask 0x{:x} names planes beyond {}", d.image_id,
                          d.fd_plane_mask, max_planes);
    }
    const bool opaque = backing == Backing::opaque_fd;
    if (!opaque && d.opaque != OpaqueMemory{}) {
        return make_error(Errc::protocol, "image {}: a {} image's opaque memory bytes are not zero", d.image_id,
                          to_string(backing));
    }
    if (opaque) {
        if (auto sane = check_opaque_memory(d.opaque); !sane) {
            return make_error(Errc::rejected, "image {}: {}", d.image_id, sane.error().message);
        }
    }
    if (auto valid = opaque ? check_opaque_layout(layout) : validate_layout(layout); !valid) {
        Error error = std::move(valid).error();
        error.message = fmt::format("image {}: {}", d.image_id, error.message);
        return error;
    }
    if (auto color = check_color(d.color, layout.fourcc, Errc::protocol); !color) {
        return make_error(Errc::protocol, "image {}: {}", d.image_id, color.error().message);
    }
    if (auto linear = opaque ? Result<void>{} : DmaBufImage::check_linear(layout, backing); !linear) {
        return make_error(Errc::rejected, "image {}: {}", d.image_id, linear.error().message);
    }
    const auto expected_mask =
        static_cast<std::uint8_t>(backing == Backing::cpu_only ? 0U : (1U << layout.plane_count) - 1U);
    if (d.fd_plane_mask != expected_mask) {
        return make_error(Errc::rejected,
                          "image {}: a {} image with {} planes needs fd mask 0x{:x}, "
                          "got 0x{:x}",
                          d.image_id, to_string(backing), layout.plane_count, expected_mask, d.fd_plane_mask);
    }
    for (std::size_t i = 0; i < layout.plane_count && backing != Backing::cpu_only; ++i) {
        if (auto checked = detail::check_plane_fd(d, layout, i, fds[i].borrow()); !checked) {
            return checked.error().code == Errc::system ? make_error(Errc::rejected, "image {}: plane {}: {}",
                                                                     d.image_id, i, checked.error().message)
                                                        : std::move(checked).error();
        }
    }
    return layout;
}
}  // namespace detail

// Validates everything the peer claimed, then builds the image. fds[i] is what arrived for
// plane i (empty if nothing); on any error every one of them is closed, on texshare's closer
// thread (a refused fd is of unproven kind, and its close could block: detail/fd_closer.hpp).
inline Result<DmaBufImage> import_image(const ImageDescriptor& d, PlaneFds fds) {
    auto layout = detail::check_import(d, fds);
    if (!layout) {
        detail::close_peer_fds(fds);
        return std::move(layout).error();
    }
    // Everything DmaBufImage::adopt() (or adopt_opaque_fd()) checks is checked above (the
    // layout, the opaque memory, and each plane's fd against the backing through the fd
    // mask), so the layout is validated once.
    DmaBufImage image(*layout, static_cast<Backing>(d.backing), std::move(fds));
    image.opaque_ = d.opaque;
    image.color_ = d.color;
    return image;
}

// One message: the descriptor plus each plane's fd (none for a cpu_only image).
inline Result<void> send_image(ImageChannel& channel, std::uint64_t image_id, const DmaBufImage& image) {
    const auto fds = image.plane_fds();
    return channel.send(describe_image(image_id, image), fds);
}

struct ReceivedImage {
    std::uint64_t id = 0;
    DmaBufImage image;
};

inline Result<ReceivedImage> receive_image(ImageChannel& channel) {
    auto received = channel.receive();
    if (!received) return std::move(received).error();
    auto image = import_image(received->message, std::move(received->fds));
    if (!image) return std::move(image).error();
    return ReceivedImage{received->message.image_id, std::move(*image)};
}

}  // namespace texshare
