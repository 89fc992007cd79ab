#include "kernel_features.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "texshare/memfd_allocator.hpp"
#include "texshare/sync_file.hpp"

namespace texshare::info {
namespace {

Feature from_error(const Error& error) {
    return {error.code == Errc::unsupported ? Outcome::unsupported : Outcome::failed, error.message};
}

}  // namespace

Feature probe_memfd_sealing() {
    auto image = MemfdAllocator().allocate(probe_width, probe_height, DRM_FORMAT_ARGB8888);
    if (!image) return from_error(image.error());
    const int fd = image->plane_fd(0).get();
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0) return {Outcome::failed, fmt::format("fcntl(F_GET_SEALS): {}", std::strerror(errno))};
    if ((static_cast<unsigned>(seals) & memfd_image_seals) != memfd_image_seals) {
        return {Outcome::failed,
                fmt::format("F_GET_SEALS says 0x{:x}, missing some of 0x{:x}", seals, memfd_image_seals)};
    }
    // The seal only matters if the kernel enforces it: a peer must not be able to shrink it.
    if (::ftruncate(fd, 0) == 0) {
        return {Outcome::failed, "ftruncate to 0 succeeded on a memfd sealed with F_SEAL_SHRINK"};
    }
    if (errno != EPERM) {
        return {Outcome::failed,
                fmt::format("ftruncate on a sealed memfd failed with {} (errno {}), not EPERM",
                            std::strerror(errno), errno)};
    }
    return {Outcome::works, "F_SEAL_SHRINK, F_SEAL_GROW and F_SEAL_SEAL set and enforced (ftruncate: EPERM)"};
}

SyncFileFeatures probe_sync_file(const DmaBufImage& image, std::string_view where) {
    SyncFileFeatures features;
    auto fence = export_sync_file(image.plane_fd(0), Access::read);
    if (!fence) {
        features.export_sync_file = from_error(fence.error());
        features.import_sync_file = {Outcome::untested, "needs a fence from DMA_BUF_IOCTL_EXPORT_SYNC_FILE"};
        return features;
    }
    features.export_sync_file = {Outcome::works, fmt::format("on a DMA-BUF from {}", where)};
    if (auto imported = import_sync_file(image.plane_fd(0), fence->borrow(), Access::read); !imported) {
        features.import_sync_file = from_error(imported.error());
    } else {
        features.import_sync_file = {Outcome::works, fmt::format("on a DMA-BUF from {}", where)};
    }
    return features;
}

}  // namespace texshare::info
