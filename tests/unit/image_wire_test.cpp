#include "texshare/image_wire.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstddef>

#include "support/channel_pair.hpp"
#include "texshare/memfd_allocator.hpp"
#include "support/fd_count.hpp"

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
    EXPECT_EQ(sizeof(ImageDescriptor), 168U);  // version 3: 104 + OpaqueMemory's 56 + ColorInfo's 8
    EXPECT_EQ(offsetof(ImageDescriptor, color), 160U) << "the colour follows OpaqueMemory";
}

TEST_F(ImageWireTest, RejectsWrongMagicVersionAndBacking) {
    DmaBufImage image = allocate(DRM_FORMAT_ARGB8888);
    ImageDescriptor d = describe_image(1, image);
    d.magic = 0;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::protocol, "magic 0x00000000");
    d = describe_image(1, image);
    d.version = 1;  // before OpaqueMemory joined the descriptor
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::protocol, "version 1, expected");
    d.version = 2;  // before ColorInfo joined it
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::protocol, "version 2, expected 0x49535854 version 3");
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

// --- colour (issue 16): sent once with the image, checked on receipt ---

ColorInfo video_colour() {
    ColorInfo c;
    c.matrix = YuvMatrix::bt709;
    c.range = YuvRange::limited;
    c.chroma_horizontal = ChromaSiting::cosited;
    c.chroma_vertical = ChromaSiting::midpoint;
    c.transfer = TransferFunction::bt709;
    c.primaries = ColorPrimaries::bt709;
    return c;
}

TEST_F(ImageWireTest, ColourRoundTripsWithTheImage) {
    DmaBufImage nv12 = allocate(DRM_FORMAT_NV12);
    ASSERT_TRUE(nv12.set_color(video_colour()));
    EXPECT_EQ(describe_image(1, nv12).color, video_colour());
    ASSERT_TRUE(send_image(sender_, 1, nv12));
    auto received = receive_image(receiver_);
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->image.color(), video_colour());

    DmaBufImage rgba = allocate(DRM_FORMAT_ABGR2101010);
    ColorInfo hdr;
    hdr.transfer = TransferFunction::pq;
    hdr.primaries = ColorPrimaries::bt2020;
    hdr.alpha = AlphaMode::straight;
    ASSERT_TRUE(rgba.set_color(hdr));
    ASSERT_TRUE(send_image(sender_, 2, rgba));
    received = receive_image(receiver_);
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->image.color(), hdr);

    DmaBufImage plain = allocate(DRM_FORMAT_XRGB8888);
    ASSERT_TRUE(send_image(sender_, 3, plain));
    received = receive_image(receiver_);
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->image.color(), ColorInfo{}) << "unspecified stays unspecified: the consumer sees it";
}

TEST_F(ImageWireTest, RejectsEveryBadColourNamingFieldAndValue) {
    DmaBufImage nv12 = allocate(DRM_FORMAT_NV12);
    DmaBufImage rgb = allocate(DRM_FORMAT_XRGB8888);
    const auto refused = [](const DmaBufImage& image, auto mutate, const std::string& needle) {
        ImageDescriptor d = describe_image(9, image);
        mutate(d.color);
        const int fds = testing::open_fd_count();
        auto imported = import_with(d, {image.plane_fd(0), image.plane_fd(1)});
        expect_rejection(imported, Errc::protocol, needle);
        expect_rejection(imported, Errc::protocol, "image 9: colour ");
        ASSERT_TRUE(detail::drain_peer_fd_closes(std::chrono::seconds(5)));
        EXPECT_EQ(testing::open_fd_count(), fds) << "the refused image's fds are closed: " << needle;
    };
    refused(nv12, [](ColorInfo& c) { c.matrix = static_cast<YuvMatrix>(4); }, "colour matrix 4 is unknown");
    refused(nv12, [](ColorInfo& c) { c.range = static_cast<YuvRange>(3); }, "colour range 3 is unknown");
    refused(nv12, [](ColorInfo& c) { c.chroma_horizontal = static_cast<ChromaSiting>(3); },
            "colour chroma_horizontal 3 is unknown");
    refused(nv12, [](ColorInfo& c) { c.chroma_vertical = static_cast<ChromaSiting>(3); },
            "colour chroma_vertical 3 is unknown");
    refused(nv12, [](ColorInfo& c) { c.transfer = static_cast<TransferFunction>(200); }, "colour transfer 200 is unknown");
    refused(nv12, [](ColorInfo& c) { c.primaries = static_cast<ColorPrimaries>(6); }, "colour primaries 6 is unknown");
    refused(nv12, [](ColorInfo& c) { c.alpha = static_cast<AlphaMode>(3); }, "colour alpha 3 is unknown");
    refused(nv12, [](ColorInfo& c) { c.reserved = 1; }, "colour reserved byte is 1");
    refused(nv12, [](ColorInfo& c) { c.alpha = AlphaMode::premultiplied; },
            "colour of NV12 (NV12): alpha mode premultiplied on a format without alpha");
    refused(rgb, [](ColorInfo& c) { c.matrix = YuvMatrix::bt601; }, "colour of XR24 (XRGB8888): YUV matrix bt601");
    refused(rgb, [](ColorInfo& c) { c.range = YuvRange::limited; }, "range limited, chroma siting unspecified/unspecified are for YUV formats only");
    refused(rgb, [](ColorInfo& c) { c.chroma_vertical = ChromaSiting::midpoint; }, "chroma siting unspecified/midpoint are for YUV formats only");
}

// --- opaque_fd (issue 15): the identity travels, and what the fd is gets checked ---

OpaqueMemory some_identity() {
    OpaqueMemory memory;
    for (std::uint8_t i = 0; i < 16; ++i) {
        memory.device_uuid[i] = i;
        memory.driver_uuid[i] = static_cast<std::uint8_t>(0xf0 | i);
    }
    memory.allocation_size = 12288;
    memory.memory_type_index = 1;
    memory.flags = opaque_memory_dedicated;
    memory.image_usage = 0x7;  // TRANSFER_SRC | TRANSFER_DST | SAMPLED
    return memory;
}

// /dev/null is a character device: it passes the receive checks, as any character device
// does (only the driver's import can tell it is not the memory; opaque_fd_probe.hpp).
DmaBufImage opaque_image() {
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    auto image = DmaBufImage::adopt_opaque_fd(64, 48, DRM_FORMAT_ABGR8888, some_identity(), std::move(null));
    EXPECT_TRUE(image) << image.error().message;
    return std::move(*image);
}

TEST_F(ImageWireTest, OpaqueFdImageRoundTripsWithItsIdentity) {
    const int fds = testing::open_fd_count();
    {
        DmaBufImage image = opaque_image();
        const ImageDescriptor d = describe_image(4, image);
        EXPECT_EQ(d.backing, static_cast<std::uint8_t>(Backing::opaque_fd));
        EXPECT_EQ(d.fd_plane_mask, 1);
        EXPECT_EQ(d.modifier, DRM_FORMAT_MOD_INVALID);
        EXPECT_EQ(d.opaque, some_identity());
        ASSERT_TRUE(send_image(sender_, 4, image));
        auto received = receive_image(receiver_);
        ASSERT_TRUE(received) << received.error().message;
        EXPECT_EQ(received->image.backing(), Backing::opaque_fd);
        EXPECT_EQ(received->image.layout(), image.layout());
        EXPECT_EQ(received->image.opaque_memory(), some_identity());
        EXPECT_TRUE(received->image.plane_fd(0).valid());
        EXPECT_FALSE(received->image.plane_fd(1).valid());
    }
    EXPECT_EQ(testing::open_fd_count(), fds) << "an opaque_fd image's fd is closed (on the closer thread)";
}

TEST_F(ImageWireTest, OtherBackingsCarryZeroOpaqueMemory) {
    DmaBufImage image = allocate(DRM_FORMAT_ARGB8888);
    ImageDescriptor d = describe_image(1, image);
    EXPECT_EQ(d.opaque, OpaqueMemory{});
    d.opaque.flags = 1;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::protocol,
                     "a shared_memory image's opaque memory bytes are not zero");
    d = describe_image(1, image);
    d.opaque.device_uuid[15] = 1;
    expect_rejection(import_with(d, {image.plane_fd(0)}), Errc::protocol, "opaque memory bytes are not zero");
}

TEST_F(ImageWireTest, RejectsOpaqueMemoryOutOfRange) {
    DmaBufImage image = opaque_image();
    const auto refused = [&](auto edit, Errc code, const std::string& needle) {
        ImageDescriptor d = describe_image(2, image);
        edit(d);
        expect_rejection(import_with(d, {image.plane_fd(0)}), code, needle);
    };
    refused([](ImageDescriptor& d) { d.opaque.allocation_size = 0; }, Errc::rejected, "allocation size 0 is outside");
    refused([](ImageDescriptor& d) { d.opaque.allocation_size = opaque_memory_max_size + 1; }, Errc::rejected,
            "allocation size 1099511627777 is outside");
    refused([](ImageDescriptor& d) { d.opaque.memory_type_index = 32; }, Errc::rejected,
            "memory type index 32 is not below 32");
    refused([](ImageDescriptor& d) { d.opaque.flags = 0x3; }, Errc::rejected, "flags 0x3 have unknown bits 0x2");
    refused([](ImageDescriptor& d) { d.opaque.image_usage = 0; }, Errc::rejected, "image usage 0x0 is empty");
    refused([](ImageDescriptor& d) { d.opaque.image_usage = 0x107; }, Errc::rejected,
            "image usage 0x107 is empty or has bits beyond 0xff");
    refused([](ImageDescriptor& d) { d.opaque.reserved = 5; }, Errc::rejected, "reserved field is 5, not 0");
    refused([](ImageDescriptor& d) { d.modifier = DRM_FORMAT_MOD_LINEAR; }, Errc::invalid_layout,
            "private tiling (modifier INVALID), not LINEAR");
    refused([](ImageDescriptor& d) { d.planes[0].stride = 256; }, Errc::invalid_layout, "must be 0");
    refused([](ImageDescriptor& d) { d.planes[0].offset = 64; }, Errc::invalid_layout, "offset 64 stride 0");
    refused([](ImageDescriptor& d) { d.fourcc = DRM_FORMAT_NV12; d.plane_count = 2; }, Errc::unsupported,
            "single-plane, NV12 (NV12) has 2 planes");
    refused([](ImageDescriptor& d) { d.width = 0; }, Errc::invalid_layout, "size 0x48");
    refused([](ImageDescriptor& d) { d.fd_plane_mask = 0; }, Errc::protocol, "plane 0 does not declare an fd but one arrived");
    // Allocation size and type in range pass: whether they fit the device only the import tells.
    ImageDescriptor d = describe_image(2, image);
    d.opaque.memory_type_index = 31;
    d.opaque.flags = 0;
    d.opaque.allocation_size = opaque_memory_max_size;
    EXPECT_TRUE(import_with(d, {image.plane_fd(0)}));
}

TEST_F(ImageWireTest, RejectsAnOpaqueFdThatIsNoCharacterDevice) {
    DmaBufImage image = opaque_image();
    const ImageDescriptor d = describe_image(3, image);
    DmaBufImage memfd = allocate(DRM_FORMAT_ARGB8888);
    expect_rejection(import_with(d, {memfd.plane_fd(0)}), Errc::rejected,
                     "image 3: plane 0 is declared opaque_fd but its fd");
    expect_rejection(import_with(d, {memfd.plane_fd(0)}), Errc::rejected, "is a memfd");
    int ends[2];
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    UniqueFd read_end(ends[0]), write_end(ends[1]);
    expect_rejection(import_with(d, {read_end.borrow()}), Errc::rejected, "is a pipe or FIFO, not a character device");
}

TEST(DmaBufImageOpaqueTest, AdoptOpaqueFdChecksItsIdentityAndLayout) {
    const auto make = [](std::uint32_t fourcc, OpaqueMemory memory, bool with_fd) {
        return DmaBufImage::adopt_opaque_fd(16, 16, fourcc, memory,
                                            with_fd ? UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)) : UniqueFd());
    };
    const int fds = testing::open_fd_count();
    OpaqueMemory memory = some_identity();
    EXPECT_TRUE(make(DRM_FORMAT_ABGR8888, memory, true));
    EXPECT_EQ(make(DRM_FORMAT_ABGR8888, memory, false).error().code, Errc::invalid_argument);
    EXPECT_EQ(make(DRM_FORMAT_NV12, memory, true).error().code, Errc::unsupported);
    memory.memory_type_index = 40;
    auto bad = make(DRM_FORMAT_ABGR8888, memory, true);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, Errc::invalid_argument);
    EXPECT_NE(bad.error().message.find("type index 40"), std::string::npos) << bad.error().message;
    // adopt() cannot make one: the identity would be missing.
    PlaneFds plane_fds{};
    plane_fds[0] = UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    auto adopted = DmaBufImage::adopt(opaque_layout(16, 16, DRM_FORMAT_ABGR8888), Backing::opaque_fd,
                                      std::move(plane_fds));
    ASSERT_FALSE(adopted);
    EXPECT_NE(adopted.error().message.find("adopt_opaque_fd"), std::string::npos) << adopted.error().message;
    EXPECT_EQ(testing::open_fd_count(), fds);
}

TEST(DmaBufImageOpaqueTest, AnOpaqueFdImageIsNeverMapped) {
    DmaBufImage image = opaque_image();
    EXPECT_EQ(to_string(image.backing()), "opaque_fd");
    auto mapping = image.map(Access::read);
    ASSERT_FALSE(mapping);
    EXPECT_EQ(mapping.error().code, Errc::unsupported);
    EXPECT_NE(mapping.error().message.find("cannot be mapped"), std::string::npos) << mapping.error().message;
    // Moving it keeps one owner of the fd; assigning over one closes the old fd.
    DmaBufImage moved = std::move(image);
    EXPECT_TRUE(moved.plane_fd(0).valid());
    EXPECT_FALSE(image.plane_fd(0).valid());  // NOLINT(bugprone-use-after-move): moved from on purpose
    moved = opaque_image();
    EXPECT_TRUE(moved.plane_fd(0).valid());
}

}  // namespace
}  // namespace texshare
