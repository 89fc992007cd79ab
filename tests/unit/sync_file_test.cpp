// The host lane has no DMA-BUF exporter, so this checks the fallback contract: fds that
// cannot carry fences answer Errc::unsupported, never a bogus fence fd. The real fences are
// exercised in the VM lane (tests/vm/gbm_vm_test.cpp).
#include "texshare/sync_file.hpp"

#include <sys/mman.h>

#include "support/fd_count.hpp"

namespace texshare {
namespace {

using SyncFileTest = testing::FdLeakTest;

TEST_F(SyncFileTest, ExportFromANonDmaBufIsUnsupported) {
    UniqueFd memfd(::memfd_create("not-a-dma-buf", MFD_CLOEXEC));
    auto fence = export_sync_file(memfd.borrow(), Access::read);
    ASSERT_FALSE(fence);
    EXPECT_EQ(fence.error().code, Errc::unsupported);
    EXPECT_EQ(fence.error().sys_errno, ENOTTY);
    EXPECT_NE(fence.error().message.find("DMA_BUF_IOCTL_EXPORT_SYNC_FILE"), std::string::npos);
}

TEST_F(SyncFileTest, ImportIntoANonDmaBufIsUnsupported) {
    UniqueFd memfd(::memfd_create("not-a-dma-buf", MFD_CLOEXEC));
    UniqueFd other(::memfd_create("not-a-fence", MFD_CLOEXEC));
    auto imported = import_sync_file(memfd.borrow(), other.borrow(), Access::write);
    ASSERT_FALSE(imported);
    EXPECT_EQ(imported.error().code, Errc::unsupported);
}

TEST_F(SyncFileTest, ImportWithoutAFenceIsAnError) {
    UniqueFd memfd(::memfd_create("x", MFD_CLOEXEC));
    EXPECT_EQ(import_sync_file(memfd.borrow(), BorrowedFd(), Access::read).error().code, Errc::invalid_argument);
}

TEST_F(SyncFileTest, ClosedFdIsASystemError) {
    auto fence = export_sync_file(BorrowedFd(999999), Access::read);
    ASSERT_FALSE(fence);
    EXPECT_EQ(fence.error().sys_errno, EBADF);
    EXPECT_EQ(fence.error().code, Errc::system);
}

}  // namespace
}  // namespace texshare
