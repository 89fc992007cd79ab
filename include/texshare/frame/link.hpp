// The link of a frame endpoint to its peer: the channel, and what is known of the peer.
//
// Each FrameSender and FrameReceiver owns one. It sends the protocol's messages (mapping a
// gone or stuck peer to errors that say so), receives one message at a time into a buffer
// it keeps (no message is built and moved per frame), and waits for the next one. It never
// handles a message: the endpoint reads them from incoming() and decides. Sending never
// receives: a send that finds the peer gone marks the link hung up and leaves what the
// peer sent before it died in the socket, for the endpoint's next dispatch to read.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

#include "texshare/detail/poll_wait.hpp"
#include "texshare/frame/hello.hpp"

namespace texshare::detail {

class FrameLink {
public:
    explicit FrameLink(const char* peer_name) noexcept : peer_(peer_name) {}

    bool is_open() const noexcept { return channel_.is_open(); }
    // A send found the peer gone; its last messages may still be unread.
    bool hung_up() const noexcept { return hung_up_; }
    BorrowedFd native_handle() const noexcept { return channel_.native_handle(); }
    const char* peer() const noexcept { return peer_; }

    // Takes the channel of a new peer. The socket itself is made blocking (create() and
    // resume() clear O_NONBLOCK) and every call on it non-blocking (MSG_DONTWAIT): waits then
    // happen inside the recvmsg that receives (SO_RCVTIMEO), one syscall per message as in
    // a hand-written blocking loop, instead of a poll() plus a recvmsg plus the drain's EAGAIN.
    Result<void> adopt(FrameChannel channel) {
        if (channel_.is_open()) {
            return make_error(Errc::invalid_argument, "the endpoint still has a peer; resume only after it is gone");
        }
        if (auto blocking = channel.set_nonblocking(false); !blocking) return blocking;
        channel.set_dont_wait(true);
        channel_ = std::move(channel);
        hung_up_ = false;
        forget_hello();
        return {};
    }
    void close() noexcept {
        channel_.close();
        hung_up_ = false;
        forget_hello();
        clear_incoming();
    }

    // Sends this side's hello (the first message of each session): its role and the
    // features it offers. Errors as send().
    Result<void> greet(HelloRole role, std::uint64_t offered) {
        role_ = role;
        offered_ = offered;
        return send(make_hello_message(role, offered), {});
    }
    // Whether the peer's hello came and was accepted this session.
    bool greeted() const noexcept { return greeted_; }
    // Whether both sides offered `feature` (false before the peer's hello).
    bool has(std::uint64_t feature) const noexcept { return (features_ & feature) != 0; }
    std::uint64_t features() const noexcept { return features_; }
    const Hello& peer_hello() const noexcept { return peer_hello_; }

    // A message of kind `kind` (check_frame_message passed) that is a hello, or that came
    // before the peer's hello (bye aside, which the endpoint handles itself): the peer's
    // first hello is checked (check_hello) and taken; a second hello, or any other message
    // before the first, is Errc::protocol. Nothing changes unless the hello is taken.
    [[gnu::cold]] Result<void> take_hello(const FrameMessage& m, FrameKind kind) {
        if (kind != FrameKind::hello) {
            return make_error(Errc::protocol,
                              "{} of image {} before the {}'s hello: frame protocol {}.{} peers say hello first "
                              "(a protocol 1 peer says none)",
                              to_string(kind), m.image_id, peer_, frame_protocol_major, frame_protocol_minor);
        }
        if (greeted_) return make_error(Errc::protocol, "a second hello from the {}", peer_);
        const HelloRole peer_role = role_ == HelloRole::producer ? HelloRole::consumer : HelloRole::producer;
        auto features = check_hello(m, peer_role, offered_);
        if (!features) return std::move(features).error();
        greeted_ = true;
        features_ = *features;
        peer_hello_ = m.payload_as<Hello>();
        return {};
    }

    // A message of this side's own. Errc::peer_closed ("the consumer is gone") when the peer
    // closed the channel or exited (the link is then hung up: dispatch to read what it said
    // before), Errc::protocol when it stopped reading (its socket buffer is full: legitimate
    // traffic never fills it), Errc::fd_not_open for a closed fence fd. fence_kind names
    // what `fence` is (the endpoint checked the pair); it goes on the wire only with an fd,
    // or with a fence_point (FenceKind::drm_syncobj_timeline: a point, no fd).
    [[gnu::hot]]
    Result<void> send(FrameKind kind, std::uint64_t id, std::uint64_t frame = 0, BorrowedFd fence = {},
                      FenceKind fence_kind = FenceKind::sync_file, std::uint64_t fence_point = 0) {
        if (payload_used_ != 0) [[unlikely]] {  // the last send left a payload in the kept message
            std::memset(outgoing_.message.payload.data(), 0, payload_used_);
            payload_used_ = 0;
        }
        return send_kept(kind, id, frame, fence, fence_kind, fence_point);
    }
    // The same with a payload (payloads.hpp) written into the kept message: a memcpy of
    // sizeof(T) bytes, and the zeroing of what a longer earlier payload left behind.
    template <FramePayload T>
    [[gnu::hot]] Result<void> send(FrameKind kind, std::uint64_t id, std::uint64_t frame, BorrowedFd fence,
                                   FenceKind fence_kind, const T& payload, std::uint64_t fence_point = 0) {
        outgoing_.message.set_payload(payload);
        if (payload_used_ > sizeof(T)) [[unlikely]] {
            std::memset(outgoing_.message.payload.data() + sizeof(T), 0, payload_used_ - sizeof(T));
        }
        payload_used_ = sizeof(T);
        return send_kept(kind, id, frame, fence, fence_kind, fence_point);
    }
    Result<void> send(const FrameMessage& message, std::span<const BorrowedFd> fds) {
        if (!channel_.is_open() || hung_up_) return not_sent(message);
        auto sent = channel_.send(message, fds);
        if (sent) return {};  // a fresh success, not a move of one (Result<void> holds an Error)
        return send_failed(std::move(sent).error(), message);
    }
    // An answer sent while handling the peer's messages (a release, a `retired`): a gone
    // peer is no error there, since the drain reads on to the peer's end anyway.
    Result<void> answer(FrameKind kind, std::uint64_t id) {
        auto sent = send(kind, id);
        if (!sent && sent.error().code == Errc::peer_closed) return {};
        return sent;
    }
    // presented / discarded for the present of `id` as `frame`, as an answer (above).
    Result<void> answer_feedback(FrameKind kind, std::uint64_t id, std::uint64_t frame,
                                 const PresentationFeedback& feedback) {
        auto sent = send(kind, id, frame, {}, FenceKind::none, feedback);
        if (!sent && sent.error().code == Errc::peer_closed) return {};
        return sent;
    }

private:
    [[gnu::hot]] [[gnu::always_inline]]
    Result<void> send_kept(FrameKind kind, std::uint64_t id, std::uint64_t frame, BorrowedFd fence,
                           FenceKind fence_kind, std::uint64_t fence_point) {
        // Per frame: the kept message (header in front, so it leaves as one iovec); only
        // the header's five fields and the payload change. A fence kind goes on the wire with
        // an fd, or with a point (FenceKind::drm_syncobj_timeline: no fd).
        FrameMessage& message = outgoing_.message;
        message.kind = static_cast<std::uint32_t>(kind);
        message.fence_kind =
            fence.valid() || fence_point != 0 ? static_cast<std::uint8_t>(fence_kind) : std::uint8_t{0};
        message.fence_point = fence_point;
        message.image_id = id;
        message.frame_number = frame;
        if (!channel_.is_open() || hung_up_) [[unlikely]] return not_sent(message);
        auto sent = fence.valid() ? channel_.send(outgoing_, frame_fence_slot, fence) : channel_.send(outgoing_);
        if (sent) [[likely]] return {};  // a fresh success, not a move of one (Result<void> holds an Error)
        return send_failed(std::move(sent).error(), message);
    }

public:
    Result<void> send_add(std::uint64_t id, const DmaBufImage& image) {
        FrameMessage message = make_frame_message(FrameKind::add_image, id);
        message.set_descriptor(describe_image(id, image));
        std::array<BorrowedFd, frame_fd_slots> fds{};
        for (std::size_t i = 0; i < max_planes; ++i) fds[i] = image.plane_fd(i);
        return send(message, fds);
    }
    void say_bye() noexcept {
        if (channel_.is_open() && !hung_up_) (void)send(FrameKind::bye, 0);
    }

    // The message receive() or receive_within() last delivered (fds in their slots; fds_cut
    // when the kernel could not pass them all).
    FrameChannel::Received& incoming() noexcept { return incoming_; }

    // One message if one is pending: ReceiveStatus::nothing when none is.
    Result<ReceiveStatus> receive() {
        auto received = channel_.receive_into(incoming_);
        if (!received && !greeted_) [[unlikely]] return before_hello(std::move(received).error());
        return received;
    }

    // One message within `timeout` (> 0; microseconds::max(): no limit, no kernel timer),
    // waited for inside the recvmsg. nothing: none came in time; interrupted: a signal cut
    // the wait (wait what is left another way).
    [[gnu::always_inline]] Result<ReceiveStatus> receive_within(std::chrono::microseconds timeout) {
        auto received = channel_.receive_into_within(incoming_, timeout);
        if (!received && !greeted_) [[unlikely]] return before_hello(std::move(received).error());
        return received;
    }

    [[gnu::hot]]
    void clear_incoming() noexcept { incoming_.close_fds(); }

    Error closed(const char* doing) const {
        return make_error(Errc::peer_closed, "{}: the channel to the {} is closed", doing, peer_);
    }
    Error timed_out(std::chrono::milliseconds timeout, const char* waiting_for) const {
        return make_error(Errc::timed_out, "no {} from the {} within {} ms", waiting_for, peer_, timeout.count());
    }

private:
    void forget_hello() noexcept {
        greeted_ = false;
        features_ = 0;
        peer_hello_ = Hello{};
    }
    // A record AuxChannel refused before the peer's hello: most likely a peer that speaks
    // another protocol (protocol 1's FrameMessage is 8 bytes shorter, and it sends no hello).
    [[gnu::cold]] [[gnu::noinline]] Error before_hello(Error error) const {
        if (error.code != Errc::protocol || error.message.rfind("AuxChannel:", 0) != 0) return error;
        return make_error(Errc::protocol,
                          "no hello from the {}: its first message is not a frame protocol {}.{} message ({}); a "
                          "protocol 1 peer (texshare before the versioned hello) sends none and frames its "
                          "messages 8 bytes shorter",
                          peer_, frame_protocol_major, frame_protocol_minor, error.message);
    }
    // Why nothing was sent: no channel, or a peer a send found gone.
    [[gnu::cold]] [[gnu::noinline]] Error not_sent(const FrameMessage& message) const {
        if (!channel_.is_open()) {
            return make_error(Errc::peer_closed, "{} of image {}: the channel to the {} is closed",
                              to_string(static_cast<FrameKind>(message.kind)), message.image_id, peer_);
        }
        return gone(message);
    }
    [[gnu::cold]] [[gnu::noinline]] Error send_failed(Error error, const FrameMessage& message) {
        if (error.code == Errc::would_block) {
            return make_error(Errc::protocol, "the {} does not read its messages: the socket's send buffer is full",
                              peer_);
        }
        if (error.code == Errc::peer_closed) {
            hung_up_ = true;
            return gone(message);
        }
        return error;
    }
    Error gone(const FrameMessage& message) const {
        return make_error(Errc::peer_closed, "{} of image {}: the {} is gone (it closed the channel or exited)",
                          to_string(static_cast<FrameKind>(message.kind)), message.image_id, peer_);
    }

    FrameChannel channel_;
    FrameChannel::Received incoming_{};
    FrameChannel::Outgoing outgoing_{};  // kind, image id and frame number set per send
    const char* peer_;
    bool hung_up_ = false;
    std::size_t payload_used_ = 0;  // payload bytes the last send wrote into outgoing_ (zeroed before the next)
    HelloRole role_ = HelloRole::producer;
    std::uint64_t offered_ = 0;
    bool greeted_ = false;       // the peer's hello came this session
    std::uint64_t features_ = 0;  // offered by both
    Hello peer_hello_{};
};

// The one timeout rule of every frame wait: > 0 waits that long, 0 only handles what is
// pending (no wait), < 0 is Errc::invalid_argument.
inline Result<void> check_wait_timeout(std::chrono::milliseconds timeout, const char* who) {
    if (timeout.count() < 0) {
        return make_error(Errc::invalid_argument, "{}: timeout {} ms is negative (0 only looks, > 0 waits)", who,
                          timeout.count());
    }
    return {};
}

}  // namespace texshare::detail
