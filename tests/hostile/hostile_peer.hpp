// The attacker suite's fixture: texshare's receiving endpoint on one end of a socket pair,
// and on the other a hostile peer that writes raw bytes and raw control messages with
// sendmsg, never through texshare's send path.
//
// Each attack asserts the documented outcome: dispatch() fails with a named Errc and a
// message naming what was wrong, the fds that came with the message are closed (the
// fixture's open-fd count check), and, unless the attack ends the session, the endpoint
// still works: a well-formed image and frame from the same peer afterwards are accepted.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "support/fd_count.hpp"
#include "support/frame_pair.hpp"
#include "support/raw_peer.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare::hostile {

using testing::ControlMessage;
using testing::rights;

inline ssize_t send_raw(int socket, const std::vector<std::byte>& bytes, const std::vector<ControlMessage>& controls = {}) {
    return testing::raw_send_controls(socket, bytes, controls, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// The bytes FrameChannel puts on the wire for `message` with slot mask `mask`.
inline std::vector<std::byte> frame_bytes(const FrameMessage& message, std::uint8_t mask,
                                          std::uint32_t magic = aux_channel_magic,
                                          std::uint32_t payload_size = sizeof(FrameMessage)) {
    return testing::frame_bytes(message, magic, payload_size, {mask});
}

inline UniqueFd sealed_memfd(std::size_t size) {
    UniqueFd fd(::memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
    return fd;
}

// A well-formed 16x16 ARGB8888 shared-memory add_image for `id`, before any tampering.
inline FrameMessage add_image_message(std::uint64_t id, std::uint32_t width = 16, std::uint32_t height = 16) {
    FrameMessage message = make_frame_message(FrameKind::add_image, id);
    ImageDescriptor d{};
    d.backing = static_cast<std::uint8_t>(Backing::shared_memory);
    d.fd_plane_mask = 1;
    d.image_id = id;
    d.width = width;
    d.height = height;
    d.fourcc = DRM_FORMAT_ARGB8888;
    d.plane_count = 1;
    d.modifier = DRM_FORMAT_MOD_LINEAR;
    d.planes[0].stride = width * 4;
    message.set_descriptor(d);
    return message;
}

// The attacker's hello (protocol 2 sessions open with one each way): the role of the
// victim's peer and the features it offers. Pacing only by default: a victim producer that
// did not ask to be paced, and a victim consumer, then run as before feedback existed
// (attacks on feedback say hello with hello_feature_feedback).
inline void say_hello(int socket, HelloRole role, std::uint64_t features = hello_feature_pacing) {
    const auto bytes = frame_bytes(make_hello_message(role, features), 0);
    ASSERT_EQ(send_raw(socket, bytes), static_cast<ssize_t>(bytes.size()));
}
template <typename Victim>
constexpr HelloRole attacker_role = std::is_same_v<Victim, FrameReceiver> ? HelloRole::producer : HelloRole::consumer;

// The message with its fence slot's kind set to sync_file (a fence the endpoint's default
// options accept), for attacks on what the fd is rather than on the kind.
inline FrameMessage as_sync_file(FrameMessage message) {
    message.fence_kind = static_cast<std::uint8_t>(FenceKind::sync_file);
    return message;
}

template <typename Victim>
class HostilePeerTest : public testing::FdLeakTest {
protected:
    void SetUp() override {
        FdLeakTest::SetUp();
        int ends[2] = {-1, -1};
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
        attacker_.reset(ends[0]);
        auto channel = FrameChannel::adopt(UniqueFd(ends[1]));
        ASSERT_TRUE(channel);
        auto victim = Victim::create(std::move(*channel));
        ASSERT_TRUE(victim);
        victim_.emplace(std::move(*victim));
        greet();
    }
    // The attacker says hello and the victim takes it; the victim's own hello (its first
    // record, no fds) is read and dropped, so attacks see only what came after.
    void greet(std::uint64_t features = hello_feature_pacing) {
        std::byte record[512];
        ASSERT_GT(::recv(attacker_.get(), record, sizeof record, MSG_DONTWAIT), 0) << "the victim said no hello";
        say_hello(attacker_.get(), attacker_role<Victim>, features);
        auto handled = victim_->dispatch();
        ASSERT_TRUE(handled) << handled.error().message;
        ASSERT_EQ(*handled, 0U) << "the hello is not counted";
    }
    void TearDown() override {
        victim_.reset();
        attacker_.reset();
        FdLeakTest::TearDown();
    }

    void send(const FrameMessage& message, std::uint8_t mask = 0, const std::vector<int>& fds = {}) {
        const auto bytes = frame_bytes(message, mask);
        ASSERT_EQ(send_raw(attacker_.get(), bytes, fds.empty() ? std::vector<ControlMessage>{} : std::vector{rights(fds)}),
                  static_cast<ssize_t>(bytes.size()));
    }
    // A well-formed image (slot 0 only) the victim must accept.
    void send_image(std::uint64_t id) {
        UniqueFd memory = sealed_memfd(16 * 16 * 4);
        send(add_image_message(id), 1, {memory.get()});
    }

    // dispatch() must fail with `code`, and its message must contain `needle`.
    void expect_refused(Errc code, const std::string& needle) {
        auto handled = victim_->dispatch();
        ASSERT_FALSE(handled) << "the attack was accepted";
        testing::expect_error(handled.error(), code, needle);
    }
    // After the attack the peer is still heard: nothing pending, then a good message works.
    void expect_still_usable() {
        auto pending = victim_->dispatch();
        ASSERT_TRUE(pending) << "left over after the attack: " << pending.error().message;
        EXPECT_EQ(*pending, 0U) << "the attack left messages behind";
        probe_usable();
    }
    void probe_usable();  // per victim, below

    UniqueFd attacker_;
    std::optional<Victim> victim_;
    std::uint64_t next_good_frame_ = 1'000'000;
};

// A consumer under attack: a fresh image and a present of it must work.
template <>
inline void HostilePeerTest<FrameReceiver>::probe_usable() {
    const std::uint64_t id = 900 + next_good_frame_ % 64;
    send_image(id);
    send(make_frame_message(FrameKind::present, id, next_good_frame_++));
    auto handled = victim_->dispatch();
    ASSERT_TRUE(handled) << handled.error().message;
    ASSERT_TRUE(victim_->current());
    EXPECT_EQ(victim_->current()->image_id, id);
}

// A producer under attack: it can still add and present an image of its own.
template <>
inline void HostilePeerTest<FrameSender>::probe_usable() {
    auto image = MemfdAllocator().allocate(8, 8, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(image);
    auto id = victim_->add_image(std::move(*image));
    ASSERT_TRUE(id) << id.error().message;
    auto presented = victim_->present(*id);
    ASSERT_TRUE(presented) << presented.error().message;
}

using ConsumerUnderAttack = HostilePeerTest<FrameReceiver>;
using ProducerUnderAttack = HostilePeerTest<FrameSender>;

}  // namespace texshare::hostile
