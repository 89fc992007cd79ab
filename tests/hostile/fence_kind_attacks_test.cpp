// Attacks on the fence kind (issue 15, "Fences": a second fence kind on the wire). A hostile
// peer sends a fence fd without a kind, a kind without an fd, an unknown kind, a kind on a
// message that carries no fence, a kind the victim does not accept, or an fd that is not
// what its kind says (a pipe, a socket, a memfd, a regular file, an anonymous inode of
// another pseudo file system standing in for a DMA-BUF). Each must be refused with the
// named Errc, leave the endpoint's whole state as it was (tests/support/frame_state.hpp),
// tell the peer nothing, close the fds that came (the fixture's fd count) and leave the
// endpoint usable. The good cases say what is accepted: an OPAQUE_FD semaphore is a
// character device (NVIDIA: /dev/nvidiactl; here /dev/null stands in) or a file of the
// shared anonymous inode (a DRM syncobj; here an eventfd).
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "hostile/hostile_peer.hpp"
#include "support/frame_state.hpp"

namespace texshare::hostile {
namespace {

using testing::state_of;

constexpr std::uint8_t fence_slot = 1 << frame_fence_slot;
constexpr FenceKindSet both_kinds = FenceKind::sync_file | FenceKind::vulkan_opaque_semaphore;

FrameMessage with_fence_kind(FrameMessage m, std::uint8_t kind) {
    m.fence_kind = kind;
    return m;
}
constexpr std::uint8_t sync_file_kind = static_cast<std::uint8_t>(FenceKind::sync_file);
constexpr std::uint8_t opaque_kind = static_cast<std::uint8_t>(FenceKind::vulkan_opaque_semaphore);

// The fds a hostile peer may send as a fence.
UniqueFd an_eventfd() {
    return UniqueFd(::eventfd(0, EFD_CLOEXEC));
}
UniqueFd dev_null() {
    return UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
}
UniqueFd a_pipe() {
    int ends[2] = {-1, -1};
    EXPECT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    ::close(ends[1]);
    return UniqueFd(ends[0]);
}
UniqueFd a_socket() {
    return UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
}
UniqueFd a_memfd() {
    return UniqueFd(::memfd_create("not-a-semaphore", MFD_CLOEXEC));
}
UniqueFd a_regular_file() {
    return UniqueFd(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
}
// An anonymous inode of its own pseudo file system, as a DMA-BUF is (pidfs since Linux 6.9;
// before that a pidfd is of the shared anonymous inode, and the caller skips).
UniqueFd a_pidfd() {
    return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));
}

using FdMaker = UniqueFd (*)();

template <typename Victim>
class FenceKindAttack : public testing::FdLeakTest {
protected:
    void TearDown() override {
        victim_.reset();
        attacker_.reset();
        FdLeakTest::TearDown();
    }

    void connect(FenceKindSet accepted) {
        int ends[2] = {-1, -1};
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
        attacker_.reset(ends[0]);
        auto channel = FrameChannel::adopt(UniqueFd(ends[1]));
        ASSERT_TRUE(channel);
        typename Victim::Options options;
        options.accepted_fence_kinds = accepted;
        auto victim = Victim::create(std::move(*channel), options);
        ASSERT_TRUE(victim) << victim.error().message;
        victim_.emplace(std::move(*victim));
        std::byte record[512];  // the victim's hello: read, so that "told nothing" means after it
        ASSERT_GT(::recv(attacker_.get(), record, sizeof record, MSG_DONTWAIT), 0);
        say_hello(attacker_.get(), attacker_role<Victim>);
        auto greeted = victim_->dispatch();
        ASSERT_TRUE(greeted) << greeted.error().message;
    }

    void send(const FrameMessage& message, std::uint8_t mask = 0, const std::vector<int>& fds = {}) {
        const auto bytes = frame_bytes(message, mask);
        ASSERT_EQ(send_raw(attacker_.get(), bytes,
                           fds.empty() ? std::vector<ControlMessage>{} : std::vector{rights(fds)}),
                  static_cast<ssize_t>(bytes.size()));
    }
    // One message (with `fd` in the fence slot if given) must be refused with `code` and
    // `needle`, changing nothing and telling the peer nothing.
    void expect_refused_without_trace(const FrameMessage& message, UniqueFd fd, Errc code,
                                      const std::string& needle) {
        const std::string before = state_of(*victim_);
        if (fd) {
            send(message, fence_slot, {fd.get()});
        } else {
            send(message);
        }
        fd.reset();  // the victim's copy is the one that must be closed
        auto handled = victim_->dispatch();
        ASSERT_FALSE(handled) << "accepted; state now:\n" << state_of(*victim_);
        testing::expect_error(handled.error(), code, needle);
        EXPECT_EQ(state_of(*victim_), before) << "the refused message changed the endpoint";
        char byte;
        EXPECT_EQ(::recv(attacker_.get(), &byte, 1, MSG_DONTWAIT), -1)
            << "the peer was told of a refused message";
        auto pending = victim_->dispatch();
        ASSERT_TRUE(pending) << pending.error().message;
        EXPECT_EQ(*pending, 0U);
    }
    void drain_told() {
        char buffer[1024];
        while (::recv(attacker_.get(), buffer, sizeof buffer, MSG_DONTWAIT) > 0) {
        }
    }

    UniqueFd attacker_;
    std::optional<Victim> victim_;
};

// ---- the consumer: a present's acquire fence --------------------------------------------

class ConsumerFenceKindAttack : public FenceKindAttack<FrameReceiver> {
protected:
    // Images 1 and 2 of the producer's; frame 1 of image 1 current with a sync_file fence.
    void set_up(FenceKindSet accepted) {
        connect(accepted);
        for (std::uint64_t id : {1, 2}) {
            UniqueFd memory = sealed_memfd(16 * 16 * 4);
            send(add_image_message(id), 1, {memory.get()});
        }
        UniqueFd fence = an_eventfd();
        send(with_fence_kind(make_frame_message(FrameKind::present, 1, 1),
                             accepted.contains(FenceKind::sync_file) ? sync_file_kind : opaque_kind),
             fence_slot, {fence.get()});
        auto handled = victim_->dispatch();
        ASSERT_TRUE(handled) << handled.error().message;
        ASSERT_EQ(victim_->current()->image_id, 1U);
    }
    FrameMessage present_2(std::uint8_t kind) {
        return with_fence_kind(make_frame_message(FrameKind::present, 2, 2), kind);
    }
    // After an attack: frame 2 of image 2 with a fence of `kind` is shown.
    void expect_usable(std::uint8_t kind, FdMaker make = an_eventfd) {
        UniqueFd fence = make();
        send(present_2(kind), fence_slot, {fence.get()});
        auto handled = victim_->dispatch();
        ASSERT_TRUE(handled) << handled.error().message;
        ASSERT_EQ(victim_->current()->image_id, 2U);
        EXPECT_EQ(victim_->acquire_fence_kind(), static_cast<FenceKind>(kind));
        drain_told();
    }
};

TEST_F(ConsumerFenceKindAttack, AFenceFdWithoutAKindIsAProtocolError) {
    set_up(default_fence_kinds);
    expect_refused_without_trace(present_2(0), an_eventfd(), Errc::protocol,
                                 "a fence fd in slot 4 without a fence kind");
    expect_usable(sync_file_kind);
}

TEST_F(ConsumerFenceKindAttack, AKindWithoutAFenceFdIsAProtocolError) {
    set_up(both_kinds);
    expect_refused_without_trace(present_2(sync_file_kind), {}, Errc::protocol,
                                 "fence kind sync_file without a fence fd");
    expect_refused_without_trace(present_2(opaque_kind), {}, Errc::protocol,
                                 "fence kind vulkan_opaque_semaphore without a fence fd");
    expect_usable(opaque_kind, dev_null);
}

TEST_F(ConsumerFenceKindAttack, AnUnknownKindIsAProtocolError) {
    set_up(both_kinds);
    for (std::uint8_t kind : std::initializer_list<std::uint8_t>{4, 7, 128, 255}) {
        expect_refused_without_trace(present_2(kind), an_eventfd(), Errc::protocol,
                                     fmt::format("unknown fence kind {}", kind));
    }
    expect_usable(sync_file_kind);
}

TEST_F(ConsumerFenceKindAttack, AKindOnAMessageWithoutAFenceIsAProtocolError) {
    set_up(both_kinds);
    expect_refused_without_trace(with_fence_kind(make_frame_message(FrameKind::retire, 2), sync_file_kind),
                                 {}, Errc::protocol,
                                 "retire of image 2: fence kind 1 on a message that carries no fence");
    expect_refused_without_trace(with_fence_kind(make_frame_message(FrameKind::bye, 0), opaque_kind), {},
                                 Errc::protocol,
                                 "bye of image 0: fence kind 2 on a message that carries no fence");
    // An add_image with a kind: its plane fd comes too, and is closed.
    const std::string before = state_of(*victim_);
    UniqueFd memory = sealed_memfd(16 * 16 * 4);
    send(with_fence_kind(add_image_message(3), sync_file_kind), 1, {memory.get()});
    memory.reset();
    auto handled = victim_->dispatch();
    ASSERT_FALSE(handled);
    testing::expect_error(handled.error(), Errc::protocol, "add_image of image 3: fence kind 1 on a message");
    EXPECT_EQ(state_of(*victim_), before);
    expect_usable(sync_file_kind);
}

TEST_F(ConsumerFenceKindAttack, AnOpaqueSemaphoreIsRefusedUnlessAccepted) {
    set_up(default_fence_kinds);
    expect_refused_without_trace(
        present_2(opaque_kind), dev_null(), Errc::rejected,
        "present of image 2 as frame 2: a fence of kind vulkan_opaque_semaphore, which this "
        "side does not accept (accepted: sync_file)");
    expect_usable(sync_file_kind);
}

TEST_F(ConsumerFenceKindAttack, ASyncFileIsRefusedWhereOnlyOpaqueSemaphoresAreAccepted) {
    set_up(FenceKind::vulkan_opaque_semaphore);
    expect_refused_without_trace(present_2(sync_file_kind), an_eventfd(), Errc::rejected,
                                 "a fence of kind sync_file, which this side does not accept (accepted: "
                                 "vulkan_opaque_semaphore)");
    expect_usable(opaque_kind);
}

TEST_F(ConsumerFenceKindAttack, ASyncFileThatIsACharacterDeviceIsRefused) {
    set_up(both_kinds);  // /dev/null passes as an OPAQUE_FD semaphore, never as a sync_file
    expect_refused_without_trace(present_2(sync_file_kind), dev_null(), Errc::rejected,
                                 "is not of a sync_file's kind");
    expect_usable(opaque_kind, dev_null);
}

struct NotASemaphore {
    const char* name;
    FdMaker make;
    const char* what;
};
const NotASemaphore not_semaphores[] = {
    {"pipe", a_pipe, "is a pipe"},
    {"socket", a_socket, "is a socket"},
    {"memfd", a_memfd, "is a memfd"},
    {"regular file", a_regular_file, "is a regular file"},
};

TEST_F(ConsumerFenceKindAttack, AnOpaqueSemaphoreThatIsAPipeSocketMemfdOrFileIsRefused) {
    set_up(both_kinds);
    for (const NotASemaphore& fd : not_semaphores) {
        SCOPED_TRACE(fd.name);
        expect_refused_without_trace(present_2(opaque_kind), fd.make(), Errc::rejected, fd.what);
    }
    expect_usable(opaque_kind, an_eventfd);
}

TEST_F(ConsumerFenceKindAttack, AnOpaqueSemaphoreOfAnotherPseudoFileSystemIsRefused) {
    UniqueFd probe = a_pidfd();
    ASSERT_TRUE(probe.valid()) << "pidfd_open: errno " << errno;
    if (detail::file_facts(probe.borrow())->identity == detail::shared_anon_inode()) {
        GTEST_SKIP()
            << "this kernel (before 6.9) makes pidfds of the shared anonymous inode: no stand-in for a "
               "DMA-BUF's own pseudo file system here (the VM lane's DMA-BUFs are)";
    }
    probe.reset();
    set_up(both_kinds);
    expect_refused_without_trace(present_2(opaque_kind), a_pidfd(), Errc::rejected,
                                 "is an anonymous inode of another pseudo file system");
    expect_usable(opaque_kind, dev_null);
}

// Nobody takes the opaque fence of a frame that a newer present replaces: it is closed (off
// the dispatching thread), and the fd count stays as it was.
TEST_F(ConsumerFenceKindAttack, AnUntakenOpaqueFenceIsClosedWhenTheFrameIsReplaced) {
    set_up(both_kinds);
    expect_usable(opaque_kind, dev_null);
    UniqueFd fence = dev_null();
    send(with_fence_kind(make_frame_message(FrameKind::present, 1, 3), opaque_kind), fence_slot,
         {fence.get()});
    fence.reset();
    auto handled = victim_->dispatch();
    ASSERT_TRUE(handled) << handled.error().message;
    EXPECT_EQ(victim_->acquire_fence_kind(), FenceKind::vulkan_opaque_semaphore);
    UniqueFd taken = victim_->take_acquire_fence();
    EXPECT_TRUE(taken.valid());
    EXPECT_EQ(victim_->acquire_fence_kind(), FenceKind::none);
}

// ---- the producer: a release's release fence ---------------------------------------------

class ProducerFenceKindAttack : public FenceKindAttack<FrameSender> {
protected:
    // Two images of the producer's own, both presented.
    void set_up(FenceKindSet accepted) {
        connect(accepted);
        for (std::uint64_t& id : ids_) {
            id = victim_->add_image(MemfdAllocator().allocate(8, 8, DRM_FORMAT_ARGB8888).value()).value();
            ASSERT_TRUE(victim_->present(id));
        }
        drain_told();
    }
    FrameMessage release_of(std::size_t which, std::uint8_t kind) {
        return with_fence_kind(make_frame_message(FrameKind::release, ids_[which]), kind);
    }
    std::uint64_t ids_[2] = {0, 0};
};

TEST_F(ProducerFenceKindAttack, FenceKindEnvelopeRefusals) {
    set_up(both_kinds);
    expect_refused_without_trace(release_of(0, 0), an_eventfd(), Errc::protocol, "without a fence kind");
    expect_refused_without_trace(release_of(0, opaque_kind), {}, Errc::protocol, "without a fence fd");
    expect_refused_without_trace(release_of(0, 9), dev_null(), Errc::protocol, "unknown fence kind 9");
    expect_refused_without_trace(
        with_fence_kind(make_frame_message(FrameKind::retired, ids_[1]), opaque_kind), {}, Errc::protocol,
        "on a message that carries no fence");
}

TEST_F(ProducerFenceKindAttack, AReleaseFenceOfAKindNotAcceptedIsRefused) {
    set_up(default_fence_kinds);
    expect_refused_without_trace(
        release_of(0, opaque_kind), dev_null(), Errc::rejected,
        "release of image 1: a fence of kind vulkan_opaque_semaphore, which this side does "
        "not accept");
}

TEST_F(ProducerFenceKindAttack, AnOpaqueReleaseFenceThatIsNoSemaphoreIsRefused) {
    set_up(both_kinds);
    for (const NotASemaphore& fd : not_semaphores) {
        SCOPED_TRACE(fd.name);
        expect_refused_without_trace(release_of(0, opaque_kind), fd.make(), Errc::rejected, fd.what);
    }
}

TEST_F(ProducerFenceKindAttack, AnAcceptedOpaqueReleaseFenceComesWithItsKind) {
    set_up(both_kinds);
    UniqueFd fence = dev_null();
    send(release_of(0, opaque_kind), fence_slot, {fence.get()});
    fence = an_eventfd();
    send(release_of(1, sync_file_kind), fence_slot, {fence.get()});
    fence.reset();
    auto handled = victim_->dispatch();
    ASSERT_TRUE(handled) << handled.error().message;
    EXPECT_EQ(victim_->release_fence_kind(ids_[0]), FenceKind::vulkan_opaque_semaphore);
    EXPECT_EQ(victim_->release_fence_kind(ids_[1]), FenceKind::sync_file);
    auto first = victim_->acquire_free_image();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->id, ids_[0]);
    EXPECT_TRUE(first->release_fence.valid());
    EXPECT_EQ(first->release_fence_kind, FenceKind::vulkan_opaque_semaphore);
    EXPECT_EQ(victim_->release_fence_kind(ids_[0]), FenceKind::none);
    // The second one's fence is never taken: dropping the image (the sender) closes it.
}

}  // namespace
}  // namespace texshare::hostile
