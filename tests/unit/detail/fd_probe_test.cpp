// detail/fd_probe.hpp: which kind of file an fd is, asked without a probe that can block.
#include "texshare/detail/fd_probe.hpp"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "support/fd_count.hpp"
#include "texshare/child_process.hpp"

namespace texshare {
namespace {

using detail::file_facts;
using detail::require_fence_kind;
using detail::require_shm_memfd;

class FdProbeTest : public testing::FdLeakTest {};

UniqueFd sealed_memfd(unsigned flags = MFD_ALLOW_SEALING, unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW) {
    UniqueFd fd(::memfd_create("probe", MFD_CLOEXEC | flags));
    EXPECT_TRUE(fd);
    EXPECT_EQ(::ftruncate(fd.get(), 8192), 0);
    if (seals != 0) {
        EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, seals), 0);
    }
    return fd;
}

TEST_F(FdProbeTest, FactsComeFromStatxAndMatchFstat) {
    UniqueFd memfd = sealed_memfd();
    auto facts = file_facts(memfd.borrow());
    ASSERT_TRUE(facts) << facts.error().message;
    struct stat info {};
    ASSERT_EQ(::fstat(memfd.get(), &info), 0);
    EXPECT_EQ(facts->identity.device, info.st_dev);
    EXPECT_EQ(facts->identity.inode, info.st_ino);
    EXPECT_EQ(facts->size, 8192U);
    EXPECT_EQ(facts->type, static_cast<mode_t>(S_IFREG));
    EXPECT_FALSE(file_facts(BorrowedFd(-1)));
}

// Every memfd lives on one internal shm mount; a tmpfs file of /dev/shm does not.
TEST_F(FdProbeTest, TheShmMountIsLearnedFromAMemfdOfOurOwn) {
    UniqueFd memfd = sealed_memfd();
    EXPECT_EQ(file_facts(memfd.borrow())->identity.device, detail::shm_mount_device());
    auto size = require_shm_memfd(memfd.borrow(), F_SEAL_SHRINK, "plane");
    ASSERT_TRUE(size) << size.error().message;
    EXPECT_EQ(*size, 8192U);
}

TEST_F(FdProbeTest, ShmMemfdRefusalsSayWhatTheFdIs) {
    UniqueFd unsealed = sealed_memfd(MFD_ALLOW_SEALING, 0);
    auto refused = require_shm_memfd(unsealed.borrow(), F_SEAL_SHRINK, "plane");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::rejected);
    EXPECT_NE(refused.error().message.find("plane fd"), std::string::npos) << refused.error().message;
    EXPECT_NE(refused.error().message.find("seals 0x0, missing 0x2"), std::string::npos) << refused.error().message;

    int ends[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
    UniqueFd a(ends[0]), b(ends[1]);
    refused = require_shm_memfd(a.borrow(), F_SEAL_SHRINK, "plane");
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("mode 0140000"), std::string::npos) << refused.error().message;
    EXPECT_NE(refused.error().message.find("no seals (F_GET_SEALS: errno 22"), std::string::npos)
        << refused.error().message;

    UniqueFd huge(::memfd_create("probe-huge", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB));
    if (!huge) GTEST_SKIP() << "no hugetlbfs: memfd_create(MFD_HUGETLB) errno " << errno;
    ASSERT_EQ(::fcntl(huge.get(), F_ADD_SEALS, F_SEAL_SHRINK), 0);
    refused = require_shm_memfd(huge.borrow(), F_SEAL_SHRINK, "plane");
    ASSERT_FALSE(refused) << "a hugetlbfs memfd passed as safe to map";
    EXPECT_NE(refused.error().message.find("magic 0x958458f6 (hugetlbfs)"), std::string::npos)
        << refused.error().message;
    EXPECT_NE(refused.error().message.find("seals 0x2"), std::string::npos) << refused.error().message;
}

// A sync_file shares the one anonymous inode with every anon_inode_getfile() file; an
// eventfd stands in for it on a machine with no sync_file exporter.
TEST_F(FdProbeTest, FenceKindIsTheSharedAnonymousInode) {
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    EXPECT_TRUE(require_fence_kind(event.borrow()));
    auto facts = file_facts(event.borrow());
    ASSERT_TRUE(facts);
    EXPECT_EQ(facts->type, 0U) << "the kernel reports no file type for an anonymous inode";
    EXPECT_TRUE(detail::is_shared_anon_inode(*facts));

    UniqueFd memfd = sealed_memfd();
    auto refused = require_fence_kind(memfd.borrow());
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::rejected);
    EXPECT_NE(refused.error().message.find("is not of a sync_file's kind: mode 0100000"), std::string::npos)
        << refused.error().message;
    int ends[2];
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    UniqueFd read_end(ends[0]), write_end(ends[1]);
    EXPECT_FALSE(require_fence_kind(read_end.borrow()));
    // A file of its own anonymous inode (memfd_secret, a secure userfaultfd) is no fence.
}

// A typed file is never asked for its file system (a statfs could block on FUSE): only an
// anonymous inode is, and an eventfd's magic is not DMA_BUF_MAGIC.
TEST_F(FdProbeTest, DmaBufProbeAsksOnlyAnonymousInodesForTheirMagic) {
    UniqueFd memfd = sealed_memfd();
    auto size = detail::dma_buf_size_if_dma_buf(memfd.borrow());
    ASSERT_TRUE(size);
    EXPECT_FALSE(*size);
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    size = detail::dma_buf_size_if_dma_buf(event.borrow());
    ASSERT_TRUE(size);
    EXPECT_FALSE(*size);
}

// Learning the shm mount and the anonymous inode needs an fd of our own. A process at its
// fd limit cannot make one; that must not refuse every later memfd and fence once fds are
// free again. The memo is per process and an earlier test in this one may have filled it,
// so the check runs in a fresh process: this binary again, with only this test.
TEST_F(FdProbeTest, AFailedLearningIsTriedAgainOnceFdsAreFree) {
    if (std::getenv("TEXSHARE_FD_PROBE_FRESH_PROCESS") == nullptr) {
        ::setenv("TEXSHARE_FD_PROBE_FRESH_PROCESS", "1", 1);
        auto fresh = ChildProcess::spawn("/proc/self/exe",
                                         {"--gtest_filter=FdProbeTest.AFailedLearningIsTriedAgainOnceFdsAreFree"});
        ::unsetenv("TEXSHARE_FD_PROBE_FRESH_PROCESS");
        ASSERT_TRUE(fresh) << fresh.error().message;
        auto status = fresh->wait(std::chrono::seconds(60));
        ASSERT_TRUE(status) << status.error().message;
        EXPECT_TRUE(status->ok()) << "the fresh process's test failed: " << status->describe();
        return;
    }
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        UniqueFd event(::eventfd(0, EFD_CLOEXEC));
        UniqueFd memfd(::memfd_create("peer", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!event || !memfd || ::ftruncate(memfd.get(), 4096) != 0 ||
            ::fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SHRINK) != 0) {
            ::_exit(10);
        }
        rlimit old{};
        ::getrlimit(RLIMIT_NOFILE, &old);
        const rlimit full{static_cast<rlim_t>(std::max(event.get(), memfd.get()) + 1), old.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &full) != 0) ::_exit(11);
        std::vector<UniqueFd> holes;  // any free number below the limit, taken
        for (int fd = ::dup(event.get()); fd >= 0; fd = ::dup(event.get())) holes.emplace_back(fd);
        // At the limit: both probes fail (the kernel has no fd for the memo's own file).
        if (require_fence_kind(event.borrow())) ::_exit(12);
        if (require_shm_memfd(memfd.borrow(), F_SEAL_SHRINK, "plane")) ::_exit(13);
        if (::setrlimit(RLIMIT_NOFILE, &old) != 0) ::_exit(14);
        // Fds free again: the same fds are proven.
        if (!require_fence_kind(event.borrow())) ::_exit(15);
        if (!require_shm_memfd(memfd.borrow(), F_SEAL_SHRINK, "plane")) ::_exit(16);
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10 setup, 11 setrlimit, 12/13 proven at the limit, 14 restore, "
                                         "15 fence refused after, 16 memfd refused after";
}

}  // namespace
}  // namespace texshare
