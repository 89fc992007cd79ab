#include "texshare/memfd_allocator.hpp"

#include <sys/stat.h>

#include "support/fd_count.hpp"

namespace texshare {
namespace {

using MemfdAllocatorTest = testing::FdLeakTest;

TEST_F(MemfdAllocatorTest, AllocatesSealedCloexecMemfd) {
    auto image = MemfdAllocator().allocate(100, 20, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_EQ(image->backing(), Backing::shared_memory);
    const int fd = image->plane_fd(0).get();
    EXPECT_EQ(::fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    EXPECT_EQ(static_cast<unsigned>(::fcntl(fd, F_GET_SEALS)) & memfd_image_seals, memfd_image_seals);
    struct stat info {};
    ASSERT_EQ(::fstat(fd, &info), 0);
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    EXPECT_EQ(static_cast<std::uint64_t>(info.st_size), (required_size(image->layout()) + page - 1) / page * page)
        << "the layout's size rounded up to whole pages, so udmabuf can convert it";
    EXPECT_EQ(image->layout().planes[0].stride, 448U) << "400 bytes rounded up to 64";
    // The seals hold: the buffer can be neither shrunk nor grown nor unsealed.
    EXPECT_NE(::ftruncate(fd, 0), 0);
    EXPECT_NE(::ftruncate(fd, 1 << 20), 0);
    EXPECT_NE(::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
}

TEST_F(MemfdAllocatorTest, MultiPlaneImagesShareOneMemfd) {
    auto image = MemfdAllocator().allocate(64, 64, DRM_FORMAT_YUV420);
    ASSERT_TRUE(image);
    struct stat first {
    }, third{};
    ASSERT_EQ(::fstat(image->plane_fd(0).get(), &first), 0);
    ASSERT_EQ(::fstat(image->plane_fd(2).get(), &third), 0);
    EXPECT_EQ(first.st_ino, third.st_ino);
    EXPECT_NE(image->plane_fd(0).get(), image->plane_fd(2).get()) << "each plane owns its own fd";
}

TEST_F(MemfdAllocatorTest, HonoursStrideAlignment) {
    MemfdAllocator allocator(MemfdAllocator::Options{256});
    auto image = allocator.allocate(10, 10, DRM_FORMAT_RGB565);
    ASSERT_TRUE(image);
    EXPECT_EQ(image->layout().planes[0].stride, 256U);
    EXPECT_FALSE(MemfdAllocator(MemfdAllocator::Options{100}).allocate(10, 10, DRM_FORMAT_RGB565));
}

TEST_F(MemfdAllocatorTest, RejectsBadRequestsWithoutLeaking) {
    MemfdAllocator allocator;
    EXPECT_EQ(allocator.allocate(0, 10, DRM_FORMAT_ARGB8888).error().code, Errc::invalid_layout);
    EXPECT_EQ(allocator.allocate(10, 10, 0x11111111).error().code, Errc::unsupported);
    ImageLayout tiled = *make_packed_layout(DRM_FORMAT_ARGB8888, 8, 8);
    tiled.modifier = I915_FORMAT_MOD_Y_TILED;
    auto result = allocator.allocate(tiled);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message.find("linear"), std::string::npos);
}

TEST_F(MemfdAllocatorTest, SharesACpuOnlyImage) {
    auto cpu = DmaBufImage::create_cpu_only(*make_packed_layout(DRM_FORMAT_NV12, 32, 32));
    ASSERT_TRUE(cpu);
    auto pixels = cpu->cpu_pixels();
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::byte>(i * 7);
    auto shared = MemfdAllocator().share(*cpu);
    ASSERT_TRUE(shared) << shared.error().message;
    EXPECT_EQ(shared->backing(), Backing::shared_memory);
    EXPECT_EQ(shared->layout(), cpu->layout());
    auto mapping = shared->map(Access::read);
    ASSERT_TRUE(mapping);
    for (std::size_t plane = 0; plane < 2; ++plane) {
        const auto offset = cpu->layout().planes[plane].offset;
        const auto bytes = mapping->plane(plane);
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            ASSERT_EQ(bytes[i], pixels[offset + i]) << "plane " << plane << " byte " << i;
        }
    }
}

TEST_F(MemfdAllocatorTest, ShareRefusesImagesThatAreNotCpuOnly) {
    MemfdAllocator allocator;
    auto shared = allocator.allocate(8, 8, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(shared);
    EXPECT_EQ(allocator.share(*shared).error().code, Errc::invalid_argument);
    auto pixelless = DmaBufImage::adopt(shared->layout(), Backing::cpu_only, {});
    ASSERT_TRUE(pixelless);
    auto result = allocator.share(*pixelless);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message.find("without pixels"), std::string::npos);
}

}  // namespace
}  // namespace texshare
