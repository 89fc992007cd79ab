// Attacks with opaque_fd images (issue 15): a peer labels an fd as a driver's opaque memory
// (Vulkan OPAQUE_FD, NVIDIA's /dev/nvidiactl fds) when it is something else, or sends an
// identity out of range. The victim is a FrameReceiver; the checks are import_image()'s
// (image_wire.hpp, detail/opaque_fd_probe.hpp). Each refusal names the kind found, leaves no
// fd open (the fixture's count) and the peer still heard.
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "hostile/hostile_peer.hpp"
#include "texshare/opaque_memory.hpp"

namespace texshare::hostile {
namespace {

// A well-formed 16x16 ABGR8888 opaque_fd add_image for `id`, before any tampering.
FrameMessage opaque_add_image(std::uint64_t id) {
    FrameMessage message = add_image_message(id);
    ImageDescriptor d = message.descriptor();
    d.backing = static_cast<std::uint8_t>(Backing::opaque_fd);
    d.fourcc = DRM_FORMAT_ABGR8888;
    d.modifier = DRM_FORMAT_MOD_INVALID;
    d.planes[0] = WirePlane{};
    d.opaque.device_uuid[0] = 0x11;
    d.opaque.driver_uuid[0] = 0x22;
    d.opaque.allocation_size = 16 * 16 * 4;
    d.opaque.memory_type_index = 0;
    d.opaque.flags = opaque_memory_dedicated;
    d.opaque.image_usage = 0x7;
    message.set_descriptor(d);
    return message;
}

class OpaqueFdAttack : public ConsumerUnderAttack {
protected:
    void send_with(int fd, const FrameMessage& message = opaque_add_image(1)) { send(message, 0b1, {fd}); }
    // Refused, the message naming `kind`.
    void expect_kind(int fd, const std::string& kind) {
        send_with(fd);
        expect_refused(Errc::rejected, kind);
        EXPECT_EQ(victim_->image(1), nullptr);
        expect_still_usable();
    }
};

TEST_F(OpaqueFdAttack, OpaqueFdIsAMemfd) {
    // What Mesa's lavapipe exports as OPAQUE_FD: a memfd. Labelled opaque_fd it is refused.
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    expect_kind(memory.get(), "is a memfd (a regular file on the kernel's shm mount");
}

TEST_F(OpaqueFdAttack, OpaqueFdIsARegularFile) {
    UniqueFd file(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    ASSERT_TRUE(file.valid());
    expect_kind(file.get(), "is a regular file on");
}

TEST_F(OpaqueFdAttack, OpaqueFdIsADevShmFile) {
    const std::string path = fmt::format("/dev/shm/texshare-hostile-opaque-{}", ::getpid());
    UniqueFd shm(::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
    ::unlink(path.c_str());
    ASSERT_TRUE(shm.valid()) << "/dev/shm: " << std::strerror(errno);
    expect_kind(shm.get(), "is a regular file on");
}

TEST_F(OpaqueFdAttack, OpaqueFdIsAPipe) {
    int ends[2];
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    UniqueFd read_end(ends[0]), write_end(ends[1]);
    expect_kind(read_end.get(), "is a pipe or FIFO");
}

TEST_F(OpaqueFdAttack, OpaqueFdIsASocket) {
    UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    expect_kind(socket.get(), "is a socket");
}

TEST_F(OpaqueFdAttack, OpaqueFdIsAnEventfd) {
    // The anonymous inode every sync_file, eventfd, epoll and timerfd shares.
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    expect_kind(event.get(), "is an anonymous-inode file (a sync_file, eventfd");
}

TEST_F(OpaqueFdAttack, OpaqueFdIsADirectory) {
    UniqueFd directory(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    expect_kind(directory.get(), "is a directory");
}

TEST_F(OpaqueFdAttack, OpaqueFdIsADmaBuf) {
    // A DMA-BUF travels as Backing::dma_buf; labelled opaque_fd it is refused. This host
    // needs /dev/udmabuf to make one (the backports guest's vulkan_opaque_vm_test sends
    // lavapipe's DMA-BUF export labelled opaque_fd and asserts the same refusal).
    UniqueFd device(::open("/dev/udmabuf", O_RDWR | O_CLOEXEC));
    if (!device.valid())
        GTEST_SKIP() << "no /dev/udmabuf here to make a DMA-BUF (the backports guest's vulkan_opaque_vm_test "
                        "asserts the same refusal with lavapipe's DMA-BUF)";
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    struct {
        std::uint32_t memfd, flags;
        std::uint64_t offset, size;
    } create{static_cast<std::uint32_t>(memory.get()), 0x01, 0, 16 * 16 * 4};  // UDMABUF_FLAGS_CLOEXEC
    UniqueFd dma_buf(::ioctl(device.get(), _IOW('u', 0x42, decltype(create)), &create));
    ASSERT_TRUE(dma_buf.valid()) << "UDMABUF_CREATE: " << std::strerror(errno);
    expect_kind(dma_buf.get(), "is a DMA-BUF");
}

TEST_F(OpaqueFdAttack, IdentityOutOfRange) {
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    FrameMessage message = opaque_add_image(1);
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.opaque.allocation_size = 0; });
    send_with(null.get(), message);
    expect_refused(Errc::rejected, "allocation size 0 is outside");
    message = opaque_add_image(1);
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.opaque.memory_type_index = 77; });
    send_with(null.get(), message);
    expect_refused(Errc::rejected, "memory type index 77 is not below 32");
    message = opaque_add_image(1);
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.opaque.flags = 0x80000001; });
    send_with(null.get(), message);
    expect_refused(Errc::rejected, "unknown bits 0x80000000");
    message = opaque_add_image(1);
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.opaque.image_usage = 0x10000; });
    send_with(null.get(), message);
    expect_refused(Errc::rejected, "image usage 0x10000 is empty or has bits beyond 0xff");
    message = opaque_add_image(1);
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.planes[0].stride = 64; });  // a layout only the driver knows
    send_with(null.get(), message);
    expect_refused(Errc::invalid_layout, "must be 0");
    EXPECT_EQ(victim_->image(1), nullptr);
    expect_still_usable();
}

TEST_F(OpaqueFdAttack, SharedMemoryImageWithOpaqueBytes) {
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    FrameMessage message = add_image_message(1);
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.opaque.driver_uuid[3] = 9; });
    send(message, 0b1, {memory.get()});
    expect_refused(Errc::protocol, "opaque memory bytes are not zero");
    expect_still_usable();
}

// The limit, asserted: any character device passes the receive checks (/dev/null here);
// only the driver's import can tell it is no memory (VK_ERROR_INVALID_EXTERNAL_HANDLE).
TEST_F(OpaqueFdAttack, AnyCharacterDevicePassesReceiptOnlyTheImportCanTell) {
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    send_with(null.get());
    auto handled = victim_->dispatch();
    ASSERT_TRUE(handled) << handled.error().message;
    ASSERT_NE(victim_->image(1), nullptr);
    EXPECT_EQ(victim_->image(1)->backing(), Backing::opaque_fd);
    EXPECT_EQ(victim_->image(1)->opaque_memory().driver_uuid[0], 0x22);
}

}  // namespace
}  // namespace texshare::hostile
