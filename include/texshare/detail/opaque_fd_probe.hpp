// What a peer's opaque_fd memory fd is: a character device, or what it pretends with. Private
// to texshare; the probes are fd_probe.hpp's, in its order (statx without sync first, then
// only what that answer has shown to be safe), so none blocks on the peer's file.
//
// What is checked: the fd is a character device (statx S_IFCHR). NVIDIA's OPAQUE_FD memory
// fds are fds of /dev/nvidiactl (measured on the H200, driver 580). Everything else is
// refused, naming the kind found: a DMA-BUF (such memory travels as Backing::dma_buf; Mesa's
// anv and radv do make OPAQUE_FD fds that are DMA-BUFs, per their vkGetMemoryFdKHR, but on
// those drivers texshare exports DMA_BUF, never opaque_fd), a memfd (Mesa's lavapipe makes
// its OPAQUE_FD memory a sealed memfd, measured: "/memfd:llvmpipe memory fd"; it would map
// like shared memory, so a peer that labels it opaque_fd is refused, not trusted), another
// regular file (disk, tmpfs, /dev/shm), a pipe or FIFO, a socket, an anonymous-inode file
// (sync_file, eventfd, epoll, timerfd, DRM syncobj), a directory, a block device.
//
// What cannot be checked: that a character device is the driver's memory, and of the size
// and memory type the descriptor claims. Nothing the kernel tells about /dev/nvidiactl
// (or /dev/null, or a tty) says which allocation it names: only the import can tell, and the
// driver refuses a wrong one with VK_ERROR_INVALID_EXTERNAL_HANDLE (VUID-VkImportMemoryFdInfoKHR-
// handleType-00670 makes the wrong handle the application's fault, so texshare::vulkan checks
// the UUIDs, size and type it can first). The device's major number is not checked either:
// it is the driver's (NVIDIA's is 195, "Nvidia graphics devices" in the kernel's
// devices.txt), and texshare does not tie opaque_fd to one vendor.
#pragma once

#include <linux/magic.h>
#include <sys/stat.h>

#include <string>

#include "texshare/detail/fd_probe.hpp"

namespace texshare::detail {

// What kind of file `facts` (of `fd`) describe, for a refusal: "a memfd (a regular file on the
// kernel's shm mount, device 0:1)". fstatfs is asked only of an anonymous inode (type 0).
inline std::string describe_fd_kind(BorrowedFd fd, const FileFacts& facts) {
    const std::string where = device_name(facts.identity.device);
    switch (facts.type) {
        case S_IFCHR:
            return "a character device";
        case S_IFREG: {
            const dev_t shm = shm_mount_device();
            if (shm != device_unlearnable && facts.identity.device == shm) {
                return fmt::format("a memfd (a regular file on the kernel's shm mount, {})", where);
            }
            return fmt::format("a regular file on {} (a disk, tmpfs or /dev/shm file, or a hugetlbfs memfd)",
                               where);
        }
        case S_IFIFO:
            return "a pipe or FIFO";
        case S_IFSOCK:
            return "a socket";
        case S_IFDIR:
            return "a directory";
        case S_IFBLK:
            return "a block device";
        case S_IFLNK:
            return "a symbolic link (an O_PATH fd)";
        case 0: {
            if (is_shared_anon_inode(facts)) {
                return "an anonymous-inode file (a sync_file, eventfd, epoll, timerfd or DRM syncobj)";
            }
            auto magic = file_system_magic(fd);  // a pseudo file system's: simple_statfs, never blocks
            if (magic && *magic == DMA_BUF_MAGIC) return "a DMA-BUF";
            return fmt::format("an anonymous inode on {} (file system magic 0x{:x})", where,
                               magic ? *magic : 0);
        }
        default:
            return fmt::format("a file of mode 0{:o}", facts.type);
    }
}

// Ok when a peer's opaque_fd memory fd is a character device (see above for what that does
// and does not prove); Errc::rejected otherwise, `what` starting the message and the kind
// found ending it. Errc::system where statx fails.
inline Result<void> require_opaque_memory_fd(BorrowedFd fd, std::string_view what) {
    auto facts = file_facts(fd);
    if (!facts) return std::move(facts).error();
    if (facts->type == S_IFCHR) return {};
    return make_error(
        Errc::rejected,
        "{} fd {} is {}, not a character device: a driver's opaque memory fd (NVIDIA's is one of "
        "/dev/nvidiactl) is never a DMA-BUF, memfd, file, pipe, socket or anonymous inode",
        what, fd.get(), describe_fd_kind(fd, *facts));
}

}  // namespace texshare::detail
