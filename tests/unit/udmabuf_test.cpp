#include "texshare/udmabuf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "support/fd_count.hpp"
#include "texshare/memfd_allocator.hpp"

// This host's kernel has no udmabuf: here every refusal check_convertible() makes before
// the ioctl is tested, and /dev/null stands in for a device whose ioctl refuses. Real
// conversions are tested in the 6.12 guest (tests/vm/udmabuf_vm_test.cpp).
namespace texshare {
namespace {

using UdmabufTest = testing::FdLeakTest;

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

std::uint64_t page_size() { return static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)); }

// A memfd of `size` bytes with exactly `seals` (sealing allowed unless F_SEAL_SEAL is among them).
UniqueFd sealed_memfd(std::uint64_t size, unsigned seals) {
    UniqueFd fd(::memfd_create("udmabuf-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    if (seals != 0) {
        EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, seals), 0) << seals;
    }
    return fd;
}

// A shared_memory ARGB8888 image of 64x64 (16 KiB) on `fd`.
DmaBufImage image_on(UniqueFd fd) {
    PlaneFds fds;
    fds[0] = std::move(fd);
    auto image = DmaBufImage::adopt(*make_packed_layout(DRM_FORMAT_ARGB8888, 64, 64), Backing::shared_memory,
                                    std::move(fds));
    EXPECT_TRUE(image) << image.error().message;
    return std::move(*image);
}

TEST_F(UdmabufTest, OpenOfAMissingDeviceIsUnsupportedWithErrno) {
    auto device = UdmabufDevice::open("/nonexistent/udmabuf");
    ASSERT_FALSE(device);
    EXPECT_EQ(device.error().code, Errc::unsupported);
    EXPECT_EQ(device.error().sys_errno, ENOENT);
    EXPECT_TRUE(contains(device.error().message, "/nonexistent/udmabuf")) << device.error().message;
    EXPECT_TRUE(contains(device.error().message, "CONFIG_UDMABUF")) << device.error().message;
}

TEST_F(UdmabufTest, OpenRefusesAFileThatIsNoCharacterDevice) {
    char path[] = "/tmp/texshare-udmabuf-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    auto device = UdmabufDevice::open(path);
    ::unlink(path);
    ASSERT_FALSE(device);
    EXPECT_EQ(device.error().code, Errc::unsupported);
    EXPECT_TRUE(contains(device.error().message, "not a character device")) << device.error().message;
}

TEST_F(UdmabufTest, EveryMemfdAllocatorImageIsConvertible) {
    const MemfdAllocator allocator;
    for (auto [width, height, fourcc] : {std::tuple{1U, 1U, DRM_FORMAT_ARGB8888}, {100U, 20U, DRM_FORMAT_XRGB8888},
                                         {1920U, 1080U, DRM_FORMAT_ARGB8888}, {33U, 17U, DRM_FORMAT_NV12},
                                         {31U, 9U, DRM_FORMAT_YUV420}, {7U, 3U, DRM_FORMAT_RGB565}}) {
        auto image = allocator.allocate(width, height, fourcc);
        ASSERT_TRUE(image) << image.error().message;
        auto ok = UdmabufDevice::check_convertible(*image);
        EXPECT_TRUE(ok) << width << "x" << height << ": " << ok.error().message;
    }
}

TEST_F(UdmabufTest, RefusesImagesThatAreNotSharedMemory) {
    auto cpu = DmaBufImage::create_cpu_only(*make_packed_layout(DRM_FORMAT_ARGB8888, 8, 8));
    ASSERT_TRUE(cpu);
    auto refused = UdmabufDevice::check_convertible(*cpu);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_TRUE(contains(refused.error().message, "got a cpu_only image")) << refused.error().message;
    EXPECT_EQ(UdmabufDevice::check_convertible(DmaBufImage()).error().code, Errc::invalid_argument);
}

TEST_F(UdmabufTest, RefusesAMemfdWithoutTheShrinkSeal) {
    for (unsigned seals : {0U, unsigned{F_SEAL_GROW}, unsigned{F_SEAL_GROW | F_SEAL_SEAL}}) {
        auto refused = UdmabufDevice::check_convertible(image_on(sealed_memfd(16384, seals)));
        ASSERT_FALSE(refused) << seals;
        EXPECT_EQ(refused.error().code, Errc::invalid_argument);
        EXPECT_TRUE(contains(refused.error().message, "without F_SEAL_SHRINK")) << refused.error().message;
        EXPECT_TRUE(contains(refused.error().message, UdmabufDevice::seal_names(seals))) << refused.error().message;
    }
}

TEST_F(UdmabufTest, RefusesAWriteSealedMemfd) {
    for (unsigned write_seal : {unsigned{F_SEAL_WRITE}, unsigned{F_SEAL_FUTURE_WRITE}}) {
        auto refused = UdmabufDevice::check_convertible(image_on(sealed_memfd(16384, F_SEAL_SHRINK | write_seal)));
        ASSERT_FALSE(refused) << write_seal;
        EXPECT_EQ(refused.error().code, Errc::invalid_argument);
        EXPECT_TRUE(contains(refused.error().message, write_seal == F_SEAL_WRITE ? "F_SEAL_WRITE" : "F_SEAL_FUTURE_WRITE"))
            << refused.error().message;
        EXPECT_TRUE(contains(refused.error().message, "write-sealed")) << refused.error().message;
    }
}

TEST_F(UdmabufTest, RefusesASizeThatIsNotWholePages) {
    const std::uint64_t size = 16384 + 100;  // the 64x64 image fits, the pages do not
    auto refused = UdmabufDevice::check_convertible(image_on(sealed_memfd(size, F_SEAL_SHRINK)));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_TRUE(contains(refused.error().message, fmt::format("holds {} bytes, not a whole number of {}-byte pages",
                                                              size, page_size())))
        << refused.error().message;
}

TEST_F(UdmabufTest, RefusesAPlanePastTheMemfdsEnd) {
    auto refused = UdmabufDevice::check_convertible(image_on(sealed_memfd(page_size(), F_SEAL_SHRINK)));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_TRUE(contains(refused.error().message, "ends at byte 16384")) << refused.error().message;
}

TEST_F(UdmabufTest, RefusesAFileThatIsNotAMemfd) {
    UniqueFd file(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    ASSERT_TRUE(file.valid());
    ASSERT_EQ(::ftruncate(file.get(), 16384), 0);
    auto refused = UdmabufDevice::check_convertible(image_on(std::move(file)));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_TRUE(contains(refused.error().message, "udmabuf: plane 0 fd")) << refused.error().message;
    EXPECT_TRUE(contains(refused.error().message, "is not a memfd")) << refused.error().message;
}

// /dev/null stands in for the device: the checks pass, the ioctl fails (ENOTTY), and the error
// names the ioctl, the size and the errno. A refused image never reaches the ioctl.
TEST_F(UdmabufTest, KernelRefusalNamesTheIoctlAndErrno) {
    auto device = UdmabufDevice::open("/dev/null");
    ASSERT_TRUE(device) << device.error().message;
    auto image = MemfdAllocator().allocate(64, 64, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(image);
    auto converted = device->convert(*image);
    ASSERT_FALSE(converted);
    EXPECT_EQ(converted.error().code, Errc::system);
    EXPECT_EQ(converted.error().sys_errno, ENOTTY);
    EXPECT_TRUE(contains(converted.error().message, "UDMABUF_CREATE of 1 memfd(s), 16384 bytes, on /dev/null"))
        << converted.error().message;

    auto unsealed = device->convert(image_on(sealed_memfd(16384, 0)));
    ASSERT_FALSE(unsealed);
    EXPECT_EQ(unsealed.error().code, Errc::invalid_argument) << "checked before the ioctl";
    EXPECT_EQ(unsealed.error().sys_errno, 0);
}

// Planes in two memfds take UDMABUF_CREATE_LIST (one item per memfd).
TEST_F(UdmabufTest, PlanesInSeveralMemfdsTakeTheListIoctl) {
    auto device = UdmabufDevice::open("/dev/null");
    ASSERT_TRUE(device);
    const ImageLayout layout = *make_packed_layout(DRM_FORMAT_NV12, 64, 64);
    PlaneFds fds;
    fds[0] = sealed_memfd(page_size() * 4, F_SEAL_SHRINK);
    fds[1] = sealed_memfd(page_size() * 4, F_SEAL_SHRINK);
    auto image = DmaBufImage::adopt(layout, Backing::shared_memory, std::move(fds));
    ASSERT_TRUE(image);
    ASSERT_TRUE(UdmabufDevice::check_convertible(*image));
    auto converted = device->convert(*image);
    ASSERT_FALSE(converted);
    EXPECT_EQ(converted.error().sys_errno, ENOTTY);
    // Only the pages the planes use, not the memfds' 4 pages each: Y ends at byte 4096 of the
    // first (1 page), UV at 4096 + 2048 of the second (2 pages).
    EXPECT_TRUE(contains(converted.error().message, fmt::format("UDMABUF_CREATE_LIST of 2 memfd(s), {} bytes",
                                                                page_size() * 3)))
        << converted.error().message;
}

TEST_F(UdmabufTest, SealNamesAreTheKernels) {
    EXPECT_EQ(UdmabufDevice::seal_names(0), "none (0x0)");
    EXPECT_EQ(UdmabufDevice::seal_names(memfd_image_seals), "F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW (0x7)");
    EXPECT_EQ(UdmabufDevice::seal_names(F_SEAL_SHRINK | F_SEAL_WRITE), "F_SEAL_SHRINK|F_SEAL_WRITE (0xa)");
}

}  // namespace
}  // namespace texshare
