// What FrameSender and FrameReceiver share: the image table, images added by either side,
// the dispatch loop, peer death and resuming with a new peer.
//
// Use FrameImageListener to keep something per image in step with an endpoint, e.g. the
// EGL import cache (texshare::egl::ImportListener): it hears of every image from the moment
// it enters the endpoint's table (added here or by the peer) until it leaves, so GL
// textures are created once per image, never per frame. The rest of this header is the
// endpoints' common machinery.
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "texshare/detail/poll_wait.hpp"
#include "texshare/frame/messages.hpp"

namespace texshare {

class FrameImageListener {
public:
    virtual ~FrameImageListener() = default;
    // An image entered the table. An error refuses it: add_image() then fails with nothing
    // sent, or, for a peer's image, dispatch() fails with Errc::rejected.
    virtual Result<void> image_added(std::uint64_t id, const DmaBufImage& image, bool added_by_peer) = 0;
    virtual void image_removed(std::uint64_t id) noexcept = 0;
    // A dead producer's last frame was kept under retained_image_id (FrameReceiver).
    virtual void image_renamed(std::uint64_t from, std::uint64_t to) noexcept = 0;
};

// Where the images each side adds get their ids, so the two never collide: the producer's
// ids have the top bit clear, the consumer's have it set. retained_image_id is never on the wire.
inline constexpr std::uint64_t consumer_image_id_bit = std::uint64_t{1} << 63;
inline constexpr std::uint64_t retained_image_id = ~std::uint64_t{0};

// free: the producer may render into it; presented: the consumer holds it; retiring: on
// its way out (see retire()).
enum class FrameImageState { free, presented, retiring };

namespace detail {

class FrameEndpoint {
public:
    bool is_open() const noexcept { return channel_.is_open(); }
    // Readable (poll/epoll) means dispatch() has work: a message, or a peer that is gone.
    BorrowedFd native_handle() const noexcept { return channel_.native_handle(); }
    // Not owned; must outlive this endpoint or be unset (nullptr) first.
    void set_listener(FrameImageListener* listener) noexcept { listener_ = listener; }

    const DmaBufImage* image(std::uint64_t id) const {
        const Slot* slot = slots_.find(id);
        return slot != nullptr ? &slot->image : nullptr;
    }
    std::optional<FrameImageState> state(std::uint64_t id) const {
        const Slot* slot = slots_.find(id);
        return slot != nullptr ? std::optional(slot->state) : std::nullopt;
    }
    // Whether this side allocated image id (false for the peer's images and unknown ids).
    bool is_local(std::uint64_t id) const {
        const Slot* slot = slots_.find(id);
        return slot != nullptr && slot->local;
    }
    std::size_t image_count() const noexcept { return slots_.count(); }

protected:
    enum class Role { producer, consumer };

    struct Slot {
        std::uint64_t id = 0;  // 0: empty slot
        DmaBufImage image;
        bool local = false;     // this side allocated it
        bool unshared = false;  // local, and the current peer has not been told of it yet
        FrameImageState state = FrameImageState::free;
        std::uint64_t last_frame = 0;      // the frame it was last presented as
        UniqueFd fence;                    // producer: the release fence that came back
        bool held_while_retiring = false;  // retired (by the producer) while the consumer held it
    };

    explicit FrameEndpoint(Role role) noexcept : role_(role) {}
    ~FrameEndpoint() { clear_table(); }
    FrameEndpoint(FrameEndpoint&& other) noexcept { *this = std::move(other); }
    FrameEndpoint& operator=(FrameEndpoint&& other) noexcept {
        if (this != &other) {
            clear_table();
            channel_ = std::move(other.channel_);
            slots_ = std::move(other.slots_);
            other.slots_ = ImageSlots<Slot>{};
            listener_ = std::exchange(other.listener_, nullptr);
            role_ = other.role_;
            next_id_ = other.next_id_;
        }
        return *this;
    }

    static std::uint64_t id_space(Role role) noexcept {
        return role == Role::consumer ? consumer_image_id_bit : 0;
    }
    const char* peer_name() const noexcept { return role_ == Role::producer ? "consumer" : "producer"; }

    Result<void> adopt_channel(FrameChannel channel) {
        if (channel_.is_open()) {
            return make_error(Errc::invalid_argument, "the endpoint still has a peer; resume only after it is gone");
        }
        // Non-blocking per call (MSG_DONTWAIT), the socket itself blocking: waits then happen
        // inside the recvmsg that receives (receive_within), one syscall per message as in a
        // hand-written blocking loop, instead of a poll() plus a recvmsg plus the drain's EAGAIN.
        if (auto blocking = channel.set_nonblocking(false); !blocking) return blocking;
        channel.set_dont_wait(true);
        channel_ = std::move(channel);
        return {};
    }

    // Shares every local image the new peer has not seen, except ones this side holds
    // (the consumer's kept frame: shared once released).
    Result<void> share_unshared() {
        for (Slot& slot : slots_) {
            if (slot.id == 0 || !slot.unshared || slot.state == FrameImageState::presented) continue;
            if (auto sent = send_add(slot); !sent) return sent;
        }
        return {};
    }

    Result<std::uint64_t> add_local(DmaBufImage&& image) {
        if (image.empty()) return make_error(Errc::invalid_argument, "add_image: the image is empty");
        Slot* slot = slots_.empty_slot();
        if (slot == nullptr) {
            return make_error(Errc::invalid_argument,
                              "add_image: all {} image slots are in use; retire one first", max_frame_images);
        }
        const std::uint64_t id = id_space(role_) | next_id_;
        if (listener_ != nullptr) {
            if (auto accepted = listener_->image_added(id, image, false); !accepted) return accepted.error();
        }
        Slot added;
        added.id = id;
        added.image = std::move(image);
        added.local = true;
        added.unshared = true;
        if (channel_.is_open()) {
            if (auto sent = send_add(added); !sent) {
                image = std::move(added.image);  // stays with the caller
                if (listener_ != nullptr) listener_->image_removed(id);
                return sent.error();
            }
        }
        ++next_id_;
        *slot = std::move(added);
        return id;
    }

    Result<void> send_add(Slot& slot) {
        FrameMessage message = make_frame_message(FrameKind::add_image, slot.id);
        message.descriptor = describe_image(slot.id, slot.image);
        std::array<BorrowedFd, frame_fd_slots> fds{};
        for (std::size_t i = 0; i < max_planes; ++i) fds[i] = slot.image.plane_fd(i);
        if (auto sent = checked(channel_.send(message, fds)); !sent) return sent;
        slot.unshared = false;
        return {};
    }

    // add_image from the peer: an id from the peer's space, not in use, and an image that
    // passes every check of import_image (and the listener's).
    Result<void> accept_peer_image(const FrameMessage& m, std::array<UniqueFd, frame_fd_slots>& fds) {
        const Role peer = role_ == Role::producer ? Role::consumer : Role::producer;
        if (m.image_id == 0 || (m.image_id & consumer_image_id_bit) != id_space(peer) ||
            m.image_id == retained_image_id || slots_.find(m.image_id) != nullptr) {
            return make_error(Errc::protocol, "add_image from the {} with image id {}, which is {}", peer_name(),
                              m.image_id,
                              slots_.find(m.image_id) != nullptr ? "already in use" : "not in the peer's id space");
        }
        Slot* slot = slots_.empty_slot();
        if (slot == nullptr) {
            return make_error(Errc::protocol, "add_image of image {}: all {} image slots are in use", m.image_id,
                              max_frame_images);
        }
        PlaneFds planes;
        for (std::size_t i = 0; i < max_planes; ++i) planes[i] = std::move(fds[i]);
        auto image = import_image(m.descriptor, std::move(planes));
        if (!image) return std::move(image).error();
        if (auto vetted = vet_peer_image(m.image_id, *image); !vetted) return vetted;
        if (listener_ != nullptr) {
            if (auto accepted = listener_->image_added(m.image_id, *image, true); !accepted) {
                return make_error(Errc::rejected, "image {} from the {}: refused by the listener: {}", m.image_id,
                                  peer_name(), accepted.error().message);
            }
        }
        slot->id = m.image_id;
        slot->image = std::move(*image);
        return {};
    }

    void drop(Slot& slot) noexcept {
        if (slot.id == 0) return;
        if (listener_ != nullptr) listener_->image_removed(slot.id);
        slot = Slot{};
    }

    Result<void> send(FrameKind kind, std::uint64_t id, std::uint64_t frame = 0, BorrowedFd fence = {}) {
        return checked(detail::send_frame(channel_, make_frame_message(kind, id, frame), fence));
    }

    // A send that finds the peer gone or stuck. Inside dispatch() it is moot (the drain goes on to
    // the peer's EOF); otherwise what the peer sent before it died is handled first (a
    // producer's last presents still count), then its death.
    Result<void> checked(Result<void> sent) {
        if (!sent && sent.error().code == Errc::would_block) {
            // Legitimate traffic never fills the socket (a few messages per image in flight):
            // a full buffer means the peer stopped reading. Not something to retry.
            return make_error(Errc::protocol, "the {} does not read its messages: the socket's send buffer is full",
                              peer_name());
        }
        if (sent || sent.error().code != Errc::peer_closed) return sent;
        if (dispatching_) return {};
        (void)dispatch_pending();
        if (channel_.is_open()) on_peer_gone();
        return sent;
    }

    // Handles every message pending, until the socket is drained (the drain ends without a
    // syscall of its own: the recvmsg that finds nothing says so).
    Result<std::size_t> dispatch_pending() {
        if (!channel_.is_open()) {
            return make_error(Errc::peer_closed, "dispatch: the channel to the {} is closed", peer_name());
        }
        std::size_t handled = 0;
        while (true) {
            auto received = channel_.receive();
            if (!received && received.error().code == Errc::would_block) return handled;
            if (auto done = dispatch_one(received); !done) return std::move(done).error();
            ++handled;
        }
    }

    // Waits and dispatches until `ready()` or the deadline. The first wait happens in the
    // recvmsg itself (no poll): in a frame loop the answer is usually the very next
    // message, and the wait returns as soon as `ready()` holds, leaving later messages for
    // the next dispatch or wait. Should that first message not be enough, it polls and
    // drains with whatever time is left.
    template <typename Ready>
    Result<void> dispatch_until(std::chrono::milliseconds timeout, Ready&& ready, const char* waiting_for) {
        const auto deadline = Clock::now() + timeout;
        bool first_wait = timeout.count() > 0;
        while (!ready()) {
            if (!channel_.is_open()) {
                return make_error(Errc::peer_closed, "waiting for a {}: the channel to the {} is closed", waiting_for,
                                  peer_name());
            }
            if (first_wait) {
                first_wait = false;
                // Clamped as poll() is (about 12 days), so the microseconds cannot overflow.
                auto received = channel_.receive_within(std::min(timeout, std::chrono::milliseconds(1 << 30)));
                if (!received && received.error().code == Errc::would_block) {
                    if (received.error().sys_errno == EINTR) continue;  // poll for what is left
                    return timed_out(timeout, waiting_for);
                }
                if (auto done = dispatch_one(received); !done) return done;
                continue;
            }
            auto readable = wait_readable(channel_.native_handle(), deadline);
            if (!readable) return std::move(readable).error();
            if (!*readable) return timed_out(timeout, waiting_for);
            if (auto handled = dispatch_pending(); !handled) return std::move(handled).error();
        }
        return {};
    }

    // One message as receive() returned it (an error, including the peer's end, ends the
    // dispatch); `handle` does the endpoint's part.
    Result<void> dispatch_one(Result<FrameChannel::Received>& received) {
        if (!received) {
            if (received.error().code == Errc::peer_closed) on_peer_gone();
            return std::move(received).error();
        }
        auto kind = check_frame_message(received->message, received->fds);
        if (!kind) return std::move(kind).error();
        if (*kind == FrameKind::bye) {
            on_peer_gone();
            return make_error(Errc::peer_closed, "the {} said bye", peer_name());
        }
        dispatching_ = true;
        auto done = checked(handle(*kind, received->message, received->fds));
        dispatching_ = false;
        return done;
    }

    Error timed_out(std::chrono::milliseconds timeout, const char* waiting_for) const {
        return make_error(Errc::timed_out, "no {} from the {} within {} ms", waiting_for, peer_name(),
                          timeout.count());
    }

    virtual Result<void> handle(FrameKind kind, const FrameMessage& m, std::array<UniqueFd, frame_fd_slots>& fds) = 0;
    // A last word on a peer's image after import_image() (the consumer's advertised formats).
    virtual Result<void> vet_peer_image(std::uint64_t /*id*/, const DmaBufImage& /*image*/) { return {}; }
    virtual void on_peer_gone() noexcept = 0;

    // The peer is gone: its images go; local ones stay, free again and to be shared with
    // the next peer. `keep` (a slot index, or none) is left exactly as it is.
    // Returns how many local images the peer held (now reclaimed).
    std::size_t forget_peer(std::size_t keep = max_frame_images) noexcept {
        channel_.close();
        std::size_t reclaimed = 0;
        for (Slot& slot : slots_) {
            if (slot.id == 0 || slots_.index_of(&slot) == keep) continue;
            if (!slot.local || slot.state == FrameImageState::retiring) {
                drop(slot);  // a retiring image was going anyway, and nobody can answer `retired` now
                continue;
            }
            if (slot.state == FrameImageState::presented) ++reclaimed;
            slot.state = FrameImageState::free;
            slot.unshared = true;
            slot.held_while_retiring = false;
        }
        return reclaimed;
    }

    void clear_table() noexcept {
        for (Slot& slot : slots_) drop(slot);
    }

    void say_bye() noexcept {
        if (channel_.is_open()) (void)detail::send_frame(channel_, make_frame_message(FrameKind::bye, 0));
    }

    FrameChannel channel_;
    ImageSlots<Slot> slots_;
    FrameImageListener* listener_ = nullptr;
    Role role_ = Role::producer;
    std::uint64_t next_id_ = 1;
    bool dispatching_ = false;
};

}  // namespace detail
}  // namespace texshare
