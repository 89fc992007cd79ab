#include "texshare/image_wire.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "support/channel_pair.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare {
namespace {

using ImageWireTest = testing::ChannelPairTest<ImageChannel>;

DmaBufImage allocate(std::uint32_t fourcc, std::uint32_t w = 32, std::uint32_t h = 16) {
    auto image = MemfdAllocator().allocate(w, h, fourcc);
    EXPECT_TRUE(image) << image.error().message;
    return std::move(*image);
}

// import_image with fds built by hand, as a forged message would carry them.
Result<DmaBufImage> import_with(const ImageDescriptor& d, std::initializer_list<BorrowedFd> fds) {
    PlaneFds owned;
    std::size_t i = 0;
    for (BorrowedFd fd : fds) {
        if (fd.valid()) owned[i] = *UniqueFd::dup(fd);
        ++i;
    }
    return import_image(d, std::move(owned));
}

void expect_rejection(const Result<DmaBufImage>& result, Errc code, const std::string& needle) {
    ASSERT_FALSE(result) << "expected: " << needle;
    EXPECT_EQ(result.error().code, code) << result.error().message;
    EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
}

TEST_F(ImageWireTest, SharedMemoryImageRoundTrips) {
    DmaBufImage image = allocate(DRM_FORMAT_ARGB8888);
    {
        auto mapping = image.map(Access::write);
        ASSERT_TRUE(mapping);
        mapping->plane(0)[0] = std::byte{0xab};
    }
    ASSERT_TRUE(send_image(sender_, 7, image));
    auto received = receive_image(receiver_);
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->id, 7U);
    EXPECT_EQ(received->image.backing(), Backing::shared_memory);
    EXPECT_EQ(received->image.layout(), image.layout());
    auto mapping = received->image.map(Access::read);
    ASSERT_TRUE(mapping);
    EXPECT_EQ(mapping->plane(0)[0], std::byte{0xab}) << "same memory, no copy";
}

TEST_F(ImageWireTest, MultiPlaneImageRoundTrips) {
    DmaBufImage image = allocate(DRM_FORMAT_YUV420, 30, 18);
    ASSERT_TRUE(send_image(sender_, 1, image));
    auto received = receive_image(receiver_);
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->image.layout(), image.layout());
    for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(received->image.plane_fd(i).valid());
}

TEST_F(ImageWireTest, CpuOnlyImageSendsNoFdsAndArrivesWithoutPixels) {
    auto image = DmaBufImage::create_cpu_only(*make_packed_layout(DRM_FORMAT_ABGR8888, 8, 8));
    ASSERT_TRUE(image);
    const ImageDescriptor descriptor = describe_image(3, *image);
    EXPECT_EQ(descriptor.fd_plane_mask, 0);
    ASSERT_TRUE(send_image(sender_, 3, *image));
    auto raw = receiver_.receive();
    ASSERT_TRUE(raw);
    for (const UniqueFd& fd : raw->fds) EXPECT_FALSE(fd.valid());
    auto imported = import_image(raw->message, std::move(raw->fds));
    ASSERT_TRUE(imported) << imported.error().message;
    EXPECT_EQ(imported->backing(), Backing::cpu_only);
    EXPECT_FALSE(imported->has_cpu_pixels());
    EXPECT_EQ(imported->layout(), image->layout());
}

TEST_F(ImageWireTest, DescriptorHasNoPadding) {
    EXPECT_EQ(sizeof(ImageDescriptor), 104U);
}

TEST_F(ImageWireTest, RejectsWrongMagicVersionAndBacking) {
    DmaBufImage image = allocate(DRM_FORMAT_ARGB8888);
    ImageDescriptor d = describe_image(1, image);
    d.magic = 0;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::protocol, "magic 0x00000000");
    d = describe_image(1, image);
    d.version = 2;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::protocol, "version 2");
    d = describe_image(1, image);
    d.backing = 9;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::protocol, "unknown backing 9");
    d = describe_image(1, image);
    d.planes[2].reserved = 1;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::protocol, "plane 2 reserved field");
}

TEST_F(ImageWireTest, RejectsFdsThatDisagreeWithTheDescriptor) {
    DmaBufImage image = allocate(DRM_FORMAT_ARGB8888);
    ImageDescriptor d = describe_image(1, image);
    expect_rejection(import_with(d, {}), Errc::protocol, "plane 0 declares an fd but none arrived");
    expect_rejection(import_with(d, {image.plane_fd(0), image.plane_fd(0)}), Errc::protocol,
                     "plane 1 does not declare an fd but one arrived");
    d.fd_plane_mask = 0;
    expect_rejection(import_with(d, {}), Errc::rejected, "needs fd mask 0x1, got 0x0");
    d.fd_plane_mask = 0x10;
    expect_rejection(import_with(d, {}), Errc::protocol, "names planes beyond 4");
    d = describe_image(1, image);
    d.backing = static_cast<std::uint8_t>(Backing::cpu_only);
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::rejected,
                     "a cpu_only image with 1 planes needs fd mask 0x0");
}

TEST_F(ImageWireTest, RejectsInvalidLayouts) {
    DmaBufImage image = allocate(DRM_FORMAT_ARGB8888);
    ImageDescriptor d = describe_image(5, image);
    d.planes[0].stride = 4;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::invalid_layout, "image 5: plane 0: stride 4");
    d = describe_image(5, image);
    d.fourcc = 0x41414141;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::unsupported, "unknown fourcc 0x41414141");
    d = describe_image(5, image);
    d.width = 0;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::invalid_layout, "size 0x16");
    d = describe_image(5, image);
    d.planes[0].offset = UINT64_MAX;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::invalid_layout, "overflows 64 bits");
    d = describe_image(5, image);
    d.modifier = I915_FORMAT_MOD_X_TILED;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::rejected, "linear, but has modifier");
}

TEST_F(ImageWireTest, RejectsPlanesBeyondTheFdsRealSize) {
    // 32 rows of 128 bytes: exactly one 4 KiB page, so MemfdAllocator's memfd (whole pages)
    // holds the image and not a byte more.
    ASSERT_EQ(::sysconf(_SC_PAGESIZE), 4096);
    DmaBufImage image = allocate(DRM_FORMAT_ARGB8888, 32, 32);
    ImageDescriptor d = describe_image(2, image);
    d.height = 33;  // one row more than the memfd holds
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::rejected,
                     "image 2: plane 0 ends at byte 4224 but its fd holds 4096 bytes");
    d = describe_image(2, image);
    d.planes[0].offset = 64;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::rejected, "ends at byte 4160");
}

TEST_F(ImageWireTest, RejectsUnsealedOrWrongKindOfFd) {
    DmaBufImage image = allocate(DRM_FORMAT_ARGB8888);
    const ImageDescriptor d = describe_image(4, image);

    UniqueFd unsealed(::memfd_create("unsealed", MFD_CLOEXEC));
    ASSERT_EQ(::ftruncate(unsealed.get(), 1 << 16), 0);
    expect_rejection(import_with(d, {unsealed.borrow()}), Errc::rejected,
                     "is a memfd with seals 0x1, missing 0x2");

    int pipe_ends[2];
    ASSERT_EQ(::pipe2(pipe_ends, O_CLOEXEC), 0);
    UniqueFd read_end(pipe_ends[0]), write_end(pipe_ends[1]);
    expect_rejection(import_with(d, {read_end.borrow()}), Errc::rejected,
                     "is not a memfd of the kernel's shm mount");

    UniqueFd directory(::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    expect_rejection(import_with(d, {directory.borrow()}), Errc::rejected, "not a memfd");

    UniqueFd dev_zero(::open("/dev/zero", O_RDWR | O_CLOEXEC));
    expect_rejection(import_with(d, {dev_zero.borrow()}), Errc::rejected, "not a memfd");

    // A sealed memfd declared as a DMA-BUF: the file system magic gives it away.
    ImageDescriptor as_dma_buf = d;
    as_dma_buf.backing = static_cast<std::uint8_t>(Backing::dma_buf);
    expect_rejection(import_with(as_dma_buf, {image.plane_fd(0)}), Errc::rejected,
                     "plane 0 is declared dma_buf but its fd is not a DMA-BUF");
}

TEST_F(ImageWireTest, RejectionOverTheChannelClosesEveryFd) {
    DmaBufImage image = allocate(DRM_FORMAT_NV12);
    ImageDescriptor d = describe_image(6, image);
    d.height = 4096;  // claims far more than the memfd holds
    ASSERT_TRUE(sender_.send(d, image.plane_fds()));
    auto received = receive_image(receiver_);
    ASSERT_FALSE(received);
    EXPECT_EQ(received.error().code, Errc::rejected);
    // The channel is still good for the next image.
    ASSERT_TRUE(send_image(sender_, 7, image));
    EXPECT_TRUE(receive_image(receiver_));
}

TEST_F(ImageWireTest, ImagesCrossAProcessBoundary) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // The child allocates, draws and shares; the parent checks the pixels.
        receiver_.close();
        auto image = MemfdAllocator().allocate(16, 16, DRM_FORMAT_XRGB8888);
        if (!image) ::_exit(1);
        auto mapping = image->map(Access::write);
        if (!mapping) ::_exit(2);
        for (std::size_t i = 0; i < mapping->plane(0).size(); ++i) mapping->plane(0)[i] = std::byte(i & 0xff);
        (void)mapping->finish();
        ::_exit(send_image(sender_, 11, *image) ? 0 : 3);
    }
    sender_.close();
    auto received = receive_image(receiver_);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    ASSERT_TRUE(received) << received.error().message;
    auto mapping = received->image.map(Access::read);
    ASSERT_TRUE(mapping);
    for (std::size_t i = 0; i < mapping->plane(0).size(); ++i)
        ASSERT_EQ(mapping->plane(0)[i], std::byte(i & 0xff));
}

}  // namespace
}  // namespace texshare
