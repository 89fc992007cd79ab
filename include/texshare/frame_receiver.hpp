// FrameReceiver: the consumer's end of the frame protocol (see frame_protocol.hpp for the rules).
//
// Use it in the process that shows the images. It imports each shared image once (every
// check of import_image), keeps it by id, sees presents in order and holds at most the
// latest presented image: a newer present releases the previous one automatically. A peer
// that breaks the protocol (unknown id, a frame number that does not increase, an id
// shared twice) gets Errc::protocol from dispatch(), with the id in the message; the
// caller then drops the peer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "texshare/frame_messages.hpp"

namespace texshare {

class FrameReceiver {
public:
    // Takes one end of a FrameChannel and makes it non-blocking.
    static Result<FrameReceiver> create(FrameChannel channel) {
        if (auto nonblocking = channel.set_nonblocking(true); !nonblocking) {
            return std::move(nonblocking).error();
        }
        FrameReceiver receiver;
        receiver.channel_ = std::move(channel);
        return receiver;
    }

    struct Frame {
        std::uint64_t image_id = 0;
        std::uint64_t frame_number = 0;
        const DmaBufImage* image = nullptr;  // valid until the next dispatch() or release()
    };

    // The image this receiver holds (the latest presented one), if any.
    std::optional<Frame> current() const {
        if (current_ == no_slot) return std::nullopt;
        return Frame{slots_[current_].id, current_frame_, &slots_[current_].image};
    }

    // The acquire fence that came with the current frame (empty if none or already taken):
    // wait on it before reading the image.
    UniqueFd take_acquire_fence() noexcept { return std::move(acquire_fence_); }

    // Gives the current image back early, with an optional release fence that signals when
    // this side's reads are done. Errc::invalid_argument for an id this receiver does not hold.
    Result<void> release(std::uint64_t id, BorrowedFd release_fence = {}) {
        if (current_ == no_slot || slots_[current_].id != id || id == 0) {
            return make_error(
                Errc::invalid_argument, "release: image {} is {}", id,
                slots_.find(id) == nullptr ? "unknown" : "not held (never presented or already released)");
        }
        return checked(release_current(release_fence));
    }

    // Handles every pending message; returns how many. Errc::peer_closed once the producer is
    // gone (every image is dropped by then).
    Result<std::size_t> dispatch() {
        if (!channel_.is_open()) {
            return make_error(Errc::peer_closed, "FrameReceiver::dispatch: the channel is closed");
        }
        std::size_t handled = 0;
        while (true) {  // until would_block: the drain ends without a syscall of its own
            auto received = channel_.receive();
            if (!received) {
                if (received.error().code == Errc::would_block) return handled;
                if (received.error().code == Errc::peer_closed) peer_gone();
                return std::move(received).error();
            }
            auto kind = check_frame_message(received->message, received->fds);
            if (!kind) return std::move(kind).error();
            if (auto done = checked(handle(*kind, received->message, received->fds)); !done) {
                return std::move(done).error();
            }
            ++handled;
        }
        return handled;
    }

    const DmaBufImage* image(std::uint64_t id) const {
        const Slot* slot = slots_.find(id);
        return slot != nullptr ? &slot->image : nullptr;
    }
    std::size_t image_count() const noexcept { return slots_.count(); }
    bool is_open() const noexcept { return channel_.is_open(); }
    BorrowedFd native_handle() const noexcept { return channel_.native_handle(); }

    // Says bye (best effort), closes the channel and drops every image.
    void close() noexcept {
        if (channel_.is_open()) (void)detail::send_frame(channel_, make_frame_message(FrameKind::bye, 0));
        peer_gone();
    }

private:
    FrameReceiver() = default;

    struct Slot {
        std::uint64_t id = 0;  // 0: empty slot
        DmaBufImage image;
        bool retiring = false;  // drop as soon as it is released
    };

    bool is_current(const Slot* slot) const noexcept {
        return current_ != no_slot && slot == &slots_[current_];
    }

    Result<void> release_current(BorrowedFd release_fence) {
        Slot& slot = slots_[current_];
        auto sent =
            detail::send_frame(channel_, make_frame_message(FrameKind::release, slot.id), release_fence);
        if (!sent) return sent;
        current_ = no_slot;
        acquire_fence_.reset();
        return slot.retiring ? drop(slot) : Result<void>();
    }

    Result<void> drop(Slot& slot) {
        const std::uint64_t id = slot.id;
        slot = Slot{};
        return detail::send_frame(channel_, make_frame_message(FrameKind::retired, id));
    }

    Result<void> handle(FrameKind kind, const FrameMessage& m, std::array<UniqueFd, frame_fd_slots>& fds) {
        Slot* slot = slots_.find(m.image_id);
        switch (kind) {
            case FrameKind::add_image:
                return add(m, fds);
            case FrameKind::present:
                if (slot == nullptr || slot->retiring) {
                    return make_error(Errc::protocol, "present of image {}, which is {}", m.image_id,
                                      slot == nullptr ? "unknown" : "retiring");
                }
                if (m.frame_number <= last_frame_) {
                    return make_error(Errc::protocol, "present of image {} as frame {}, not after frame {}",
                                      m.image_id, m.frame_number, last_frame_);
                }
                if (is_current(slot)) {
                    return make_error(Errc::protocol, "present of image {}, which this side still holds",
                                      m.image_id);
                }
                if (current_ != no_slot) {
                    if (auto released = release_current({}); !released) return released;
                }
                current_ = slots_.index_of(slot);
                current_frame_ = last_frame_ = m.frame_number;
                acquire_fence_ = std::move(fds[frame_fence_slot]);
                return {};
            case FrameKind::retire:
                if (slot == nullptr || slot->retiring) {
                    return make_error(Errc::protocol, "retire of image {}, which is {}", m.image_id,
                                      slot == nullptr ? "unknown" : "already retiring");
                }
                slot->retiring = true;
                return is_current(slot) ? Result<void>() : drop(*slot);
            case FrameKind::bye:
                peer_gone();
                return make_error(Errc::peer_closed, "the producer said bye");
            default:
                return make_error(Errc::protocol, "{} of image {} sent to a consumer", to_string(kind),
                                  m.image_id);
        }
    }

    Result<void> add(const FrameMessage& m, std::array<UniqueFd, frame_fd_slots>& fds) {
        if (m.image_id == 0 || slots_.find(m.image_id) != nullptr) {
            return make_error(Errc::protocol, "add_image with image id {}, which is {}", m.image_id,
                              m.image_id == 0 ? "reserved" : "already in use");
        }
        Slot* slot = slots_.empty_slot();
        if (slot == nullptr) {
            return make_error(Errc::protocol, "add_image of image {}: all {} image slots are in use",
                              m.image_id, max_frame_images);
        }
        PlaneFds planes;
        for (std::size_t i = 0; i < max_planes; ++i) planes[i] = std::move(fds[i]);
        auto image = import_image(m.descriptor, std::move(planes));
        if (!image) return std::move(image).error();
        *slot = Slot{m.image_id, std::move(*image), false};
        return {};
    }

    // A send that finds the producer gone drops everything, as dispatch() would.
    Result<void> checked(Result<void> sent) noexcept {
        if (!sent && sent.error().code == Errc::peer_closed) peer_gone();
        return sent;
    }

    void peer_gone() noexcept {
        channel_.close();
        current_ = no_slot;
        acquire_fence_.reset();
        for (Slot& slot : slots_) slot = Slot{};
    }

    FrameChannel channel_;
    detail::ImageSlots<Slot> slots_;
    static constexpr std::size_t no_slot = max_frame_images;
    std::size_t current_ = no_slot;  // index of the held image in slots_
    std::uint64_t current_frame_ = 0;
    std::uint64_t last_frame_ = 0;
    UniqueFd acquire_fence_;
};

}  // namespace texshare
