// DmaHeapAllocator: images in DMA-BUFs from a Linux DMA-BUF heap (/dev/dma_heap/<name>).
//
// Use it where a real DMA-BUF is wanted but no GPU allocates one: a CPU renderer whose
// frames a GPU process imports, a machine or VM without a render node, or where the
// platform says which memory to use (Android, ChromeOS and libcamera allocate from heaps:
// "system" is ordinary pages, "cma"/"reserved" are contiguous memory). Heaps exist since
// Linux 5.6 with CONFIG_DMABUF_HEAPS (the system heap with CONFIG_DMABUF_HEAPS_SYSTEM); the
// kernel's uAPI is one ioctl, DMA_HEAP_IOCTL_ALLOC (include/uapi/linux/dma-heap.h,
// Documentation/userspace-api/dma-buf-heaps.rst).
//
// Each image is one heap buffer holding every plane at its offset (planes hold duplicates
// of its fd), LINEAR, Backing::dma_buf: to a peer it is a DMA-BUF like any other (it comes
// from the same DMA-BUF pseudo file system, so receive-side validation recognises it by its
// magic). CPU access is DmaBufImage::map(), which brackets it with DMA_BUF_IOCTL_SYNC.
//
// Why rows are padded to 256 bytes by default: a linear buffer that a GPU imports must have
// a pitch the GPU can address. AMD's radeonsi refuses a linear DMA-BUF whose pitch is not a
// multiple of 256 bytes (EGL_BAD_ALLOC; Kodi's fix for its udmabuf frames on a Steam Deck,
// xbmc/xbmc pull request 27895, aligns the stride to 256, as Smithay's udmabuf allocator
// does with its STRIDE_ALIGN = 256, Smithay/smithay pull request 2084); Intel wants 64
// (ChromeOS minigbm's i915 backend aligns LINEAR rows to the 64-byte cache line), and so do
// Mesa's Mali drivers (rockchip-linux/mpp issue 507: EGL refuses 16- or 32-byte aligned
// decoder frames). 256 satisfies every one of them; 64 is the least this allocator accepts.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/dma-heap.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "texshare/detail/checked_math.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/image_layout.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

inline constexpr std::uint32_t dma_heap_min_stride_alignment = 64;

// DmaHeapAllocator::Options (outside the class so that open()'s `= {}` can use its defaults).
struct DmaHeapOptions {
    std::string heap = "system";           // a file name in heap_dir
    std::string heap_dir = "/dev/dma_heap";
    std::uint32_t stride_alignment = 256;  // bytes, a power of two >= 64 (why: above)
};

class DmaHeapAllocator {
public:
    using Options = DmaHeapOptions;

    // Opens heap_dir/heap (a character device; this allocator owns its fd, close-on-exec).
    // Errors: Errc::invalid_argument for a heap name that is not one file name or a bad
    // stride alignment; Errc::unsupported, with the errno, where heap_dir or the heap is
    // missing (the message lists the heaps heap_dir has) or cannot be opened;
    // Errc::unsupported for a path that is no character device.
    static Result<DmaHeapAllocator> open(Options options = {}) {
        const std::uint32_t alignment = options.stride_alignment;
        if (alignment < dma_heap_min_stride_alignment || (alignment & (alignment - 1)) != 0) {
            return make_error(Errc::invalid_argument,
                              "DMA-BUF heap stride alignment {} is not a power of two of at least {} bytes",
                              alignment, dma_heap_min_stride_alignment);
        }
        const std::string& name = options.heap;
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
            return make_error(Errc::invalid_argument, "DMA-BUF heap name '{}' is not a file name in {}", name,
                              options.heap_dir);
        }
        const std::string path = options.heap_dir + "/" + name;
        UniqueFd heap(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!heap) {
            const int err = errno;
            struct stat dir_info {};
            if (::stat(options.heap_dir.c_str(), &dir_info) != 0) {
                return make_sys_error_as(Errc::unsupported, err,
                                         "no DMA-BUF heaps: {} is missing (a kernel before 5.6 or without "
                                         "CONFIG_DMABUF_HEAPS), so heap {} cannot be opened",
                                         options.heap_dir, path);
            }
            auto heaps = list_heaps(options.heap_dir);
            return make_sys_error_as(Errc::unsupported, err, "open DMA-BUF heap {} (heaps in {}: {})", path,
                                     options.heap_dir, heaps ? join(*heaps) : heaps.error().message);
        }
        struct stat info {};
        if (::fstat(heap.get(), &info) != 0) return make_sys_error(errno, "fstat of DMA-BUF heap {}", path);
        if (!S_ISCHR(info.st_mode)) {
            return make_error(Errc::unsupported, "{} is not a DMA-BUF heap: not a character device (mode 0{:o})",
                              path, info.st_mode & S_IFMT);
        }
        return DmaHeapAllocator(std::move(options), std::move(path), std::move(heap));
    }

    // The heaps heap_dir holds (its entries, sorted), e.g. {"system"} or {"reserved",
    // "system"}. Errc::unsupported with the errno where heap_dir cannot be read (missing:
    // ENOENT, a kernel without heaps).
    static Result<std::vector<std::string>> list_heaps(std::string_view heap_dir = "/dev/dma_heap") {
        const std::string dir_path(heap_dir);
        DIR* dir = ::opendir(dir_path.c_str());
        if (dir == nullptr) {
            return make_sys_error_as(Errc::unsupported, errno, "list DMA-BUF heaps in {}", dir_path);
        }
        std::vector<std::string> names;
        errno = 0;
        while (const dirent* entry = ::readdir(dir)) {
            const std::string_view entry_name = entry->d_name;
            if (entry_name != "." && entry_name != "..") names.emplace_back(entry_name);
        }
        const int err = errno;
        ::closedir(dir);
        if (err != 0) return make_sys_error(err, "readdir of {}", dir_path);
        std::ranges::sort(names);
        return names;
    }

    // A LINEAR image of width x height in `fourcc`, every plane's stride and offset aligned
    // to Options::stride_alignment, in one heap buffer. Errors as allocate(layout) and
    // make_packed_layout (unknown format: Errc::unsupported; a bad size: invalid_layout).
    Result<DmaBufImage> allocate(std::uint32_t width, std::uint32_t height, std::uint32_t fourcc) const {
        auto layout = make_packed_layout(fourcc, width, height, options_.stride_alignment);
        if (!layout) return std::move(layout).error();
        return allocate(*layout);
    }

    // An image with exactly this layout (e.g. one negotiated with a peer), which must be
    // valid and LINEAR (a heap hands out plain pages: nothing tiles them). The buffer is the
    // layout's size rounded up to whole pages, as the kernel's heaps allocate it anyway.
    // The image owns the DMA-BUF (fd_flags O_RDWR | O_CLOEXEC: mappable read-write).
    // Errors: the layout's (validate_layout); Errc::invalid_layout for a modifier other
    // than LINEAR; Errc::system with the errno where the heap refuses (ENOMEM: out of
    // memory or over the heap's limit; EINVAL: a length it cannot serve).
    Result<DmaBufImage> allocate(const ImageLayout& layout) const {
        if (auto valid = validate_layout(layout); !valid) return std::move(valid).error();
        if (layout.modifier != DRM_FORMAT_MOD_LINEAR) {
            return make_error(Errc::invalid_layout, "a DMA-BUF heap image is LINEAR, but the layout has modifier {}",
                              modifier_name(layout.modifier));
        }
        const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        const std::uint64_t length = *detail::align_up(required_size(layout), page);  // <= 4 GiB + page
        struct dma_heap_allocation_data request {};
        request.len = length;
        request.fd_flags = O_RDWR | O_CLOEXEC;
        request.heap_flags = 0;  // DMA_HEAP_VALID_HEAP_FLAGS: none are defined
        while (::ioctl(heap_.get(), DMA_HEAP_IOCTL_ALLOC, &request) != 0) {
            if (errno != EINTR) {
                return make_sys_error(errno, "DMA_HEAP_IOCTL_ALLOC of {} bytes from {} for a {}x{} {} image",
                                      length, path_, layout.width, layout.height, format_name(layout.fourcc));
            }
        }
        PlaneFds fds;
        fds[0] = UniqueFd(static_cast<int>(request.fd));
        for (std::size_t i = 1; i < layout.plane_count; ++i) {
            auto copy = fds[0].dup();
            if (!copy) return std::move(copy).error();
            fds[i] = std::move(*copy);
        }
        return DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds));
    }

    const std::string& heap() const noexcept { return options_.heap; }
    const std::string& path() const noexcept { return path_; }  // heap_dir/heap
    std::uint32_t stride_alignment() const noexcept { return options_.stride_alignment; }

private:
    DmaHeapAllocator(Options options, std::string path, UniqueFd heap) noexcept
        : options_(std::move(options)), path_(std::move(path)), heap_(std::move(heap)) {}

    static std::string join(const std::vector<std::string>& names) {
        if (names.empty()) return "none";
        std::string text;
        for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
        return text;
    }

    Options options_;
    std::string path_;
    UniqueFd heap_;
};

}  // namespace texshare
