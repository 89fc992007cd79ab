// ImageMapping: CPU access to an image's planes for as long as the object lives.
//
// Get one from DmaBufImage::map() when the CPU must read or write pixels (uploading a
// software-rendered frame, reading back a GPU result). For a DMA-BUF the mapping brackets
// the access with DMA_BUF_IOCTL_SYNC start/end, which is what makes the CPU's view
// coherent with the device's; skipping it gives stale or torn pixels on non-coherent
// hardware. A mapping borrows the image's fds: it must not outlive the image.
//
// Which memory is safe to map (a peer's image gets here only through import_image, which
// proves it): a memfd of the kernel's shm mount sealed against shrinking (a hole its owner
// punches reads back as zeros, never SIGBUS), or a DMA-BUF no larger than its size says (the
// exporter's fault handler refuses only pages past the end, which the size check keeps
// out). Not a MFD_HUGETLB memfd, a tmpfs or a disk file: their owner can take a page away
// under the mapping (SIGBUS). Mapping a DMA-BUF can wait: DMA_BUF_IOCTL_SYNC start waits
// for the buffer's fences, which a peer may have attached (DMA_BUF_IOCTL_IMPORT_SYNC_FILE)
// and which signal when its GPU work ends or times out. A host that must never wait maps
// a peer's DMA-BUF off its event loop, or waits first on the buffer's fence with a timeout
// (sync_file.hpp: export_sync_file, then wait_fence).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <linux/dma-buf.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "texshare/detail/fd_probe.hpp"
#include "texshare/image_layout.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

enum class Access { read, write, read_write };

namespace detail {
constexpr std::uint64_t dma_buf_sync_flags(Access access) noexcept {
    switch (access) {
        case Access::read:
            return DMA_BUF_SYNC_READ;
        case Access::write:
            return DMA_BUF_SYNC_WRITE;
        case Access::read_write:
            return DMA_BUF_SYNC_RW;
    }
    return DMA_BUF_SYNC_RW;
}

// The kernel documents EAGAIN and EINTR from DMA_BUF_IOCTL_SYNC as "try again".
inline Result<void> sync_dma_buf(BorrowedFd fd, std::uint64_t flags) {
    struct dma_buf_sync request {
        flags
    };
    while (::ioctl(fd.get(), DMA_BUF_IOCTL_SYNC, &request) != 0) {
        if (errno != EINTR && errno != EAGAIN) {
            return make_sys_error(errno, "DMA_BUF_IOCTL_SYNC({}) on fd {}",
                                  (flags & DMA_BUF_SYNC_END) ? "end" : "start", fd.get());
        }
    }
    return {};
}
}  // namespace detail

class ImageMapping {
public:
    ImageMapping() = default;
    ImageMapping(ImageMapping&& other) noexcept { *this = std::move(other); }
    ImageMapping& operator=(ImageMapping&& other) noexcept {
        if (this != &other) {
            (void)finish();
            regions_ = std::exchange(other.regions_, {});
            region_count_ = std::exchange(other.region_count_, 0);
            planes_ = std::exchange(other.planes_, {});
            strides_ = other.strides_;
            plane_count_ = std::exchange(other.plane_count_, 0);
            sync_flags_ = other.sync_flags_;
        }
        return *this;
    }
    ImageMapping(const ImageMapping&) = delete;
    ImageMapping& operator=(const ImageMapping&) = delete;
    ~ImageMapping() { (void)finish(); }

    std::size_t plane_count() const noexcept { return plane_count_; }
    // The bytes of plane i, from its offset to its last row's end.
    std::span<std::byte> plane(std::size_t i) const noexcept {
        return in_range(i) ? planes_[i] : std::span<std::byte>{};
    }
    std::uint32_t stride(std::size_t i) const noexcept { return in_range(i) ? strides_[i] : 0; }

    // Ends CPU access now and reports a failed DMA_BUF_IOCTL_SYNC end; the destructor does
    // the same silently. Unmaps either way.
    Result<void> finish() {
        Result<void> outcome;
        for (std::size_t i = 0; i < region_count_; ++i) {
            Region& region = regions_[i];
            if (region.sync_fd.valid()) {
                auto synced = detail::sync_dma_buf(region.sync_fd, DMA_BUF_SYNC_END | sync_flags_);
                if (!synced && outcome) outcome = std::move(synced);
            }
            ::munmap(region.base, region.length);
        }
        region_count_ = 0;
        plane_count_ = 0;
        return outcome;
    }

    // Wraps memory the caller keeps alive (a cpu_only image's pixels): no syscalls at all.
    static ImageMapping of_memory(const ImageLayout& layout, std::span<std::byte> pixels) {
        ImageMapping mapping;
        for (std::size_t i = 0; i < layout.plane_count; ++i) {
            mapping.set_plane(i, pixels.data(), layout);
        }
        mapping.plane_count_ = layout.plane_count;
        return mapping;
    }

    // mmaps each distinct buffer among plane_fds once (planes often share one), after
    // checking the buffer really holds its planes: touching past a file's end is SIGBUS.
    static Result<ImageMapping> of_fds(const ImageLayout& layout,
                                       const std::array<BorrowedFd, max_planes>& plane_fds, Access access,
                                       bool is_dma_buf) {
        ImageMapping mapping;
        mapping.sync_flags_ = detail::dma_buf_sync_flags(access);
        std::array<detail::FileIdentity, max_planes> files{};
        for (std::size_t i = 0; i < layout.plane_count; ++i) {
            auto identity = detail::file_identity(plane_fds[i]);
            if (!identity) return std::move(identity).error();
            files[i] = *identity;
        }
        std::array<std::byte*, max_planes> bases{};
        for (std::size_t i = 0; i < layout.plane_count; ++i) {
            for (std::size_t j = 0; j < i && bases[i] == nullptr; ++j) {
                if (files[j] == files[i]) bases[i] = bases[j];
            }
            if (bases[i] == nullptr) {
                auto base = mapping.map_region(layout, plane_fds, files, i, access, is_dma_buf);
                if (!base) return std::move(base).error();
                bases[i] = *base;
            }
            mapping.set_plane(i, bases[i], layout);
        }
        mapping.plane_count_ = layout.plane_count;
        return mapping;
    }

private:
    bool in_range(std::size_t i) const noexcept { return i < plane_count_ && i < max_planes; }

    struct Region {
        void* base = nullptr;
        std::size_t length = 0;
        BorrowedFd sync_fd;  // set for a DMA-BUF whose SYNC start succeeded
    };

    Result<std::byte*> map_region(const ImageLayout& layout,
                                  const std::array<BorrowedFd, max_planes>& plane_fds,
                                  const std::array<detail::FileIdentity, max_planes>& files,
                                  std::size_t first, Access access, bool is_dma_buf) {
        std::uint64_t length = 0;
        for (std::size_t k = first; k < layout.plane_count; ++k) {
            if (files[k] == files[first]) length = std::max(length, plane_end(layout, k));
        }
        const BorrowedFd fd = plane_fds[first];
        auto size = is_dma_buf ? detail::dma_buf_size(fd) : detail::regular_file_size(fd);
        if (!size) return std::move(size).error();
        if (*size < length) {
            return make_error(Errc::rejected, "map: plane {} needs {} bytes of fd {}, which holds {}", first,
                              length, fd.get(), *size);
        }
        const int protection = access == Access::read ? PROT_READ : PROT_READ | PROT_WRITE;
        void* base = ::mmap(nullptr, length, protection, MAP_SHARED, fd.get(), 0);
        if (base == MAP_FAILED) {
            return make_sys_error(errno, "map: mmap of {} bytes of fd {} ({})", length, fd.get(),
                                  access == Access::read ? "read" : "read-write");
        }
        Region& region = regions_[region_count_++];
        region = Region{base, static_cast<std::size_t>(length), BorrowedFd()};
        if (is_dma_buf) {
            auto started = detail::sync_dma_buf(fd, DMA_BUF_SYNC_START | sync_flags_);
            if (!started) return std::move(started).error();
            region.sync_fd = fd;
        }
        return static_cast<std::byte*>(base);
    }

    void set_plane(std::size_t i, std::byte* base, const ImageLayout& layout) {
        const std::uint64_t start = layout.planes[i].offset;
        planes_[i] = std::span<std::byte>(base + start, plane_end(layout, i) - start);
        strides_[i] = layout.planes[i].stride;
    }

    std::array<Region, max_planes> regions_{};
    std::size_t region_count_ = 0;
    std::array<std::span<std::byte>, max_planes> planes_{};
    std::array<std::uint32_t, max_planes> strides_{};
    std::size_t plane_count_ = 0;
    std::uint64_t sync_flags_ = 0;
};

}  // namespace texshare
