// VM lane: real kernel DMA-BUFs from GBM (vgem / virtio_gpu with Mesa's kms_swrast) inside
// the qemu guest started by tests/vm/run_vm_lane.sh. Fails, never skips, without a device.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <string>

#include "support/channel_pair.hpp"
#include "support/syscall_allowlist.hpp"
#include "texshare/gbm/allocator.hpp"
#include "texshare/image_wire.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/sync_file.hpp"

namespace texshare {
namespace {

gbm::Device open_device() {
    auto device = gbm::Device::open_default();
    if (!device) {
        ADD_FAILURE() << device.error().message;
        std::abort();
    }
    return std::move(*device);
}

DmaBufImage allocate_linear(const gbm::Device& device, std::uint32_t w, std::uint32_t h) {
    auto image = device.allocate({w, h, DRM_FORMAT_ABGR8888, {DRM_FORMAT_MOD_LINEAR}, 0});
    EXPECT_TRUE(image) << image.error().message;
    return image ? std::move(*image) : DmaBufImage();
}

std::byte pattern(std::size_t i) { return static_cast<std::byte>((i * 31 + 7) & 0xff); }

using GbmVmTest = testing::FdLeakTest;
using GbmWireVmTest = testing::ChannelPairTest<ImageChannel>;

TEST_F(GbmVmTest, DiscoversAnAllocatingDevice) {
    auto nodes = gbm::list_drm_nodes();
    ASSERT_TRUE(nodes);
    ASSERT_FALSE(nodes->empty());
    gbm::Device device = open_device();
    EXPECT_TRUE(device.node().driver == "vgem" || device.node().driver == "virtio_gpu") << device.node().driver;
    EXPECT_FALSE(device.node().render_node) << "vgem and virtio_gpu refuse dumb buffers on render nodes";
    struct stat info {};
    ASSERT_EQ(::stat(device.node().path.c_str(), &info), 0);
    EXPECT_EQ(device.node().device_number, info.st_rdev);
}

TEST_F(GbmVmTest, LinearImageIsAWritableDmaBuf) {
    gbm::Device device = open_device();
    DmaBufImage image = allocate_linear(device, 64, 64);
    EXPECT_EQ(image.backing(), Backing::dma_buf);
    EXPECT_EQ(image.layout().modifier, DRM_FORMAT_MOD_LINEAR);
    EXPECT_GE(image.layout().planes[0].stride, 256U);
    EXPECT_TRUE(*detail::is_dma_buf(image.plane_fd(0)));
    EXPECT_EQ(::fcntl(image.plane_fd(0).get(), F_GETFL) & O_ACCMODE, O_RDWR) << "exported with DRM_RDWR";
    {
        auto mapping = image.map(Access::write);  // brackets with DMA_BUF_IOCTL_SYNC
        ASSERT_TRUE(mapping) << mapping.error().message;
        for (std::size_t i = 0; i < mapping->plane(0).size(); ++i) mapping->plane(0)[i] = pattern(i);
        ASSERT_TRUE(mapping->finish());
    }
    auto reader = image.map(Access::read);
    ASSERT_TRUE(reader);
    for (std::size_t i = 0; i < reader->plane(0).size(); ++i) ASSERT_EQ(reader->plane(0)[i], pattern(i));
}

TEST_F(GbmVmTest, ModifierFallbacks) {
    gbm::Device device = open_device();
    // An explicit modifier this driver cannot do, then LINEAR: falls back to LINEAR.
    auto linear = device.allocate({32, 32, DRM_FORMAT_ARGB8888, {I915_FORMAT_MOD_Y_TILED, DRM_FORMAT_MOD_LINEAR}, 0});
    ASSERT_TRUE(linear) << linear.error().message;
    EXPECT_EQ(linear->layout().modifier, DRM_FORMAT_MOD_LINEAR);
    // Implicit only: recorded as INVALID.
    auto implicit = device.allocate({32, 32, DRM_FORMAT_ARGB8888, {DRM_FORMAT_MOD_INVALID}, 0});
    ASSERT_TRUE(implicit) << implicit.error().message;
    EXPECT_EQ(implicit->layout().modifier, DRM_FORMAT_MOD_INVALID);
    // Nothing acceptable: a clear error naming what was tried.
    auto tiled = device.allocate({32, 32, DRM_FORMAT_ARGB8888, {I915_FORMAT_MOD_Y_TILED}, 0});
    ASSERT_FALSE(tiled);
    EXPECT_EQ(tiled.error().code, Errc::unsupported);
    EXPECT_NE(tiled.error().message.find("with 1 modifiers"), std::string::npos) << tiled.error().message;
}

TEST_F(GbmVmTest, BadRequestsAreErrors) {
    gbm::Device device = open_device();
    EXPECT_EQ(device.allocate({0, 32, DRM_FORMAT_ARGB8888, {}, 0}).error().code, Errc::invalid_argument);
    EXPECT_EQ(device.allocate({32, 32, 0x20202020, {}, 0}).error().code, Errc::unsupported);
    EXPECT_EQ(gbm::Device::open("/dev/dri/no-such-node").error().sys_errno, ENOENT);
}

TEST_F(GbmVmTest, ReportsAllocatableFormats) {
    gbm::Device device = open_device();
    const FormatSet formats = device.allocatable_formats();
    EXPECT_TRUE(formats.contains(DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR));
    EXPECT_TRUE(formats.contains(DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_INVALID)) << "implicit";
    EXPECT_EQ(formats.find(DRM_FORMAT_NV12), nullptr) << "kms_swrast allocates no NV12";
}

// The render formats (EGL's, in production) are probed one modifier at a time: what the
// device cannot allocate (kms_swrast tiles nothing) is left out, what it can is listed in
// the render formats' order, before LINEAR and implicit.
TEST_F(GbmVmTest, AllocatableFormatsProbeTheRenderModifiers) {
    gbm::Device device = open_device();
    const FormatSet render{{DRM_FORMAT_ABGR8888, I915_FORMAT_MOD_Y_TILED},
                           {DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR},
                           {DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR}};
    const FormatSet formats = device.allocatable_formats(render);
    const DrmFormat* abgr = formats.find(DRM_FORMAT_ABGR8888);
    ASSERT_NE(abgr, nullptr);
    EXPECT_FALSE(abgr->has(I915_FORMAT_MOD_Y_TILED)) << "a modifier the probe could not allocate";
    ASSERT_FALSE(abgr->modifiers.empty());
    EXPECT_EQ(abgr->modifiers.front().modifier, DRM_FORMAT_MOD_LINEAR);
    EXPECT_EQ(formats.find(DRM_FORMAT_NV12), nullptr);
    EXPECT_EQ(formats, device.allocatable_formats()) << "here the render formats add nothing GBM allocates";
}

// gbm_bo_create_with_modifiers2 chooses among the caller's list: a list with a modifier
// the driver cannot do and one it can gives the one it can.
TEST_F(GbmVmTest, AllocationPicksAModifierItCanAmongTheCallers) {
    gbm::Device device = open_device();
    auto image = device.allocate({32, 32, DRM_FORMAT_ABGR8888, {I915_FORMAT_MOD_Y_TILED, DRM_FORMAT_MOD_LINEAR}, 0});
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_EQ(image->layout().modifier, DRM_FORMAT_MOD_LINEAR);
}

TEST_F(GbmVmTest, Nv12IsNotAllocatableByKmsSwrast) {
    // Mesa 22.3's kms_swrast allocates dumb buffers, which are single-plane RGB: NV12
    // fails with EINVAL whatever the flags. EGL still imports NV12 (see egl_vm_test's
    // carrier-buffer test). If this starts passing, the allocator gained NV12: update both.
    gbm::Device device = open_device();
    auto nv12 = device.allocate({64, 64, DRM_FORMAT_NV12, {}, 0});
    ASSERT_FALSE(nv12);
    EXPECT_EQ(nv12.error().code, Errc::unsupported);
}

TEST_F(GbmVmTest, SyncFileExportAndImport) {
    gbm::Device device = open_device();
    DmaBufImage image = allocate_linear(device, 16, 16);
    auto fence = export_sync_file(image.plane_fd(0), Access::read_write);
    ASSERT_TRUE(fence) << fence.error().message;
    char link[PATH_MAX]{};
    ASSERT_GT(::readlink(fmt::format("/proc/self/fd/{}", fence->get()).c_str(), link, sizeof link - 1), 0);
    EXPECT_STREQ(link, "anon_inode:sync_file");
    EXPECT_TRUE(import_sync_file(image.plane_fd(0), fence->borrow(), Access::write));
}

TEST_F(GbmWireVmTest, DmaBufCrossesProcessesAndKeepsItsPixels) {
    gbm::Device device = open_device();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {  // producer: allocate, write, share
        receiver_.close();
        const int fds_before = testing::open_fd_count();
        int status = 0;
        {
            DmaBufImage image = allocate_linear(device, 64, 32);
            auto mapping = image.map(Access::write);
            if (!mapping) ::_exit(2);
            for (std::size_t i = 0; i < mapping->plane(0).size(); ++i) mapping->plane(0)[i] = pattern(i);
            if (!mapping->finish()) ::_exit(3);
            if (!send_image(sender_, 21, image)) ::_exit(4);
            if (!sender_.receive()) status = 5;  // wait until the consumer is done
        }
        ::_exit(status != 0 ? status : (testing::open_fd_count() == fds_before ? 0 : 6));
    }
    {
        auto received = receive_image(receiver_);  // checks DMA_BUF_MAGIC and the real size
        ASSERT_TRUE(received) << received.error().message;
        EXPECT_EQ(received->id, 21U);
        EXPECT_EQ(received->image.backing(), Backing::dma_buf);
        auto mapping = received->image.map(Access::read);
        ASSERT_TRUE(mapping) << mapping.error().message;
        for (std::size_t i = 0; i < mapping->plane(0).size(); ++i) ASSERT_EQ(mapping->plane(0)[i], pattern(i));
    }
    ASSERT_TRUE(receiver_.send(ImageDescriptor{}));
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "producer status " << status;
}

TEST_F(GbmWireVmTest, DescriptorClaimingMoreThanTheBufferIsRejected) {
    gbm::Device device = open_device();
    DmaBufImage image = allocate_linear(device, 64, 64);
    const std::uint64_t real_size = *detail::dma_buf_size(image.plane_fd(0));
    ImageDescriptor claim = describe_image(3, image);
    claim.height = 128;  // twice the rows the buffer has
    ASSERT_TRUE(sender_.send(claim, image.plane_fds()));
    auto received = receive_image(receiver_);
    ASSERT_FALSE(received);
    EXPECT_EQ(received.error().code, Errc::rejected);
    EXPECT_NE(received.error().message.find(fmt::format("its fd holds {} bytes", real_size)), std::string::npos)
        << received.error().message;
}

// dma_buf_llseek answers SEEK_END with the size without moving the file position (and
// refuses SEEK_CUR), so sizing a DMA-BUF that way leaves nothing to put back
// (/proc/self/fdinfo shows the position).
TEST_F(GbmWireVmTest, LseekSizesADmaBufWithoutMovingItsPosition) {
    gbm::Device device = open_device();
    DmaBufImage image = allocate_linear(device, 64, 64);
    ASSERT_TRUE(send_image(sender_, 5, image));
    auto received = receive_image(receiver_);
    ASSERT_TRUE(received) << received.error().message;
    const int fd = received->image.plane_fd(0).get();
    EXPECT_GT(::lseek(fd, 0, SEEK_END), 0);
    std::ifstream fdinfo(fmt::format("/proc/self/fdinfo/{}", fd));
    std::string line;
    std::uint64_t position = 1;
    while (std::getline(fdinfo, line)) {
        if (line.rfind("pos:", 0) == 0) position = std::strtoull(line.c_str() + 4, nullptr, 10);
    }
    EXPECT_EQ(position, 0U) << "SEEK_END moved a DMA-BUF's position";
    EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), -1) << "SEEK_CUR means nothing to a DMA-BUF";
}

// What lets the receive side size a DMA-BUF plane with one fstat: every DMA-BUF is in one
// file system (one st_dev) and, since Linux 5.3, its inode carries its size.
TEST_F(GbmVmTest, FstatTellsADmaBufBySt_devAndItsSizeByTheInode) {
    gbm::Device device = open_device();
    DmaBufImage small = allocate_linear(device, 64, 64), wide = allocate_linear(device, 512, 16);
    struct stat small_info {}, wide_info {}, memfd_info {};
    ASSERT_EQ(::fstat(small.plane_fd(0).get(), &small_info), 0);
    ASSERT_EQ(::fstat(wide.plane_fd(0).get(), &wide_info), 0);
    EXPECT_EQ(small_info.st_dev, wide_info.st_dev) << "DMA-BUFs from one file system";
    EXPECT_EQ(static_cast<std::uint64_t>(small_info.st_size), *detail::dma_buf_size(small.plane_fd(0)));
    EXPECT_EQ(static_cast<std::uint64_t>(wide_info.st_size), *detail::dma_buf_size(wide.plane_fd(0)));
    auto memory = MemfdAllocator().allocate(64, 64, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(memory) << memory.error().message;
    ASSERT_EQ(::fstat(memory->plane_fd(0).get(), &memfd_info), 0);
    EXPECT_NE(memfd_info.st_dev, small_info.st_dev);
}

#if defined(TEXSHARE_CAN_CONFINE_SYSCALLS)
// Once a DMA-BUF has been seen, receiving one costs its plane one statx: a child receives
// images under a seccomp filter that kills it on fstatfs, lseek or fcntl.
TEST_F(GbmWireVmTest, OnceADmaBufWasSeenAPlaneIsCheckedWithOneStatx) {
    gbm::Device device = open_device();
    DmaBufImage first = allocate_linear(device, 32, 32), image = allocate_linear(device, 64, 64);
    ASSERT_TRUE(send_image(sender_, 1, first));
    ASSERT_TRUE(receive_image(receiver_));
    ASSERT_NE(detail::learned_dma_buf_device().load(), dev_t{0});
    testing::expect_only_syscalls(
        {__NR_sendmsg, __NR_recvmsg, __NR_statx, __NR_close, __NR_brk, __NR_mmap, __NR_munmap},
        "sendmsg, recvmsg, statx (AT_STATX_DONT_SYNC: never asks the file's owner), close or memory", [&] {
            for (std::uint64_t id = 2; id < 12; ++id) {
                if (!send_image(sender_, id, image)) return false;
                auto received = receive_image(receiver_);
                if (!received || received->image.layout().height != 64) return false;
            }
            return true;
        });
}
#endif

// Learning the DMA-BUF file system's device must not let anything else through.
TEST_F(GbmWireVmTest, AMemfdDeclaredDmaBufIsRejectedAfterDmaBufsWereSeen) {
    gbm::Device device = open_device();
    DmaBufImage image = allocate_linear(device, 16, 16);
    ASSERT_TRUE(send_image(sender_, 1, image));
    ASSERT_TRUE(receive_image(receiver_));
    auto memory = MemfdAllocator().allocate(16, 16, DRM_FORMAT_ABGR8888);
    ASSERT_TRUE(memory) << memory.error().message;
    ImageDescriptor claim = describe_image(2, *memory);
    claim.backing = static_cast<std::uint8_t>(Backing::dma_buf);
    ASSERT_TRUE(sender_.send(claim, memory->plane_fds()));
    auto received = receive_image(receiver_);
    ASSERT_FALSE(received);
    EXPECT_EQ(received.error().code, Errc::rejected);
    EXPECT_NE(received.error().message.find("is declared dma_buf but its fd is not a DMA-BUF"), std::string::npos)
        << received.error().message;
}

TEST_F(GbmWireVmTest, DmaBufDeclaredAsSharedMemoryIsRejected) {
    gbm::Device device = open_device();
    DmaBufImage image = allocate_linear(device, 16, 16);
    ImageDescriptor claim = describe_image(4, image);
    claim.backing = static_cast<std::uint8_t>(Backing::shared_memory);
    ASSERT_TRUE(sender_.send(claim, image.plane_fds()));
    auto received = receive_image(receiver_);
    ASSERT_FALSE(received);
    EXPECT_NE(received.error().message.find("is not a memfd of the kernel's shm mount"), std::string::npos);
}

}  // namespace
}  // namespace texshare
