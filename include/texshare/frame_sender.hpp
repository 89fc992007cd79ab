// FrameSender: the producer's end of the frame protocol (see frame_protocol.hpp for the rules).
//
// Use it in the process that allocates the images, whichever of the two that is. It owns
// the images it shares, tracks each as free, presented (the consumer holds it) or retiring,
// and never hands out an image the consumer still holds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "texshare/frame_messages.hpp"

namespace texshare {

enum class FrameImageState { free, presented, retiring };

class FrameSender {
public:
    // Takes one end of a FrameChannel and makes it non-blocking.
    static Result<FrameSender> create(FrameChannel channel) {
        if (auto nonblocking = channel.set_nonblocking(true); !nonblocking) {
            return std::move(nonblocking).error();
        }
        FrameSender sender;
        sender.channel_ = std::move(channel);
        return sender;
    }

    // Shares image with the consumer under a fresh id and keeps it. On error the image stays
    // with the caller (it is moved from only on success).
    Result<std::uint64_t> add_image(DmaBufImage&& image) {
        if (image.empty()) return make_error(Errc::invalid_argument, "add_image: the image is empty");
        Slot* slot = slots_.empty_slot();
        if (slot == nullptr) {
            return make_error(Errc::invalid_argument,
                              "add_image: all {} image slots are in use; retire one first", max_frame_images);
        }
        const std::uint64_t id = next_id_;
        FrameMessage message = make_frame_message(FrameKind::add_image, id);
        message.descriptor = describe_image(id, image);
        std::array<BorrowedFd, frame_fd_slots> fds{};
        for (std::size_t i = 0; i < max_planes; ++i) fds[i] = image.plane_fd(i);
        if (auto sent = checked(channel_.send(message, fds)); !sent) return std::move(sent).error();
        ++next_id_;
        *slot = Slot{id, std::move(image), FrameImageState::free, UniqueFd(), false};
        return id;
    }

    // Shows image id as the next frame; returns its frame number. acquire_fence (optional)
    // signals when the producer's writes are done; it is sent, not taken.
    Result<std::uint64_t> present(std::uint64_t id, BorrowedFd acquire_fence = {}) {
        Slot* slot = slots_.find(id);
        if (slot == nullptr) {
            return make_error(Errc::invalid_argument, "present: unknown image id {}", id);
        }
        if (slot->state != FrameImageState::free) {
            return make_error(Errc::invalid_argument, "present: image {} is {}; it cannot be presented", id,
                              slot->state == FrameImageState::presented
                                  ? "still held by the consumer (presented, not yet released)"
                                  : "being retired");
        }
        if (slot->release_fence) {
            return make_error(Errc::invalid_argument,
                              "present: image {} has a release fence nobody took; take it "
                              "(acquire_free_image or take_release_fence) and wait on it first",
                              id);
        }
        const std::uint64_t frame = next_frame_;
        auto sent = checked(
            detail::send_frame(channel_, make_frame_message(FrameKind::present, id, frame), acquire_fence));
        if (!sent) return std::move(sent).error();
        ++next_frame_;
        slot->state = FrameImageState::presented;
        return frame;
    }

    struct FreeImage {
        std::uint64_t id = 0;
        UniqueFd release_fence;  // wait on it (if set) before writing into the image
    };

    // A free image to render into next, or Errc::would_block when the consumer holds them all.
    Result<FreeImage> acquire_free_image() {
        for (Slot& slot : slots_) {
            if (slot.id != 0 && slot.state == FrameImageState::free) {
                return FreeImage{slot.id, std::move(slot.release_fence)};
            }
        }
        return make_error(Errc::would_block, "acquire_free_image: no free image (all presented or retiring)");
    }

    UniqueFd take_release_fence(std::uint64_t id) {
        Slot* slot = slots_.find(id);
        return slot != nullptr ? std::move(slot->release_fence) : UniqueFd();
    }

    // Starts dropping image id; it leaves this sender when the consumer answers `retired`.
    Result<void> retire(std::uint64_t id) {
        Slot* slot = slots_.find(id);
        if (slot == nullptr) return make_error(Errc::invalid_argument, "retire: unknown image id {}", id);
        if (slot->state == FrameImageState::retiring) {
            return make_error(Errc::invalid_argument, "retire: image {} is already being retired", id);
        }
        if (auto sent = checked(detail::send_frame(channel_, make_frame_message(FrameKind::retire, id)));
            !sent) {
            return sent;
        }
        slot->held_while_retiring = slot->state == FrameImageState::presented;
        slot->state = FrameImageState::retiring;
        return {};
    }

    // Handles every pending message; returns how many. Errc::peer_closed once the consumer is
    // gone (every presented image is then free again and counted in reclaimed_count()).
    Result<std::size_t> dispatch() {
        if (!channel_.is_open()) {
            return make_error(Errc::peer_closed, "FrameSender::dispatch: the channel is closed");
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
            if (auto done = handle(*kind, received->message.image_id, received->fds); !done) {
                return std::move(done).error();
            }
            ++handled;
        }
        return handled;
    }

    std::optional<FrameImageState> state(std::uint64_t id) const {
        const Slot* slot = slots_.find(id);
        return slot != nullptr ? std::optional(slot->state) : std::nullopt;
    }
    const DmaBufImage* image(std::uint64_t id) const {
        const Slot* slot = slots_.find(id);
        return slot != nullptr ? &slot->image : nullptr;
    }
    std::size_t image_count() const noexcept { return slots_.count(); }
    std::size_t reclaimed_count() const noexcept { return reclaimed_; }
    bool is_open() const noexcept { return channel_.is_open(); }
    BorrowedFd native_handle() const noexcept { return channel_.native_handle(); }

    // Says bye (best effort) and closes the channel; the images stay with this sender.
    void close() noexcept {
        if (channel_.is_open()) (void)detail::send_frame(channel_, make_frame_message(FrameKind::bye, 0));
        peer_gone();
    }

private:
    FrameSender() = default;

    struct Slot {
        std::uint64_t id = 0;  // 0: empty slot
        DmaBufImage image;
        FrameImageState state = FrameImageState::free;
        UniqueFd release_fence;
        bool held_while_retiring = false;
    };

    Result<void> handle(FrameKind kind, std::uint64_t id, std::array<UniqueFd, frame_fd_slots>& fds) {
        Slot* slot = slots_.find(id);
        switch (kind) {
            case FrameKind::release:
                if (slot != nullptr && slot->state == FrameImageState::presented) {
                    slot->state = FrameImageState::free;
                    slot->release_fence = std::move(fds[frame_fence_slot]);
                    return {};
                }
                if (slot != nullptr && slot->held_while_retiring) {
                    slot->held_while_retiring = false;  // the fence is moot: the image goes away
                    return {};
                }
                return make_error(Errc::protocol, "release of image {}, which the consumer does not hold",
                                  id);
            case FrameKind::retired:
                if (slot == nullptr || slot->state != FrameImageState::retiring ||
                    slot->held_while_retiring) {
                    return make_error(Errc::protocol,
                                      "retired for image {}, which was not retiring or not "
                                      "released first",
                                      id);
                }
                *slot = Slot{};
                return {};
            case FrameKind::bye:
                peer_gone();
                return make_error(Errc::peer_closed, "the consumer said bye");
            default:
                return make_error(Errc::protocol, "{} of image {} sent to a producer", to_string(kind), id);
        }
    }

    // A send that finds the consumer gone reclaims everything, as dispatch() would.
    Result<void> checked(Result<void> sent) noexcept {
        if (!sent && sent.error().code == Errc::peer_closed) peer_gone();
        return sent;
    }

    void peer_gone() noexcept {
        channel_.close();
        for (Slot& slot : slots_) {
            if (slot.id == 0) continue;
            if (slot.state == FrameImageState::retiring) {
                slot = Slot{};  // nobody can answer `retired` any more; it was going anyway
            } else if (slot.state == FrameImageState::presented) {
                slot.state = FrameImageState::free;
                ++reclaimed_;
            }
        }
    }

    FrameChannel channel_;
    detail::ImageSlots<Slot> slots_;
    std::uint64_t next_id_ = 1;
    std::uint64_t next_frame_ = 1;
    std::size_t reclaimed_ = 0;
};

}  // namespace texshare
