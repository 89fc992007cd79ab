// VM lane, 6.12 guest only (TEXSHARE_VM_BACKPORTS_TESTS): CPU-rendered shared memory turned
// into DMA-BUFs by udmabuf, across two processes (support/two_process.hpp, images over an
// ImageChannel through import_image's checks). Either side converts: the producer (hands out
// the DMA-BUF) or the consumer (receives the memfd, converts once). Lavapipe imports the
// result and reads every pixel back, also after later CPU writes (through the memfd, or
// through the DMA-BUF's mmap with DMA_BUF_IOCTL_SYNC) without a new import. The kernel's own
// refusals are asserted next to UdmabufDevice's, and EGL's refusal as the fact it is.
#include "texshare/udmabuf.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "support/two_process.hpp"
#include "support/vulkan_readback.hpp"
#include "texshare/image_wire.hpp"
#include "texshare/memfd_allocator.hpp"
#include "vm/gpu_free_dma_buf.hpp"

namespace texshare {
namespace {

using testing::expect_cpu_pattern;
using testing::expect_vulkan_pattern;
using testing::exporter_name;
using testing::Peer;
using testing::run_alone;
using testing::run_pair;
using testing::send_note;
using testing::test_fourcc;
using testing::value_or_fail;
using testing::wait_note;
using testing::write_pattern;

using UdmabufVmTest = testing::FdLeakTest;

constexpr std::uint32_t width = 50;  // 200 bytes, rows padded to 256
constexpr std::uint32_t height = 30;

// A CPU renderer's frame: shared memory with GPU-friendly 256-byte rows, pattern `seed` in it.
std::optional<DmaBufImage> render_cpu_frame(std::uint32_t seed) {
    auto image = value_or_fail(MemfdAllocator({256}).allocate(width, height, test_fourcc), "memfd allocation");
    if (image) write_pattern(*image, seed);
    return image;
}

// The kernel's answer to UDMABUF_CREATE of a whole memfd, bypassing UdmabufDevice's checks:
// 0 and a closed DMA-BUF when it accepts, else its errno.
int raw_udmabuf_create(BorrowedFd memfd, std::uint64_t size) {
    UniqueFd device(::open("/dev/udmabuf", O_RDWR | O_CLOEXEC));
    if (!device) return errno;
    udmabuf_create request{static_cast<std::uint32_t>(memfd.get()), UDMABUF_FLAGS_CLOEXEC, 0, size};
    UniqueFd created(::ioctl(device.get(), UDMABUF_CREATE, &request));
    return created ? 0 : errno;
}

UniqueFd sealed_memfd(std::uint64_t size, unsigned seals) {
    UniqueFd fd(::memfd_create("udmabuf-vm-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    if (seals != 0) {
        EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, seals), 0);
    }
    return fd;
}

// A 64x64 ABGR8888 shared_memory image (16 KiB, four pages) on `fd`.
std::optional<DmaBufImage> image_on(UniqueFd fd) {
    PlaneFds fds;
    fds[0] = std::move(fd);
    return value_or_fail(DmaBufImage::adopt(*make_packed_layout(test_fourcc, 64, 64), Backing::shared_memory,
                                            std::move(fds)),
                         "adopt");
}

TEST_F(UdmabufVmTest, ProducerConvertsItsCpuFrameConsumerReadsItWithVulkan) {
    run_pair(
        [](Peer& peer) {
            auto frame = render_cpu_frame(1);
            ASSERT_TRUE(frame);
            auto device = UdmabufDevice::open();
            ASSERT_TRUE(device) << device.error().message;
            auto dma_buf = device->convert(*frame);
            ASSERT_TRUE(dma_buf) << dma_buf.error().message;
            EXPECT_EQ(dma_buf->layout(), frame->layout()) << "same layout, same pages";
            EXPECT_EQ(exporter_name(dma_buf->plane_fd(0)), "udmabuf");
            ASSERT_TRUE(send_image(peer.images, 1, *dma_buf));
            wait_note(peer);
            write_pattern(*frame, 2);  // through the memfd: the same pages
            send_note(peer, {2, 0, 0});
            wait_note(peer);
            write_pattern(*dma_buf, 3);  // through the DMA-BUF's mmap, between SYNC start and end
            expect_cpu_pattern(*frame, 3);
            send_note(peer, {4, 0, 0});
            wait_note(peer);
        },
        [](Peer& peer) {
            auto received = receive_image(peer.images);  // a DMA-BUF like any other
            ASSERT_TRUE(received) << received.error().message;
            EXPECT_EQ(received->image.backing(), Backing::dma_buf);
            EXPECT_EQ(exporter_name(received->image.plane_fd(0)), "udmabuf");
            expect_cpu_pattern(received->image, 1);
            auto vulkan = testing::VulkanContext::create();
            ASSERT_TRUE(vulkan) << vulkan.error().message;
            auto imported = testing::VulkanImportedImage::import(*vulkan, received->image);
            ASSERT_TRUE(imported) << imported.error().message;
            EXPECT_TRUE(imported->explicit_row_pitch());
            expect_vulkan_pattern(*imported, received->image, 1, "first frame");
            send_note(peer, {1, 0, 0});
            wait_note(peer);
            expect_vulkan_pattern(*imported, received->image, 2, "memfd write, same import");
            send_note(peer, {3, 0, 0});
            wait_note(peer);
            expect_vulkan_pattern(*imported, received->image, 3, "DMA-BUF write, same import");
            send_note(peer, {5, 0, 0});
        });
}

TEST_F(UdmabufVmTest, ConsumerConvertsAReceivedSharedMemoryFrameOnce) {
    run_pair(
        [](Peer& peer) {
            auto frame = render_cpu_frame(6);
            ASSERT_TRUE(frame);
            ASSERT_TRUE(send_image(peer.images, 1, *frame));
            wait_note(peer);
            write_pattern(*frame, 7);
            send_note(peer, {2, 0, 0});
            wait_note(peer);
        },
        [](Peer& peer) {
            auto received = receive_image(peer.images);
            ASSERT_TRUE(received) << received.error().message;
            ASSERT_EQ(received->image.backing(), Backing::shared_memory);
            auto device = UdmabufDevice::open();
            ASSERT_TRUE(device) << device.error().message;
            auto dma_buf = device->convert(received->image);  // once per image, kept with the import
            ASSERT_TRUE(dma_buf) << dma_buf.error().message;
            auto vulkan = testing::VulkanContext::create();
            ASSERT_TRUE(vulkan) << vulkan.error().message;
            auto imported = testing::VulkanImportedImage::import(*vulkan, *dma_buf);
            ASSERT_TRUE(imported) << imported.error().message;
            expect_vulkan_pattern(*imported, *dma_buf, 6, "converted frame");
            send_note(peer, {1, 0, 0});
            wait_note(peer);
            expect_vulkan_pattern(*imported, *dma_buf, 7, "producer's next frame, same import");
            send_note(peer, {3, 0, 0});
        });
}

// Planes in two memfds: one DMA-BUF of both (UDMABUF_CREATE_LIST), the second plane moved.
TEST_F(UdmabufVmTest, PlanesInTwoMemfdsBecomeOneDmaBuf) {
    run_alone([](Peer&) {
        const ImageLayout layout = *make_packed_layout(DRM_FORMAT_NV12, 64, 64, 64);
        PlaneFds fds;
        fds[0] = sealed_memfd(4096, F_SEAL_SHRINK);  // Y: 64 rows of 64 bytes
        fds[1] = sealed_memfd(8192, F_SEAL_SHRINK);  // UV, at offset 4096 of its memfd
        ImageLayout split = layout;
        split.planes[1].offset = 4096;
        auto image = DmaBufImage::adopt(split, Backing::shared_memory, std::move(fds));
        ASSERT_TRUE(image) << image.error().message;
        auto mapping = image->map(Access::write);
        ASSERT_TRUE(mapping);
        std::ranges::fill(mapping->plane(0), std::byte{0x11});
        std::ranges::fill(mapping->plane(1), std::byte{0x22});
        ASSERT_TRUE(mapping->finish());
        auto device = UdmabufDevice::open();
        ASSERT_TRUE(device);
        auto dma_buf = device->convert(*image);
        ASSERT_TRUE(dma_buf) << dma_buf.error().message;
        EXPECT_EQ(dma_buf->layout().planes[1].offset, 4096U + 4096U) << "after the first memfd's 4096 bytes";
        EXPECT_EQ(*detail::dma_buf_size(dma_buf->plane_fd(0)), 4096U + 8192U);
        auto read = dma_buf->map(Access::read);
        ASSERT_TRUE(read) << read.error().message;
        EXPECT_TRUE(std::ranges::all_of(read->plane(0), [](std::byte b) { return b == std::byte{0x11}; }));
        EXPECT_TRUE(std::ranges::all_of(read->plane(1), [](std::byte b) { return b == std::byte{0x22}; }));
    });
}

// A peer can send a small image on a large sparse memfd: only the image's pages become the
// DMA-BUF, and only they are faulted in (udmabuf pins every page it is given).
TEST_F(UdmabufVmTest, OnlyTheImagesPagesOfALargerMemfdArePinned) {
    run_alone([](Peer&) {
        constexpr std::uint64_t sparse = 32ULL << 20;  // 32 MiB, never written
        PlaneFds fds;
        fds[0] = sealed_memfd(sparse, F_SEAL_SHRINK | F_SEAL_GROW);
        const BorrowedFd memfd = fds[0].borrow();
        auto image = DmaBufImage::adopt(*make_packed_layout(test_fourcc, 16, 16), Backing::shared_memory,
                                        std::move(fds));  // 1 KiB of pixels
        ASSERT_TRUE(image) << image.error().message;
        auto device = UdmabufDevice::open();
        ASSERT_TRUE(device) << device.error().message;
        auto dma_buf = device->convert(*image);
        ASSERT_TRUE(dma_buf) << dma_buf.error().message;
        EXPECT_EQ(*detail::dma_buf_size(dma_buf->plane_fd(0)), 4096U) << "one page, not the memfd's 32 MiB";
        struct stat info {};
        ASSERT_EQ(::fstat(memfd.get(), &info), 0);
        EXPECT_LE(static_cast<std::uint64_t>(info.st_blocks) * 512, 4096U) << "the memfd was faulted in beyond the image";
    });
}

// What UdmabufDevice refuses before the ioctl, the kernel refuses too (EINVAL): the checks
// say why, where the kernel only says EINVAL.
TEST_F(UdmabufVmTest, RefusesWhatTheKernelRefusesAndSaysWhy) {
    run_alone([](Peer&) {
        auto device = UdmabufDevice::open();
        ASSERT_TRUE(device) << device.error().message;
        struct Case {
            const char* name;
            UniqueFd fd;
            std::uint64_t size;
            const char* reason;
        };
        UniqueFd tmpfile(::open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
        ASSERT_TRUE(tmpfile.valid()) << "O_TMPFILE on /dev/shm: errno " << errno;
        ASSERT_EQ(::ftruncate(tmpfile.get(), 16384), 0);
        Case cases[] = {
            {"unsealed", sealed_memfd(16384, 0), 16384, "without F_SEAL_SHRINK"},
            {"write-sealed", sealed_memfd(16384, F_SEAL_SHRINK | F_SEAL_WRITE), 16384, "F_SEAL_WRITE"},
            {"future-write-sealed", sealed_memfd(16384, F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE), 16384,
             "F_SEAL_FUTURE_WRITE"},
            {"size not page-aligned", sealed_memfd(16384 + 100, F_SEAL_SHRINK), 16384 + 100, "not a whole number"},
            {"not a memfd (O_TMPFILE)", std::move(tmpfile), 16384, "is not a memfd"},
        };
        for (Case& c : cases) {
            SCOPED_TRACE(c.name);
            EXPECT_EQ(raw_udmabuf_create(c.fd.borrow(), c.size), EINVAL) << "the kernel's own answer";
            auto image = image_on(std::move(c.fd));
            ASSERT_TRUE(image);
            auto refused = device->convert(*image);
            ASSERT_FALSE(refused);
            EXPECT_EQ(refused.error().code, Errc::invalid_argument);
            EXPECT_NE(refused.error().message.find(c.reason), std::string::npos) << refused.error().message;
        }
        // Past the module's size limit (size_limit_mb, 64 MiB by default) only the kernel
        // refuses: its errno is named, with the limit.
        auto big = MemfdAllocator().allocate(4352, 4096, DRM_FORMAT_ARGB8888);  // 68 MiB, never touched
        ASSERT_TRUE(big) << big.error().message;
        auto over = device->convert(*big);
        ASSERT_FALSE(over);
        EXPECT_EQ(over.error().code, Errc::system);
        EXPECT_EQ(over.error().sys_errno, EINVAL);
        EXPECT_NE(over.error().message.find("module limit: 64 MiB per buffer"), std::string::npos)
            << over.error().message;
    });
}

// A peer's memfd with F_SEAL_WRITE passes import_image (it is sealed against shrinking) but
// cannot become a DMA-BUF: the consumer's conversion says so. An unsealed one never arrives.
TEST_F(UdmabufVmTest, ConsumerRefusesToConvertAWriteSealedPeerMemfd) {
    run_pair(
        [](Peer& peer) {
            auto sealed = image_on(sealed_memfd(16384, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));
            ASSERT_TRUE(sealed);
            ASSERT_TRUE(send_image(peer.images, 1, *sealed));
            auto unsealed = image_on(sealed_memfd(16384, 0));
            ASSERT_TRUE(unsealed);
            ASSERT_TRUE(send_image(peer.images, 2, *unsealed));
            wait_note(peer);
        },
        [](Peer& peer) {
            auto received = receive_image(peer.images);
            ASSERT_TRUE(received) << received.error().message;
            auto device = UdmabufDevice::open();
            ASSERT_TRUE(device);
            auto refused = device->convert(received->image);
            ASSERT_FALSE(refused);
            EXPECT_EQ(refused.error().code, Errc::invalid_argument);
            EXPECT_NE(refused.error().message.find("F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE (0xe)"), std::string::npos)
                << refused.error().message;
            auto unsealed = receive_image(peer.images);
            ASSERT_FALSE(unsealed);
            EXPECT_EQ(unsealed.error().code, Errc::rejected);
            EXPECT_NE(unsealed.error().message.find("missing 0x2"), std::string::npos) << unsealed.error().message;
            send_note(peer, {1, 0, 0});
        });
}

TEST_F(UdmabufVmTest, EglCannotImportAUdmabufAndVgemsSuccessIsCaught) {
    run_pair(
        [](Peer& peer) {
            auto frame = render_cpu_frame(8);
            ASSERT_TRUE(frame);
            auto device = UdmabufDevice::open();
            ASSERT_TRUE(device) << device.error().message;
            auto dma_buf = device->convert(*frame);
            ASSERT_TRUE(dma_buf) << dma_buf.error().message;
            ASSERT_TRUE(send_image(peer.images, 1, *dma_buf));
            wait_note(peer);
        },
        [](Peer& peer) {
            auto received = receive_image(peer.images);
            ASSERT_TRUE(received) << received.error().message;
            testing::expect_egl_cannot_import(received->image, 8);
            send_note(peer, {1, 0, 0});
        });
}

}  // namespace
}  // namespace texshare
