#include "texshare/image_mapping.hpp"

#include <sys/mman.h>

#include "support/fd_count.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare {
namespace {

using ImageMappingTest = testing::FdLeakTest;

TEST_F(ImageMappingTest, PlanesStartAtTheirOffsets) {
    auto image = MemfdAllocator().allocate(64, 32, DRM_FORMAT_NV12);
    ASSERT_TRUE(image);
    auto mapping = image->map(Access::read_write);
    ASSERT_TRUE(mapping) << mapping.error().message;
    ASSERT_EQ(mapping->plane_count(), 2U);
    EXPECT_EQ(mapping->stride(0), 64U);
    EXPECT_EQ(mapping->plane(0).size(), 64U * 32);
    EXPECT_EQ(mapping->plane(1).size(), 64U * 16);
    // Both planes share one memfd, so they are views into a single mapping.
    EXPECT_EQ(mapping->plane(1).data(), mapping->plane(0).data() + image->layout().planes[1].offset);
    EXPECT_TRUE(mapping->plane(7).empty());
}

TEST_F(ImageMappingTest, WritesAreSeenThroughAnotherMapping) {
    auto image = MemfdAllocator().allocate(16, 16, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(image);
    {
        auto writer = image->map(Access::write);
        ASSERT_TRUE(writer);
        std::fill(writer->plane(0).begin(), writer->plane(0).end(), std::byte{0x5a});
        EXPECT_TRUE(writer->finish());
        EXPECT_EQ(writer->plane_count(), 0U) << "finish unmaps";
    }
    auto reader = image->map(Access::read);
    ASSERT_TRUE(reader);
    for (std::byte b : reader->plane(0)) ASSERT_EQ(b, std::byte{0x5a});
}

TEST_F(ImageMappingTest, ReadMappingIsReadOnly) {
    auto image = MemfdAllocator().allocate(16, 16, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(image);
    auto reader = image->map(Access::read);
    ASSERT_TRUE(reader);
    EXPECT_DEATH({ reader->plane(0)[0] = std::byte{1}; }, "");
}

TEST_F(ImageMappingTest, RefusesToMapBeyondTheBuffer) {
    // A buffer smaller than its layout claims would SIGBUS on access: refuse to map it.
    auto layout = make_packed_layout(DRM_FORMAT_ARGB8888, 64, 64);
    ASSERT_TRUE(layout);
    PlaneFds fds;
    fds[0] = UniqueFd(::memfd_create("short", MFD_CLOEXEC));
    ASSERT_EQ(::ftruncate(fds[0].get(), 4096), 0);
    auto image = DmaBufImage::adopt(*layout, Backing::shared_memory, std::move(fds));
    ASSERT_TRUE(image);
    auto mapping = image->map(Access::read);
    ASSERT_FALSE(mapping);
    EXPECT_EQ(mapping.error().code, Errc::rejected);
    EXPECT_EQ(
        mapping.error().message,
        fmt::format("map: plane 0 needs 16384 bytes of fd {}, which holds 4096", image->plane_fd(0).get()));
}

TEST_F(ImageMappingTest, DmaBufSyncOnANonDmaBufFails) {
    // The DMA-BUF path brackets access with DMA_BUF_IOCTL_SYNC; a memfd answers ENOTTY, and
    // the failed mapping is undone (nothing stays mapped, no fd is touched).
    auto image = MemfdAllocator().allocate(16, 16, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(image);
    auto mapping = ImageMapping::of_fds(image->layout(), image->plane_fds(), Access::read, true);
    ASSERT_FALSE(mapping);
    EXPECT_EQ(mapping.error().sys_errno, ENOTTY);
    EXPECT_NE(mapping.error().message.find("DMA_BUF_IOCTL_SYNC(start)"), std::string::npos);
}

TEST_F(ImageMappingTest, MovedMappingStaysValid) {
    auto image = MemfdAllocator().allocate(16, 16, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(image);
    auto first = image->map(Access::write);
    ASSERT_TRUE(first);
    std::byte* data = first->plane(0).data();
    ImageMapping second = std::move(*first);
    EXPECT_EQ(second.plane(0).data(), data);
    second.plane(0)[0] = std::byte{7};
    ImageMapping third;
    third = std::move(second);
    EXPECT_EQ(third.plane(0)[0], std::byte{7});
}

}  // namespace
}  // namespace texshare
