// udmabuf_cache.hpp: one conversion per image id, kept until the image is released, its
// fds closed then. The host lane's kernel has no /dev/udmabuf: the cache's own rules are
// tested with a stand-in conversion (the memfd's duplicate, labelled a DMA-BUF) and the
// default conversion's refusal where the device is missing; real conversions run in the
// 6.12 guest (tests/vm, egl_import_listener_test and texshare_info_vm_test).
#include "texshare/udmabuf_cache.hpp"

#include <sys/stat.h>

#include "support/fd_count.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare {
namespace {

using UdmabufCacheTest = testing::FdLeakTest;

// Counts its calls; gives the image's memfd again, as a dma_buf image of the same layout.
struct StandIn {
    int calls = 0;
    SharedMemoryConversion conversion() {
        return [this](const DmaBufImage& image) -> Result<DmaBufImage> {
            ++calls;
            auto copy = UniqueFd::dup(image.plane_fd(0));
            if (!copy) return std::move(copy).error();
            PlaneFds fds;
            fds[0] = std::move(*copy);
            return DmaBufImage::adopt(image.layout(), Backing::dma_buf, std::move(fds));
        };
    }
};

DmaBufImage memfd_image() {
    auto image = MemfdAllocator().allocate(16, 16, DRM_FORMAT_ARGB8888);
    EXPECT_TRUE(image) << image.error().message;
    return image ? std::move(*image) : DmaBufImage();
}

TEST_F(UdmabufCacheTest, ConvertsOncePerImageAndClosesTheConversionOnRelease) {
    StandIn stand_in;
    UdmabufCache cache(stand_in.conversion());
    const DmaBufImage image = memfd_image();
    const int fds_with_image = testing::open_fd_count();
    auto first = cache.get_or_convert(7, image);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ((*first)->backing(), Backing::dma_buf);
    EXPECT_EQ(testing::open_fd_count(), fds_with_image + 1) << "the cache owns the conversion's fd";
    for (int frame = 0; frame < 5; ++frame) {
        auto again = cache.get_or_convert(7, image);
        ASSERT_TRUE(again);
        EXPECT_EQ(*again, *first) << "the kept conversion, not a new one";
    }
    EXPECT_EQ(stand_in.calls, 1);
    EXPECT_EQ(cache.conversions(), 1U);
    EXPECT_EQ(cache.find(7), *first);

    cache.rename(7, 9);
    EXPECT_EQ(cache.find(7), nullptr);
    ASSERT_NE(cache.find(9), nullptr);
    cache.release(9);
    EXPECT_EQ(cache.find(9), nullptr);
    EXPECT_EQ(cache.size(), 0U);
    EXPECT_EQ(testing::open_fd_count(), fds_with_image) << "release closed the conversion";
    cache.release(9);  // unknown ids: nothing to do
    cache.rename(1, 2);
}

TEST_F(UdmabufCacheTest, RefusesWhatIsNotSharedMemoryWithoutConverting) {
    StandIn stand_in;
    UdmabufCache cache(stand_in.conversion());
    auto layout = make_packed_layout(DRM_FORMAT_ARGB8888, 4, 4);
    ASSERT_TRUE(layout);
    auto cpu = DmaBufImage::create_cpu_only(*layout);
    ASSERT_TRUE(cpu);
    auto refused = cache.get_or_convert(1, *cpu);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_EQ(refused.error().message,
              "image 1: only a shared_memory image converts to a DMA-BUF, this one is cpu_only");
    EXPECT_EQ(stand_in.calls, 0);
}

TEST_F(UdmabufCacheTest, AFailedConversionIsNotKeptAndIsTriedAgain) {
    int calls = 0;
    UdmabufCache cache([&calls](const DmaBufImage&) -> Result<DmaBufImage> {
        ++calls;
        return make_error(Errc::unsupported, "no udmabuf here");
    });
    const DmaBufImage image = memfd_image();
    for (int i = 0; i < 2; ++i) {
        auto refused = cache.get_or_convert(3, image);
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().message, "no udmabuf here");
    }
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(cache.size(), 0U);
    EXPECT_EQ(cache.conversions(), 0U);
}

TEST_F(UdmabufCacheTest, TheDefaultConversionNamesAMissingDevice) {
    UdmabufCache cache(udmabuf_conversion("/nonexistent/udmabuf"));
    const DmaBufImage image = memfd_image();
    auto refused = cache.get_or_convert(1, image);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unsupported) << refused.error().message;
    EXPECT_NE(refused.error().message.find("/nonexistent/udmabuf"), std::string::npos)
        << refused.error().message;
    auto again = cache.get_or_convert(1, image);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().message, refused.error().message) << "the open's error, remembered";
}

}  // namespace
}  // namespace texshare
