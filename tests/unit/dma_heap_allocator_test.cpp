#include "texshare/dma_heap_allocator.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "support/fd_count.hpp"

// This host's kernel has no DMA-BUF heaps: here every path that needs no heap is tested
// (missing directory or heap, listing, refused options and layouts, a "heap" whose ioctl
// refuses). Real allocations are tested in the 6.12 guest (tests/vm/dma_heap_vm_test.cpp).
namespace texshare {
namespace {

using DmaHeapAllocatorTest = testing::FdLeakTest;

// A temporary directory with the given empty files in it, removed at the end of the test.
class FakeHeapDir {
public:
    explicit FakeHeapDir(std::initializer_list<const char*> names) {
        char pattern[] = "/tmp/texshare-heaps-XXXXXX";
        path_ = ::mkdtemp(pattern);
        for (const char* name : names) {
            const std::string file = path_ + "/" + name;
            const int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
            EXPECT_GE(fd, 0) << file;
            ::close(fd);
            names_.emplace_back(file);
        }
    }
    ~FakeHeapDir() {
        for (const auto& file : names_) ::unlink(file.c_str());
        ::rmdir(path_.c_str());
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::vector<std::string> names_;
};

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

TEST_F(DmaHeapAllocatorTest, MissingHeapDirIsUnsupportedWithErrno) {
    auto allocator = DmaHeapAllocator::open({.heap = "system", .heap_dir = "/nonexistent/texshare-dma_heap"});
    ASSERT_FALSE(allocator);
    EXPECT_EQ(allocator.error().code, Errc::unsupported);
    EXPECT_EQ(allocator.error().sys_errno, ENOENT);
    EXPECT_TRUE(contains(allocator.error().message, "/nonexistent/texshare-dma_heap is missing"))
        << allocator.error().message;
    EXPECT_TRUE(contains(allocator.error().message, "CONFIG_DMABUF_HEAPS")) << allocator.error().message;
    EXPECT_TRUE(contains(allocator.error().message, "errno 2")) << allocator.error().message;
}

TEST_F(DmaHeapAllocatorTest, MissingHeapNamesTheHeapsThere) {
    FakeHeapDir dir({"reserved", "cma"});
    auto allocator = DmaHeapAllocator::open({.heap = "system", .heap_dir = dir.path()});
    ASSERT_FALSE(allocator);
    EXPECT_EQ(allocator.error().code, Errc::unsupported);
    EXPECT_EQ(allocator.error().sys_errno, ENOENT);
    EXPECT_TRUE(contains(allocator.error().message, dir.path() + "/system")) << allocator.error().message;
    EXPECT_TRUE(contains(allocator.error().message, "heaps in " + dir.path() + ": cma, reserved"))
        << allocator.error().message;
}

TEST_F(DmaHeapAllocatorTest, ListHeapsOfAMissingDirIsUnsupported) {
    auto heaps = DmaHeapAllocator::list_heaps("/nonexistent/texshare-dma_heap");
    ASSERT_FALSE(heaps);
    EXPECT_EQ(heaps.error().code, Errc::unsupported);
    EXPECT_EQ(heaps.error().sys_errno, ENOENT);
}

TEST_F(DmaHeapAllocatorTest, ListHeapsGivesTheEntriesSorted) {
    FakeHeapDir dir({"system", "cma", "reserved"});
    auto heaps = DmaHeapAllocator::list_heaps(dir.path());
    ASSERT_TRUE(heaps) << heaps.error().message;
    EXPECT_EQ(*heaps, (std::vector<std::string>{"cma", "reserved", "system"}));
    FakeHeapDir empty({});
    auto none = DmaHeapAllocator::list_heaps(empty.path());
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
}

TEST_F(DmaHeapAllocatorTest, RefusesStrideAlignmentsThatAreNotPowersOfTwoOfAtLeast64) {
    for (std::uint32_t alignment : {0U, 1U, 32U, 48U, 100U, 192U}) {
        auto allocator = DmaHeapAllocator::open({.heap = "null", .heap_dir = "/dev", .stride_alignment = alignment});
        ASSERT_FALSE(allocator) << alignment;
        EXPECT_EQ(allocator.error().code, Errc::invalid_argument) << alignment;
        EXPECT_TRUE(contains(allocator.error().message, fmt::format("stride alignment {} ", alignment)))
            << allocator.error().message;
    }
    for (std::uint32_t alignment : {64U, 256U, 4096U}) {
        auto allocator = DmaHeapAllocator::open({.heap = "null", .heap_dir = "/dev", .stride_alignment = alignment});
        ASSERT_TRUE(allocator) << alignment << ": " << allocator.error().message;
        EXPECT_EQ(allocator->stride_alignment(), alignment);
    }
}

TEST_F(DmaHeapAllocatorTest, RefusesHeapNamesThatAreNotOneFileName) {
    for (const char* name : {"", ".", "..", "../dma_heap/system", "a/b"}) {
        auto allocator = DmaHeapAllocator::open({.heap = name});
        ASSERT_FALSE(allocator) << name;
        EXPECT_EQ(allocator.error().code, Errc::invalid_argument) << allocator.error().message;
    }
}

TEST_F(DmaHeapAllocatorTest, RefusesAHeapThatIsNoCharacterDevice) {
    FakeHeapDir dir({"system"});
    auto allocator = DmaHeapAllocator::open({.heap = "system", .heap_dir = dir.path()});
    ASSERT_FALSE(allocator);
    EXPECT_EQ(allocator.error().code, Errc::unsupported);
    EXPECT_TRUE(contains(allocator.error().message, "not a character device")) << allocator.error().message;
}

// /dev/null stands in for a heap that refuses: the ioctl fails (ENOTTY) and the error names
// the ioctl, the length, the heap's path and the errno, without leaking an fd.
TEST_F(DmaHeapAllocatorTest, HeapRefusalNamesTheErrno) {
    auto allocator = DmaHeapAllocator::open({.heap = "null", .heap_dir = "/dev"});
    ASSERT_TRUE(allocator) << allocator.error().message;
    EXPECT_EQ(allocator->heap(), "null");
    EXPECT_EQ(allocator->path(), "/dev/null");
    auto image = allocator->allocate(100, 20, DRM_FORMAT_ARGB8888);
    ASSERT_FALSE(image);
    EXPECT_EQ(image.error().code, Errc::system);
    EXPECT_EQ(image.error().sys_errno, ENOTTY);
    // 100 pixels * 4 bytes = 400, padded to 512; 20 rows = 10240 bytes, rounded to pages.
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t length = (512U * 20U + page - 1) / page * page;
    EXPECT_TRUE(contains(image.error().message, fmt::format("DMA_HEAP_IOCTL_ALLOC of {} bytes from /dev/null", length)))
        << image.error().message;
    EXPECT_TRUE(contains(image.error().message, "errno 25")) << image.error().message;
}

TEST_F(DmaHeapAllocatorTest, RefusesNonLinearAndInvalidLayoutsBeforeTheIoctl) {
    auto allocator = DmaHeapAllocator::open({.heap = "null", .heap_dir = "/dev"});
    ASSERT_TRUE(allocator);
    ImageLayout tiled = *make_packed_layout(DRM_FORMAT_ARGB8888, 64, 64, 256);
    tiled.modifier = I915_FORMAT_MOD_X_TILED;
    auto refused = allocator->allocate(tiled);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_layout);
    EXPECT_TRUE(contains(refused.error().message, "LINEAR")) << refused.error().message;
    ImageLayout implicit = *make_packed_layout(DRM_FORMAT_ARGB8888, 64, 64, 256);
    implicit.modifier = DRM_FORMAT_MOD_INVALID;
    EXPECT_EQ(allocator->allocate(implicit).error().code, Errc::invalid_layout);
    ImageLayout narrow = *make_packed_layout(DRM_FORMAT_ARGB8888, 64, 64, 256);
    narrow.planes[0].stride = 100;
    EXPECT_EQ(allocator->allocate(narrow).error().code, Errc::invalid_layout);
    EXPECT_EQ(allocator->allocate(0, 10, DRM_FORMAT_ARGB8888).error().code, Errc::invalid_layout);
    EXPECT_EQ(allocator->allocate(10, 10, 0x11111111).error().code, Errc::unsupported);
}

TEST_F(DmaHeapAllocatorTest, DefaultsAreTheSystemHeapWith256ByteRows) {
    const DmaHeapAllocator::Options options;
    EXPECT_EQ(options.heap, "system");
    EXPECT_EQ(options.heap_dir, "/dev/dma_heap");
    EXPECT_EQ(options.stride_alignment, 256U);
}

TEST_F(DmaHeapAllocatorTest, IsMovableAndOwnsItsFd) {
    const int before = testing::open_fd_count();
    {
        auto allocator = DmaHeapAllocator::open({.heap = "null", .heap_dir = "/dev"});
        ASSERT_TRUE(allocator);
        EXPECT_EQ(testing::open_fd_count(), before + 1);
        DmaHeapAllocator moved = std::move(*allocator);
        EXPECT_EQ(moved.heap(), "null");
        EXPECT_EQ(testing::open_fd_count(), before + 1);
    }
    EXPECT_EQ(testing::open_fd_count(), before);
}

}  // namespace
}  // namespace texshare
