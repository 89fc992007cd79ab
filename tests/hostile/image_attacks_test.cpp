// Attacks on a shared image: what the fds really are, and what the descriptor claims about
// them. The victim is a FrameReceiver; the checks are import_image()'s, the same for
// receive_image() on an ImageChannel.
#include <sys/eventfd.h>
#include <sys/stat.h>

#include <limits>

#include "hostile/hostile_peer.hpp"

namespace texshare::hostile {
namespace {

using ImageAttack = ConsumerUnderAttack;

// Sends a 16x16 ARGB8888 shared-memory add_image for id 1 whose plane 0 fd is `fd`.
class FdKindAttack : public ImageAttack {
protected:
    void send_with(int fd) { send(add_image_message(1), 0b1, {fd}); }
    void expect_not_a_memfd() {
        expect_refused(Errc::rejected, "is not a memfd of the kernel's shm mount");
        EXPECT_EQ(victim_->image(1), nullptr);
        expect_still_usable();
    }
};

TEST_F(FdKindAttack, PlaneFdIsADirectory) {
    UniqueFd directory(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    send_with(directory.get());
    expect_not_a_memfd();
}

TEST_F(FdKindAttack, PlaneFdIsAPipe) {
    int ends[2];
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    UniqueFd read_end(ends[0]), write_end(ends[1]);
    send_with(read_end.get());
    expect_not_a_memfd();
}

TEST_F(FdKindAttack, PlaneFdIsASocket) {
    UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    send_with(socket.get());
    expect_not_a_memfd();
}

TEST_F(FdKindAttack, PlaneFdIsAFifo) {
    const std::string path = fmt::format("/tmp/texshare-hostile-fifo-{}", ::getpid());
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    UniqueFd fifo(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK));
    ::unlink(path.c_str());
    send_with(fifo.get());
    expect_not_a_memfd();
}

TEST_F(FdKindAttack, PlaneFdIsAnEventfd) {
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    send_with(event.get());
    expect_not_a_memfd();
}

TEST_F(FdKindAttack, PlaneFdIsDevZero) {
    UniqueFd zero(::open("/dev/zero", O_RDWR | O_CLOEXEC));
    send_with(zero.get());
    expect_not_a_memfd();
}

TEST_F(FdKindAttack, PlaneFdIsARegularFile) {
    // A file another process can truncate under the mapping (SIGBUS): refused like the rest.
    UniqueFd file(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    ASSERT_TRUE(file.valid());
    ASSERT_EQ(::ftruncate(file.get(), 4096), 0);
    send_with(file.get());
    expect_not_a_memfd();
}

TEST_F(FdKindAttack, UnsealedMemfd) {
    UniqueFd memory(::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    ASSERT_EQ(::ftruncate(memory.get(), 4096), 0);
    send_with(memory.get());
    expect_refused(Errc::rejected, "is a memfd with seals 0x0, missing 0x2");
    expect_still_usable();
}

TEST_F(FdKindAttack, MemfdSealedAgainstGrowingButNotShrinking) {
    UniqueFd memory(::memfd_create("grow-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    ASSERT_EQ(::ftruncate(memory.get(), 4096), 0);
    ASSERT_EQ(::fcntl(memory.get(), F_ADD_SEALS, F_SEAL_GROW), 0);
    send_with(memory.get());
    expect_refused(Errc::rejected, "is a memfd with seals 0x4, missing 0x2");
    expect_still_usable();
}

TEST_F(FdKindAttack, MemfdTruncatedBeforeSealingIsSmallerThanClaimed) {
    UniqueFd memory = sealed_memfd(100);  // the image needs 16 * 64 = 1024 bytes
    send_with(memory.get());
    expect_refused(Errc::rejected, "plane 0 ends at byte 1024 but its fd holds 100 bytes");
    expect_still_usable();
}

TEST_F(FdKindAttack, MemfdClaimedToBeADmaBuf) {
    UniqueFd memory = sealed_memfd(1024);
    FrameMessage message = add_image_message(1);
    message.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.backing = static_cast<std::uint8_t>(Backing::dma_buf); });
    send(message, 0b1, {memory.get()});
    expect_refused(Errc::rejected, "is declared dma_buf but its fd is not a DMA-BUF");
    expect_still_usable();
}

// Descriptor lies, each over a real sealed memfd big enough for an honest 16x16 image.
class DescriptorAttack : public ImageAttack {
protected:
    void send_tampered(void (*tamper)(ImageDescriptor&), std::uint8_t mask = 0b1, int fd_count = 1) {
        UniqueFd memory = sealed_memfd(16 * 16 * 4);
        FrameMessage message = add_image_message(1);
        message.edit_payload<ImageDescriptor>(tamper);
        send(message, mask, std::vector<int>(static_cast<std::size_t>(fd_count), memory.get()));
    }
    void expect_refused_then_usable(Errc code, const std::string& needle) {
        expect_refused(code, needle);
        EXPECT_EQ(victim_->image(1), nullptr);
        expect_still_usable();
    }
};

TEST_F(DescriptorAttack, ZeroWidth) {
    send_tampered([](ImageDescriptor& d) { d.width = 0; });
    expect_refused_then_usable(Errc::invalid_layout, "size 0x16 is outside");
}

TEST_F(DescriptorAttack, ZeroHeight) {
    send_tampered([](ImageDescriptor& d) { d.height = 0; });
    expect_refused_then_usable(Errc::invalid_layout, "size 16x0 is outside");
}

TEST_F(DescriptorAttack, HugeDimensions) {
    send_tampered([](ImageDescriptor& d) { d.width = d.height = std::numeric_limits<std::uint32_t>::max(); });
    expect_refused_then_usable(Errc::invalid_layout, "is outside 1..16384");
}

TEST_F(DescriptorAttack, StrideSmallerThanARow) {
    send_tampered([](ImageDescriptor& d) { d.planes[0].stride = 63; });
    expect_refused_then_usable(Errc::invalid_layout, "stride 63 is smaller than one row of 16 pixels (64 bytes)");
}

TEST_F(DescriptorAttack, OffsetPastTheEndOfTheFd) {
    send_tampered([](ImageDescriptor& d) { d.planes[0].offset = 1 << 20; });
    expect_refused_then_usable(Errc::rejected, "but its fd holds 1024 bytes");
}

TEST_F(DescriptorAttack, OffsetPlusStrideTimesHeightOverflows64Bits) {
    send_tampered([](ImageDescriptor& d) { d.planes[0].offset = std::numeric_limits<std::uint64_t>::max() - 100; });
    expect_refused_then_usable(Errc::invalid_layout, "overflows 64 bits");
}

TEST_F(DescriptorAttack, PlaneCountThatDoesNotMatchTheFormat) {
    send_tampered([](ImageDescriptor& d) { d.plane_count = 2; d.fd_plane_mask = 0b11; }, 0b11, 2);
    expect_refused_then_usable(Errc::invalid_layout, "has 1 planes, layout declares 2");
}

TEST_F(DescriptorAttack, UnknownFourcc) {
    send_tampered([](ImageDescriptor& d) { d.fourcc = 0x21212121; });
    expect_refused_then_usable(Errc::unsupported, "is not one texshare knows");
}

TEST_F(DescriptorAttack, ModifierOnAnImageThatCannotHaveOne) {
    send_tampered([](ImageDescriptor& d) { d.modifier = I915_FORMAT_MOD_X_TILED; });
    expect_refused_then_usable(Errc::rejected, "is linear, but has modifier");
}

TEST_F(DescriptorAttack, DescriptorNamesAnotherImageId) {
    send_tampered([](ImageDescriptor& d) { d.image_id = 2; });
    expect_refused_then_usable(Errc::protocol, "its descriptor names image 2");
}

TEST_F(DescriptorAttack, WrongDescriptorMagicAndVersion) {
    send_tampered([](ImageDescriptor& d) { d.version = 9; });
    expect_refused_then_usable(Errc::protocol, "version 9");
}

TEST_F(DescriptorAttack, UnknownBacking) {
    send_tampered([](ImageDescriptor& d) { d.backing = 7; });
    expect_refused_then_usable(Errc::protocol, "unknown backing 7");
}

TEST_F(DescriptorAttack, PlaneReservedFieldSet) {
    send_tampered([](ImageDescriptor& d) { d.planes[2].reserved = 1; });
    expect_refused_then_usable(Errc::protocol, "plane 2 reserved field is 1");
}

TEST_F(DescriptorAttack, FdMaskDisagreesWithTheFdsThatCame) {
    send_tampered([](ImageDescriptor& d) { d.fd_plane_mask = 0b10; });  // the fd came in slot 0
    expect_refused_then_usable(Errc::protocol, "plane 0 does not declare an fd but one arrived");
}

TEST_F(DescriptorAttack, CpuOnlyImageThatSendsAnFd) {
    send_tampered([](ImageDescriptor& d) { d.backing = static_cast<std::uint8_t>(Backing::cpu_only); });
    expect_refused_then_usable(Errc::rejected, "needs fd mask 0x0, got 0x1");
}

}  // namespace
}  // namespace texshare::hostile
