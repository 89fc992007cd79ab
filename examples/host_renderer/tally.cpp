#include "tally.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "texshare/memfd_allocator.hpp"

namespace host_renderer {

using texshare::Errc;
using texshare::make_error;
using texshare::make_sys_error;
using texshare::Result;
using texshare::UniqueFd;

// Both processes use the page as atomics: lock-free ones work across processes.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

void Tally::Unmap::operator()(Page* page) const noexcept {
    ::munmap(page, sizeof(Page));
}

Result<Tally> Tally::map(UniqueFd fd) {
    void* address = ::mmap(nullptr, sizeof(Page), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (address == MAP_FAILED) return make_sys_error(errno, "mmap of the tally page (fd {})", fd.get());
    Tally tally;
    tally.fd_ = std::move(fd);
    tally.page_.reset(static_cast<Page*>(address));  // zero bytes are zero counts
    return tally;
}

Result<Tally> Tally::create() {
    UniqueFd fd(::memfd_create("host_renderer_tally", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) return make_sys_error(errno, "memfd_create for the tally page");
    if (::ftruncate(fd.get(), sizeof(Page)) != 0) return make_sys_error(errno, "ftruncate of the tally page");
    // Sealed so that neither side can shrink it under the other's mapping (SIGBUS).
    if (::fcntl(fd.get(), F_ADD_SEALS, texshare::memfd_image_seals) != 0) {
        return make_sys_error(errno, "sealing the tally page");
    }
    return map(std::move(fd));
}

Result<Tally> Tally::adopt(int fd) {
    // Checked before it gets an owner: closing a number that was never open would trip
    // texshare's double-close check.
    struct stat info {};
    if (::fstat(fd, &info) != 0)
        return make_sys_error(errno, "tally fd {} (was this started by the host?)", fd);
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (!S_ISREG(info.st_mode) || info.st_size != sizeof(Page) || seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
        return make_error(Errc::invalid_argument, "fd {} is not the host's sealed {}-byte tally page", fd,
                          sizeof(Page));
    }
    UniqueFd owned(fd);
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return make_sys_error(errno, "F_SETFD on tally fd {}", fd);
    return map(std::move(owned));
}

Result<UniqueFd> Tally::dup() const { return fd_.dup(); }

TallyCounts Tally::read() const noexcept {
    return {page_->presented.load(std::memory_order_acquire), page_->released.load(std::memory_order_acquire),
            page_->feedback_presented.load(std::memory_order_acquire),
            page_->feedback_discarded.load(std::memory_order_acquire)};
}

void Tally::set_presented(std::uint64_t count) noexcept {
    page_->presented.store(count, std::memory_order_release);
}
void Tally::set_released(std::uint64_t count) noexcept {
    page_->released.store(count, std::memory_order_release);
}
void Tally::set_feedback(std::uint64_t presented, std::uint64_t discarded) noexcept {
    page_->feedback_presented.store(presented, std::memory_order_release);
    page_->feedback_discarded.store(discarded, std::memory_order_release);
}

}  // namespace host_renderer
