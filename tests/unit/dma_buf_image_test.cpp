#include "texshare/dma_buf_image.hpp"

#include <sys/mman.h>

#include "support/fd_count.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare {
namespace {

using DmaBufImageTest = testing::FdLeakTest;

ImageLayout layout_of(std::uint32_t fourcc, std::uint32_t w, std::uint32_t h) {
    auto layout = make_packed_layout(fourcc, w, h);
    EXPECT_TRUE(layout);
    return *layout;
}

UniqueFd sized_memfd(std::uint64_t size) {
    UniqueFd fd(::memfd_create("test", MFD_CLOEXEC));
    EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    return fd;
}

TEST_F(DmaBufImageTest, EmptyImageHasNothing) {
    DmaBufImage image;
    EXPECT_EQ(image.backing(), Backing::cpu_only);
    EXPECT_FALSE(image.plane_fd(0).valid());
    EXPECT_FALSE(image.map(Access::read));
}

TEST_F(DmaBufImageTest, CpuOnlyImageHasPixelsAndNoFds) {
    auto image = DmaBufImage::create_cpu_only(layout_of(DRM_FORMAT_ARGB8888, 16, 8));
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_EQ(image->backing(), Backing::cpu_only);
    EXPECT_TRUE(image->has_cpu_pixels());
    EXPECT_EQ(image->cpu_pixels().size(), 64U * 8);
    for (std::size_t i = 0; i < max_planes; ++i) EXPECT_FALSE(image->plane_fd(i).valid());
    auto mapping = image->map(Access::write);
    ASSERT_TRUE(mapping);
    mapping->plane(0)[5] = std::byte{42};
    EXPECT_EQ(image->cpu_pixels()[5], std::byte{42});
}

TEST_F(DmaBufImageTest, CpuOnlyWithoutPixelsCannotBeMapped) {
    auto image = DmaBufImage::adopt(layout_of(DRM_FORMAT_ARGB8888, 4, 4), Backing::cpu_only, {});
    ASSERT_TRUE(image);
    EXPECT_FALSE(image->has_cpu_pixels());
    auto mapping = image->map(Access::read);
    ASSERT_FALSE(mapping);
    EXPECT_NE(mapping.error().message.find("without pixel storage"), std::string::npos);
}

TEST_F(DmaBufImageTest, AdoptTakesOneFdPerPlane) {
    const ImageLayout layout = layout_of(DRM_FORMAT_NV12, 32, 32);
    PlaneFds fds;
    fds[0] = sized_memfd(required_size(layout));
    fds[1] = *fds[0].dup();
    auto image = DmaBufImage::adopt(layout, Backing::shared_memory, std::move(fds));
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_TRUE(image->plane_fd(0).valid());
    EXPECT_TRUE(image->plane_fd(1).valid());
    EXPECT_FALSE(image->plane_fd(2).valid());
    EXPECT_FALSE(image->plane_fd(99).valid());
}

TEST_F(DmaBufImageTest, AdoptRejectsMissingExtraOrUnwantedFdsAndClosesThem) {
    const ImageLayout layout = layout_of(DRM_FORMAT_NV12, 32, 32);
    PlaneFds missing;
    missing[0] = sized_memfd(required_size(layout));
    auto no_second = DmaBufImage::adopt(layout, Backing::shared_memory, std::move(missing));
    ASSERT_FALSE(no_second);
    EXPECT_EQ(no_second.error().message, "shared_memory image plane 1 needs an fd");

    PlaneFds extra;
    extra[0] = sized_memfd(4096);
    extra[1] = sized_memfd(4096);
    extra[2] = sized_memfd(4096);
    auto third = DmaBufImage::adopt(layout, Backing::dma_buf, std::move(extra));
    ASSERT_FALSE(third);
    EXPECT_EQ(third.error().message, "dma_buf image plane 2 must not have an fd");

    PlaneFds unwanted;
    unwanted[0] = sized_memfd(4096);
    auto cpu =
        DmaBufImage::adopt(layout_of(DRM_FORMAT_ARGB8888, 4, 4), Backing::cpu_only, std::move(unwanted));
    ASSERT_FALSE(cpu);
    EXPECT_EQ(cpu.error().message, "cpu_only image plane 0 must not have an fd");
}

TEST_F(DmaBufImageTest, AdoptRejectsInvalidLayoutAndTiledMemory) {
    ImageLayout bad = layout_of(DRM_FORMAT_ARGB8888, 4, 4);
    bad.planes[0].stride = 3;
    EXPECT_EQ(DmaBufImage::adopt(bad, Backing::cpu_only, {}).error().code, Errc::invalid_layout);
    ImageLayout tiled = layout_of(DRM_FORMAT_ARGB8888, 4, 4);
    tiled.modifier = I915_FORMAT_MOD_X_TILED;
    auto memfd = DmaBufImage::create_cpu_only(tiled);
    ASSERT_FALSE(memfd);
    EXPECT_NE(memfd.error().message.find("linear, but has modifier INTEL_X_TILED"), std::string::npos);
}

TEST_F(DmaBufImageTest, MovingAnImageMovesItsFds) {
    auto image = MemfdAllocator().allocate(8, 8, DRM_FORMAT_XRGB8888);
    ASSERT_TRUE(image);
    const int fd = image->plane_fd(0).get();
    DmaBufImage moved = std::move(*image);
    EXPECT_EQ(moved.plane_fd(0).get(), fd);
    EXPECT_EQ(moved.width(), 8U);
    EXPECT_EQ(moved.fourcc(), DRM_FORMAT_XRGB8888);
}

}  // namespace
}  // namespace texshare
