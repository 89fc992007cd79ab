// MemfdAllocator: images in sealed memfds, the sharing path that needs no GPU.
//
// Use it when no DMA-BUF allocator is available (no DRM device, a VM, a CI machine) or when
// a CPU renderer produces the pixels anyway. Each image is one memfd holding every plane,
// sealed against shrinking, growing and further sealing before any fd leaves this process,
// so a receiver can map it without fear of a peer truncating it underneath (SIGBUS). The
// memfds are on the kernel's shm mount (never MFD_HUGETLB), the only memory import_image
// accepts as shared memory (detail/fd_probe.hpp require_shm_memfd says why). Each memfd is a
// whole number of pages (the layout's size rounded up), the one rule of udmabuf's the seals
// do not cover: so every image of this allocator converts to a DMA-BUF (udmabuf.hpp).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>

#include "texshare/detail/checked_math.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/image_layout.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

inline constexpr unsigned memfd_image_seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

class MemfdAllocator {
public:
    struct Options {
        std::uint32_t stride_alignment = 64;  // bytes; a power of two
    };

    MemfdAllocator() = default;
    explicit MemfdAllocator(Options options) : options_(options) {}

    Result<DmaBufImage> allocate(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc) const {
        auto layout = make_packed_layout(fourcc, width, height, options_.stride_alignment);
        if (!layout) return std::move(layout).error();
        return allocate(*layout);
    }

    // An image with exactly this linear layout (e.g. one negotiated with a peer).
    Result<DmaBufImage> allocate(const ImageLayout& layout) const {
        if (auto valid = validate_layout(layout); !valid) return std::move(valid).error();
        // Rounded up to whole pages: UDMABUF_CREATE refuses a size that is not page-aligned.
        const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        const std::uint64_t size = *detail::align_up(required_size(layout), page);  // <= 4 GiB + page
        const std::string name =
            fmt::format("texshare {}x{} {}", layout.width, layout.height, format_name(layout.fourcc));
        UniqueFd memfd(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!memfd) return make_sys_error(errno, "memfd_create for a {}-byte image", size);
        if (::ftruncate(memfd.get(), static_cast<off_t>(size)) != 0) {
            return make_sys_error(errno, "ftruncate of memfd to {} bytes", size);
        }
        if (::fcntl(memfd.get(), F_ADD_SEALS, memfd_image_seals) != 0) {
            return make_sys_error(errno, "fcntl(F_ADD_SEALS) on memfd");
        }
        PlaneFds fds;
        fds[0] = std::move(memfd);
        for (std::size_t i = 1; i < layout.plane_count; ++i) {
            auto copy = fds[0].dup();
            if (!copy) return std::move(copy).error();
            fds[i] = std::move(*copy);
        }
        return DmaBufImage::adopt(layout, Backing::shared_memory, std::move(fds));
    }

    // A shared_memory copy of a cpu_only image, same layout and pixels, for when a peer
    // needs to see what so far only this process could.
    Result<DmaBufImage> share(const DmaBufImage& cpu_image) const {
        if (cpu_image.backing() != Backing::cpu_only || !cpu_image.has_cpu_pixels()) {
            return make_error(
                Errc::invalid_argument, "share: expects a cpu_only image with pixels, got a {} image{}",
                to_string(cpu_image.backing()), cpu_image.has_cpu_pixels() ? "" : " without pixels");
        }
        auto shared = allocate(cpu_image.layout());
        if (!shared) return shared;
        auto mapping = shared->map(Access::write);
        if (!mapping) return std::move(mapping).error();
        auto source = ImageMapping::of_memory(cpu_image.layout(), cpu_image.cpu_pixels());
        for (std::size_t i = 0; i < mapping->plane_count(); ++i) {
            std::ranges::copy(source.plane(i), mapping->plane(i).begin());
        }
        if (auto done = mapping->finish(); !done) return std::move(done).error();
        return shared;
    }

private:
    Options options_;
};

}  // namespace texshare
