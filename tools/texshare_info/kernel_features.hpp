// Kernel features texshare relies on, found out by using them on real fds.
//
// Use these instead of reading the kernel version: a backported or patched kernel, or a
// driver that does not implement an ioctl, makes version numbers lie. Each probe leaves no
// fd behind.
#pragma once

#include "report.hpp"
#include "texshare/dma_buf_image.hpp"

namespace texshare::info {

// memfd_create(MFD_ALLOW_SEALING) + the seals MemfdAllocator adds, then checks they are
// reported (F_GET_SEALS) and enforced (ftruncate must fail with EPERM).
Feature probe_memfd_sealing();

struct SyncFileFeatures {
    Feature export_sync_file;
    Feature import_sync_file;
};

// DMA_BUF_IOCTL_EXPORT_SYNC_FILE on `image`'s first plane, then IMPORT_SYNC_FILE of that
// fence back into it; ENOTTY (a kernel before 6.0) is Outcome::unsupported.
SyncFileFeatures probe_sync_file(const DmaBufImage& image, std::string_view where);

}  // namespace texshare::info
