// UdmabufDevice: turn a shared-memory image (sealed memfd) into a DMA-BUF of the same pages.
//
// Use it where a CPU renders into shared memory (MemfdAllocator) and a GPU API must import
// the pixels without a copy: EGL and Vulkan import DMA-BUFs, never memfds. The kernel's
// udmabuf device (/dev/udmabuf, CONFIG_UDMABUF, Linux 4.20; QEMU hands guest pixels to a
// GPU this way) pins the memfd's pages and exports them as a DMA-BUF: a later write through
// the memfd shows through it, nothing is copied. Either side can convert: a producer that
// allocates shared memory and hands out DMA-BUFs, or a consumer that received a
// shared-memory image (the conversion is per image: do it once, keep it with the import).
//
// What the kernel demands (drivers/dma-buf/udmabuf.c, checked here first so a refusal names
// the reason instead of a bare EINVAL): the file is a memfd (shmem; texshare also refuses a
// MFD_HUGETLB one, see detail/fd_probe.hpp require_shm_memfd) sealed with F_SEAL_SHRINK
// (the pinned pages must not be truncated away) and without F_SEAL_WRITE (the DMA-BUF is
// writable; F_SEAL_FUTURE_WRITE too since "udmabuf: also check for F_SEAL_FUTURE_WRITE"
// (6.13, backported: bookworm-backports' 6.12.95 answers EINVAL, measured in the VM lane),
// refused here on every kernel); offset and size page-aligned. MemfdAllocator's images meet all of it (their sizes are whole pages).
// The module's own limits (size_limit_mb, 64 MiB by default; list_limit) are the kernel's
// to enforce: its EINVAL is reported with the limit read from /sys/module/udmabuf.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <fcntl.h>
#include <linux/udmabuf.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "texshare/detail/fd_probe.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/image_layout.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

class UdmabufDevice {
public:
    // Opens the udmabuf device (read-write, close-on-exec; this object owns the fd).
    // Errc::unsupported with the errno where it is missing (ENOENT: a kernel without
    // CONFIG_UDMABUF) or cannot be opened (EACCES: not in the group that owns it);
    // Errc::unsupported for a path that is no character device.
    static Result<UdmabufDevice> open(std::string path = "/dev/udmabuf") {
        UniqueFd device(::open(path.c_str(), O_RDWR | O_CLOEXEC));
        if (!device) {
            const int err = errno;
            return make_sys_error_as(Errc::unsupported, err, "open udmabuf device {}{}", path,
                                     err == ENOENT ? " (a kernel without CONFIG_UDMABUF, or before 4.20)" : "");
        }
        struct stat info {};
        if (::fstat(device.get(), &info) != 0) return make_sys_error(errno, "fstat of udmabuf device {}", path);
        if (!S_ISCHR(info.st_mode)) {
            return make_error(Errc::unsupported, "{} is not a udmabuf device: not a character device (mode 0{:o})",
                              path, info.st_mode & S_IFMT);
        }
        return UdmabufDevice(std::move(path), std::move(device));
    }

    // Whether convert() can turn `image` into a DMA-BUF, checked without the device (so a
    // caller can ask before opening it, and tests can run on kernels without udmabuf).
    // Ok, or Errc::invalid_argument naming the plane, the fd and the failed rule: not a
    // shared_memory image; a plane's fd not a memfd of the kernel's shm mount; its seals
    // (printed) lacking F_SEAL_SHRINK or holding F_SEAL_WRITE / F_SEAL_FUTURE_WRITE; its size
    // zero or not a multiple of the page size; a plane past the memfd's end.
    static Result<void> check_convertible(const DmaBufImage& image) {
        if (image.backing() != Backing::shared_memory || image.empty()) {
            return make_error(Errc::invalid_argument, "udmabuf: converts a shared_memory image, got a {} image{}",
                              to_string(image.backing()), image.empty() ? " without planes" : "");
        }
        const ImageLayout& layout = image.layout();
        const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        for (std::size_t i = 0; i < layout.plane_count; ++i) {
            const BorrowedFd fd = image.plane_fd(i);
            const auto what = fmt::format("udmabuf: plane {}", i);
            auto size = detail::require_shm_memfd(fd, 0, what);
            if (!size) return make_error(Errc::invalid_argument, "{}", size.error().message);
            auto seals = detail::memfd_seals(fd);
            if (!seals) return std::move(seals).error();
            if ((*seals & F_SEAL_SHRINK) == 0) {
                return make_error(Errc::invalid_argument,
                                  "udmabuf: plane {} memfd (fd {}) has seals {} without F_SEAL_SHRINK: the kernel "
                                  "refuses to pin pages its owner could truncate away",
                                  i, fd.get(), seal_names(*seals));
            }
            if ((*seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0) {
                return make_error(Errc::invalid_argument,
                                  "udmabuf: plane {} memfd (fd {}) has seals {}: a write-sealed memfd cannot back "
                                  "a writable DMA-BUF",
                                  i, fd.get(), seal_names(*seals));
            }
            if (*size == 0 || *size % page != 0) {
                return make_error(Errc::invalid_argument,
                                  "udmabuf: plane {} memfd (fd {}) holds {} bytes, not a whole number of {}-byte "
                                  "pages (MemfdAllocator's images are)",
                                  i, fd.get(), *size, page);
            }
            if (plane_end(layout, i) > *size) {
                return make_error(Errc::invalid_argument, "udmabuf: plane {} ends at byte {}, past its memfd's {} bytes",
                                  i, plane_end(layout, i), *size);
            }
        }
        return {};
    }

    // A dma_buf image of the same pages as `shared_memory_image` (whose fds stay the
    // caller's, untouched): same width, height, format, strides, LINEAR. Planes in one
    // memfd (MemfdAllocator's) become one DMA-BUF with the same offsets (UDMABUF_CREATE of
    // the whole memfd); planes in several memfds become one DMA-BUF of the memfds one after
    // another (UDMABUF_CREATE_LIST), each plane's offset moved by where its memfd starts.
    // The new image owns its DMA-BUF (close-on-exec), one duplicate per plane.
    // Errors: check_convertible's; Errc::system with the errno where the kernel refuses
    // (EINVAL past the module's size_limit_mb, named in the message; ENOMEM).
    Result<DmaBufImage> convert(const DmaBufImage& shared_memory_image) const {
        if (auto ok = check_convertible(shared_memory_image); !ok) return std::move(ok).error();
        const ImageLayout& source = shared_memory_image.layout();
        ImageLayout layout = source;
        // The distinct memfds in plane order, and where each starts in the new DMA-BUF.
        std::array<detail::FileIdentity, max_planes> files{};
        std::array<udmabuf_create_item, max_planes> items{};
        std::array<std::uint64_t, max_planes> starts{};
        std::uint32_t count = 0;
        std::uint64_t total = 0;
        for (std::size_t i = 0; i < source.plane_count; ++i) {
            const BorrowedFd fd = shared_memory_image.plane_fd(i);
            auto facts = detail::file_facts(fd);
            if (!facts) return std::move(facts).error();
            std::uint32_t k = 0;
            while (k < count && files[k] != facts->identity) ++k;
            if (k == count) {
                files[k] = facts->identity;
                items[k] = udmabuf_create_item{static_cast<std::uint32_t>(fd.get()), 0, 0, facts->size};
                starts[k] = total;
                total += facts->size;
                ++count;
            }
            layout.planes[i].offset = source.planes[i].offset + starts[k];
        }
        int created = -1;
        if (count == 1) {
            udmabuf_create request{items[0].memfd, UDMABUF_FLAGS_CLOEXEC, 0, items[0].size};
            created = ioctl_retrying(UDMABUF_CREATE, &request);
        } else {
            // udmabuf_create_list ends in a flexible array: the header, then `count` items.
            alignas(udmabuf_create_list) std::array<std::byte, sizeof(udmabuf_create_list) +
                                                                   max_planes * sizeof(udmabuf_create_item)> list{};
            // Its header is __u32 flags, __u32 count; written field by field (no object of a
            // struct with a flexible array is made).
            static_assert(sizeof(udmabuf_create_list) == 2 * sizeof(std::uint32_t));
            const std::uint32_t flags = UDMABUF_FLAGS_CLOEXEC;
            std::memcpy(list.data(), &flags, sizeof(flags));
            std::memcpy(list.data() + sizeof(flags), &count, sizeof(count));
            std::memcpy(list.data() + sizeof(udmabuf_create_list), items.data(), count * sizeof(udmabuf_create_item));
            created = ioctl_retrying(UDMABUF_CREATE_LIST, list.data());
        }
        if (created < 0) {
            const int err = errno;
            return make_sys_error(err, "{} of {} memfd(s), {} bytes, on {} (module limit: {})",
                                  count == 1 ? "UDMABUF_CREATE" : "UDMABUF_CREATE_LIST", count, total, path_,
                                  size_limit());
        }
        PlaneFds fds;
        fds[0] = UniqueFd(created);
        for (std::size_t i = 1; i < layout.plane_count; ++i) {
            auto copy = fds[0].dup();
            if (!copy) return std::move(copy).error();
            fds[i] = std::move(*copy);
        }
        return DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds));
    }

    const std::string& path() const noexcept { return path_; }

    // "F_SEAL_SHRINK|F_SEAL_GROW (0x6)": a seal set as the kernel's names, for messages.
    static std::string seal_names(unsigned seals) {
        static constexpr std::array<std::pair<unsigned, const char*>, 5> names{{{F_SEAL_SEAL, "F_SEAL_SEAL"},
                                                                               {F_SEAL_SHRINK, "F_SEAL_SHRINK"},
                                                                               {F_SEAL_GROW, "F_SEAL_GROW"},
                                                                               {F_SEAL_WRITE, "F_SEAL_WRITE"},
                                                                               {F_SEAL_FUTURE_WRITE,
                                                                                "F_SEAL_FUTURE_WRITE"}}};
        std::string text;
        for (const auto& [bit, name] : names) {
            if ((seals & bit) == 0) continue;
            if (!text.empty()) text += '|';  // appends, not operator+: GCC 12 -O3 -Wrestrict false positive
            text += name;
        }
        return fmt::format("{} (0x{:x})", text.empty() ? "none" : text, seals);
    }

private:
    UdmabufDevice(std::string path, UniqueFd device) noexcept : path_(std::move(path)), device_(std::move(device)) {}

    int ioctl_retrying(unsigned long request, void* argument) const {
        int result = -1;
        do {
            result = ::ioctl(device_.get(), request, argument);
        } while (result < 0 && errno == EINTR);
        return result;
    }

    // The module's size_limit_mb as text ("64 MiB per buffer"), or why it is unknown.
    static std::string size_limit() {
        std::FILE* file = std::fopen("/sys/module/udmabuf/parameters/size_limit_mb", "re");
        if (file == nullptr) return "size_limit_mb unreadable";
        unsigned long megabytes = 0;
        const bool read = std::fscanf(file, "%lu", &megabytes) == 1;
        std::fclose(file);
        return read ? fmt::format("{} MiB per buffer", megabytes) : "size_limit_mb unreadable";
    }

    std::string path_;
    UniqueFd device_;
};

}  // namespace texshare
