// Attacks with memory that the seals do not protect: the peer keeps a way to take a page
// away after the host has mapped it, and the host's next read of the frame is SIGBUS.
// A host maps only memfds of the kernel's own shm mount sealed against shrinking
// (detail/fd_probe.hpp require_shm_memfd); these are the other kinds, each refused before
// any mapping exists. The victim is a FrameReceiver (planes) or a FrameSender (the format
// table); the checks are import_image()'s and decode_format_table()'s.
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "hostile/hostile_peer.hpp"

namespace texshare::hostile {
namespace {

constexpr std::size_t huge_page = 2 * 1024 * 1024;

// A memfd on hugetlbfs, `size` bytes, sealed against shrinking, growing and more sealing:
// the renderer's side of the attack. Empty when the kernel has no hugetlbfs.
UniqueFd sealed_hugetlb_memfd(std::size_t size, unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) {
    UniqueFd fd(::memfd_create("hostile-hugetlb", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB));
    if (!fd) return fd;
    EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, seals), 0);
    return fd;
}

// vm.nr_hugepages set for one test and put back after (root only; CI runs as root).
class HugePages {
public:
    explicit HugePages(long wanted) {
        before_ = read();
        if (before_ < 0) return;
        if (!write(wanted)) return;
        ok_ = read() >= wanted;  // the kernel may find fewer free huge pages than asked
    }
    ~HugePages() {
        if (before_ >= 0) (void)write(before_);
    }
    bool ok() const { return ok_; }
    long before() const { return before_; }

private:
    static long read() {
        std::ifstream in("/proc/sys/vm/nr_hugepages");
        long value = -1;
        in >> value;
        return in ? value : -1;
    }
    static bool write(long value) {
        std::ofstream out("/proc/sys/vm/nr_hugepages");
        out << value << '\n';
        out.flush();
        return static_cast<bool>(out);
    }
    long before_ = -1;
    bool ok_ = false;
};

using MemoryAttack = ConsumerUnderAttack;
using MemoryAttackOnProducer = ProducerUnderAttack;

// The attack of the issue: a sealed MFD_HUGETLB memfd as a plane. Refused by its mount,
// naming the magic and the seals it found. Needs no huge page: the memfd is never touched.
TEST_F(MemoryAttack, SealedHugetlbMemfdAsAPlane) {
    UniqueFd memory = sealed_hugetlb_memfd(huge_page);
    if (!memory) GTEST_SKIP() << "memfd_create(MFD_HUGETLB) failed (errno " << errno << "): no hugetlbfs here";
    send(add_image_message(1), 0b1, {memory.get()});
    auto refused = victim_->dispatch();
    ASSERT_FALSE(refused) << "a sealed hugetlbfs memfd was accepted as shared memory";
    testing::expect_error(refused.error(), Errc::rejected, "is not a memfd of the kernel's shm mount");
    testing::expect_error(refused.error(), Errc::rejected, "file system magic 0x958458f6 (hugetlbfs)");
    testing::expect_error(refused.error(), Errc::rejected, "seals 0x7");
    EXPECT_EQ(victim_->image(1), nullptr);
    expect_still_usable();
}

// The whole attack, with real huge pages: the renderer writes its frame into a huge page,
// presents it, punches the page out (hugetlbfs allows it under F_SEAL_SHRINK) and takes
// the pool's last free page, so a reader's fault finds none: SIGBUS. A child process reads
// through its own mapping first, to prove the hazard on this machine; the host never gets
// a mapping, because the image never gets in.
TEST_F(MemoryAttack, HugetlbPunchedHoleNeverReachesAMapping) {
    HugePages pages(1);
    if (pages.before() < 0) GTEST_SKIP() << "cannot read /proc/sys/vm/nr_hugepages";
    if (!pages.ok()) {
        GTEST_SKIP() << "needs one huge page: writing 1 to /proc/sys/vm/nr_hugepages failed or found no free "
                        "2 MiB page (run as root, as CI does)";
    }
    UniqueFd memory = sealed_hugetlb_memfd(huge_page);
    if (!memory) GTEST_SKIP() << "memfd_create(MFD_HUGETLB) failed: no hugetlbfs here";
    void* frame = ::mmap(nullptr, huge_page, PROT_READ | PROT_WRITE, MAP_SHARED, memory.get(), 0);
    ASSERT_NE(frame, MAP_FAILED) << "mmap of the renderer's huge page: errno " << errno;
    std::memset(frame, 0x5a, 4096);  // the frame: takes the pool's one huge page
    ASSERT_EQ(::munmap(frame, huge_page), 0);

    send(add_image_message(1), 0b1, {memory.get()});
    send(make_frame_message(FrameKind::present, 1, 1));
    auto handled = victim_->dispatch();
    ASSERT_FALSE(handled) << "a hugetlbfs memfd was accepted as shared memory";
    testing::expect_error(handled.error(), Errc::rejected, "(hugetlbfs)");
    EXPECT_EQ(victim_->image(1), nullptr);
    auto present = victim_->dispatch();  // the present of the refused image follows it
    ASSERT_FALSE(present);
    testing::expect_error(present.error(), Errc::protocol, "present of image 1, which is unknown");
    EXPECT_FALSE(victim_->current());

    // The renderer punches the page out and takes the free page back with another file.
    ASSERT_EQ(::fallocate(memory.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, huge_page), 0)
        << "hugetlbfs refused the punch under F_SEAL_SHRINK: errno " << errno;
    UniqueFd thief(::memfd_create("hostile-thief", MFD_CLOEXEC | MFD_HUGETLB));
    ASSERT_TRUE(thief);
    ASSERT_EQ(::ftruncate(thief.get(), huge_page), 0);
    void* stolen = ::mmap(nullptr, huge_page, PROT_READ | PROT_WRITE, MAP_SHARED, thief.get(), 0);
    ASSERT_NE(stolen, MAP_FAILED);
    static_cast<volatile char*>(stolen)[0] = 1;

    // What a host that had mapped it would suffer (in a child: it dies of it).
    void* reader = ::mmap(nullptr, huge_page, PROT_READ, MAP_SHARED, memory.get(), 0);
    if (reader != MAP_FAILED) {
        const pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            volatile char byte = static_cast<volatile char*>(reader)[0];
            (void)byte;
            ::_exit(0);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
            << "a reader of the punched hugetlbfs page was expected to die of SIGBUS (status " << status << ")";
        ::munmap(reader, huge_page);
    }  // (a kernel that refuses the mapping outright, ENOMEM for no free page, is as safe)
    ::munmap(stolen, huge_page);
    expect_still_usable();
}

// A sealed memfd, but with F_SEAL_WRITE too: a peer can still not punch it (write seal),
// yet it is on hugetlbfs: refused all the same, by the mount, not the seals.
TEST_F(MemoryAttack, HugetlbMemfdSealedEvenAgainstWrites) {
    UniqueFd memory = sealed_hugetlb_memfd(huge_page, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    if (!memory) GTEST_SKIP() << "memfd_create(MFD_HUGETLB) failed: no hugetlbfs here";
    send(add_image_message(1), 0b1, {memory.get()});
    expect_refused(Errc::rejected, "(hugetlbfs)");
    expect_still_usable();
}

// A tmpfs file of /dev/shm: tmpfs, but not the memfd mount, unsealable (F_SEAL_SEAL from
// birth), truncatable by its owner, and on a mount with a size limit (a fault after a
// punched hole on a full mount is SIGBUS).
TEST_F(MemoryAttack, TmpfsFileFromDevShm) {
    const std::string path = fmt::format("/dev/shm/texshare-hostile-{}", ::getpid());
    UniqueFd file(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!file) GTEST_SKIP() << "no /dev/shm to make a tmpfs file in (errno " << errno << ")";
    ::unlink(path.c_str());
    ASSERT_EQ(::ftruncate(file.get(), 4096), 0);
    send(add_image_message(1), 0b1, {file.get()});
    expect_refused(Errc::rejected, "(tmpfs, but not the kernel's memfd mount)");
    expect_still_usable();
}

TEST_F(MemoryAttack, MemfdWithoutSeals) {
    UniqueFd memory(::memfd_create("hostile-unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    ASSERT_EQ(::ftruncate(memory.get(), 4096), 0);
    send(add_image_message(1), 0b1, {memory.get()});
    expect_refused(Errc::rejected, "is a memfd with seals 0x0, missing 0x2");
    expect_still_usable();
}

TEST_F(MemoryAttack, MemfdThatCannotBeSealed) {
    UniqueFd memory(::memfd_create("hostile-no-sealing", MFD_CLOEXEC));  // F_SEAL_SEAL from birth
    ASSERT_EQ(::ftruncate(memory.get(), 4096), 0);
    send(add_image_message(1), 0b1, {memory.get()});
    expect_refused(Errc::rejected, "is a memfd with seals 0x1, missing 0x2");
    expect_still_usable();
}

// A file on a real disk file system, opened read-write: its owner truncates it at will.
// Refused without asking its file system anything (statfs could block on FUSE or NFS).
TEST_F(MemoryAttack, DiskFileOpenedReadWrite) {
    const std::string path = fmt::format("texshare-hostile-disk-{}", ::getpid());  // in ctest's build dir
    UniqueFd file(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    ASSERT_TRUE(file) << "open " << path << ": errno " << errno;
    ::unlink(path.c_str());
    ASSERT_EQ(::ftruncate(file.get(), 4096), 0);
    send(add_image_message(1), 0b1, {file.get()});
    expect_refused(Errc::rejected, "no seals (F_GET_SEALS: errno 22");
    expect_still_usable();
}

// The same memory as the format table a consumer advertises: a producer reads it (pread),
// and it must be of the same safe kind.
TEST_F(MemoryAttackOnProducer, FormatTableOnHugetlbfs) {
    UniqueFd memory =
        sealed_hugetlb_memfd(huge_page, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    if (!memory) GTEST_SKIP() << "memfd_create(MFD_HUGETLB) failed: no hugetlbfs here";
    send(make_frame_message(FrameKind::capabilities, 0), 0b1, {memory.get()});
    expect_refused(Errc::rejected, "format table fd");
    EXPECT_EQ(victim_->peer_formats(), nullptr);
    expect_still_usable();
}

TEST_F(MemoryAttackOnProducer, FormatTableInATmpfsFile) {
    const std::string path = fmt::format("/dev/shm/texshare-hostile-table-{}", ::getpid());
    UniqueFd file(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!file) GTEST_SKIP() << "no /dev/shm to make a tmpfs file in (errno " << errno << ")";
    ::unlink(path.c_str());
    auto table = encode_format_table(FormatTable{});
    ASSERT_TRUE(table);
    char bytes[64];
    const ssize_t n = ::pread(table->get(), bytes, sizeof bytes, 0);
    ASSERT_GT(n, 0);
    ASSERT_EQ(::write(file.get(), bytes, static_cast<std::size_t>(n)), n);
    send(make_frame_message(FrameKind::capabilities, 0), 0b1, {file.get()});
    expect_refused(Errc::rejected, "is not a memfd of the kernel's shm mount");
    EXPECT_EQ(victim_->peer_formats(), nullptr);
    expect_still_usable();
}

}  // namespace
}  // namespace texshare::hostile
