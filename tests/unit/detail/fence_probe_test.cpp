// detail/fence_probe.hpp: what each fence kind's fd may be (one statx), the accepted-kinds
// check, and that a fence nobody took is closed (at once for a sync_file, off the thread for
// any other kind).
#include "texshare/detail/fence_probe.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "support/fd_count.hpp"

namespace texshare::detail {
namespace {

constexpr auto sync_file = static_cast<std::uint8_t>(FenceKind::sync_file);
constexpr auto opaque = static_cast<std::uint8_t>(FenceKind::vulkan_opaque_semaphore);
const FenceKindSet both = FenceKind::sync_file | FenceKind::vulkan_opaque_semaphore;

UniqueFd pipe_end() {
    int ends[2] = {-1, -1};
    EXPECT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    ::close(ends[1]);
    return UniqueFd(ends[0]);
}

void expect_refused(Result<void> result, const std::string& needle) {
    ASSERT_FALSE(result) << "accepted; expected: " << needle;
    EXPECT_EQ(result.error().code, Errc::rejected);
    EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
}

class FenceProbeTest : public testing::FdLeakTest {};

TEST_F(FenceProbeTest, ASyncFileIsTheAnonymousInodeAsBefore) {
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    EXPECT_TRUE(require_fence(event.borrow(), sync_file, both));
    expect_refused(require_fence(null.borrow(), sync_file, both), "is not of a sync_file's kind");
    expect_refused(require_fence(pipe_end().borrow(), sync_file, both), "is not of a sync_file's kind");
}

// A timeline's fd must be a DRM syncobj: the anonymous inode is not enough (an eventfd shares
// it), its name must be anon_inode:syncobj_file. The accepting case needs a DRM device with
// syncobjs: tests/hostile/timeline_attacks_test.cpp in the VM lane's 6.12 guest.
TEST_F(FenceProbeTest, ATimelineFdMustBeNamedASyncobj) {
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    expect_refused(require_syncobj_fd(event.borrow()),
                   fmt::format("timeline fd {} is anon_inode:[eventfd], not a DRM syncobj (anon_inode:syncobj_file)",
                               event.get()));
    expect_refused(require_syncobj_fd(null.borrow()), "is not a DRM syncobj");
    expect_refused(require_syncobj_fd(pipe_end().borrow()), "is not a DRM syncobj");
    expect_refused(require_fence(event.borrow(), static_cast<std::uint8_t>(FenceKind::drm_syncobj_timeline), both),
                   "a fence of kind drm_syncobj_timeline, which this side does not accept");
}

TEST_F(FenceProbeTest, AnOpaqueSemaphoreIsACharacterDeviceOrTheAnonymousInode) {
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    EXPECT_TRUE(require_fence(null.borrow(), opaque, both)) << "NVIDIA's: /dev/nvidiactl, a character device";
    EXPECT_TRUE(require_fence(event.borrow(), opaque, both)) << "Mesa's hardware drivers': a DRM syncobj";
    expect_refused(require_fence(pipe_end().borrow(), opaque, both), "is a pipe");
    UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    expect_refused(require_fence(socket.borrow(), opaque, both), "is a socket");
    UniqueFd memfd(::memfd_create("x", MFD_CLOEXEC));
    expect_refused(require_fence(memfd.borrow(), opaque, both), "is a memfd");
    UniqueFd file(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    ASSERT_TRUE(file.valid());
    expect_refused(require_fence(file.borrow(), opaque, both), "is a regular file");
    UniqueFd directory(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    expect_refused(require_fence(directory.borrow(), opaque, both), "is a directory");
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));
    ASSERT_TRUE(pidfd.valid());
    if (file_facts(pidfd.borrow())->identity !=
        shared_anon_inode()) {  // pidfs (Linux 6.9+): a DMA-BUF's case
        expect_refused(require_fence(pidfd.borrow(), opaque, both),
                       "an anonymous inode of another pseudo file system");
    }
}

TEST_F(FenceProbeTest, AKindNotAcceptedIsRefusedBeforeTheFdIsLookedAt) {
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    expect_refused(
        require_fence(null.borrow(), opaque, default_fence_kinds),
        "a fence of kind vulkan_opaque_semaphore, which this side does not accept (accepted: sync_file)");
    expect_refused(require_fence(null.borrow(), sync_file, FenceKind::vulkan_opaque_semaphore),
                   "(accepted: vulkan_opaque_semaphore)");
    expect_refused(require_fence(null.borrow(), sync_file, FenceKindSet()), "(accepted: none)");
}

TEST_F(FenceProbeTest, AFenceNobodyTookIsClosed) {
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    drop_fence(event, FenceKind::sync_file);
    EXPECT_FALSE(event.valid());
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    drop_fence(null, FenceKind::vulkan_opaque_semaphore);
    EXPECT_FALSE(null.valid());
    EXPECT_TRUE(drain_peer_fd_closes(std::chrono::seconds(10)));  // the fixture counts fds next
}

}  // namespace
}  // namespace texshare::detail
