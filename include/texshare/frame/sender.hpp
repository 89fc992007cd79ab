// FrameSender: the producer's end of the frame protocol (see frame_protocol.hpp for the rules).
//
// Use it in the process that renders the frames. It presents images by id and gets each
// back by a release message; it tracks every image as free, presented (the consumer holds
// it) or retiring, and never hands out an image the consumer still holds. The images are
// its own (add_image: a video decoder allocating its output) or the consumer's (shared by
// the consumer's FrameReceiver::add_image: a UI host allocating its renderer's swapchain).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "texshare/format_table.hpp"
#include "texshare/frame/endpoint.hpp"

namespace texshare {

class FrameSender final : public detail::FrameEndpoint {
public:
    // Takes one end of a FrameChannel and makes it non-blocking.
    static Result<FrameSender> create(FrameChannel channel) {
        FrameSender sender;
        if (auto adopted = sender.adopt_channel(std::move(channel)); !adopted) return std::move(adopted).error();
        return sender;
    }

    // Shares an image this side allocated under a fresh id and keeps it. On error the image
    // stays with the caller (it is moved from only on success). Without a peer (gone, not
    // yet resumed) the image is kept and shared on resume().
    Result<std::uint64_t> add_image(DmaBufImage&& image) { return add_local(std::move(image)); }

    // Shows image id as the next frame; returns its frame number. acquire_fence (optional)
    // signals when the producer's writes are done; it is sent, not taken.
    Result<std::uint64_t> present(std::uint64_t id, BorrowedFd acquire_fence = {}) {
        Slot* slot = slots_.find(id);
        if (slot == nullptr) return make_error(Errc::invalid_argument, "present: unknown image id {}", id);
        if (slot->state != FrameImageState::free) {
            return make_error(Errc::invalid_argument, "present: image {} is {}; it cannot be presented", id,
                              slot->state == FrameImageState::presented
                                  ? "still held by the consumer (presented, not yet released)"
                                  : "being retired");
        }
        if (slot->fence) {
            return make_error(Errc::invalid_argument,
                              "present: image {} has a release fence nobody took; take it "
                              "(acquire_free_image or take_release_fence) and wait on it first",
                              id);
        }
        if (slot->unshared) {
            return make_error(Errc::invalid_argument, "present: image {}: no consumer to present to", id);
        }
        const std::uint64_t frame = next_frame_;
        if (auto sent = send(FrameKind::present, id, frame, acquire_fence); !sent) return std::move(sent).error();
        ++next_frame_;
        ++presented_;
        slot->state = FrameImageState::presented;
        slot->last_frame = frame;
        return frame;
    }

    struct FreeImage {
        std::uint64_t id = 0;
        UniqueFd release_fence;  // wait on it (if set) before writing into the image
    };

    // A free image to render into next (the least recently presented), or Errc::would_block
    // when the consumer holds them all.
    Result<FreeImage> acquire_free_image() {
        Slot* best = nullptr;
        for (Slot& slot : slots_) {
            if (slot.id == 0 || slot.state != FrameImageState::free || slot.unshared) continue;
            if (best == nullptr || slot.last_frame < best->last_frame) best = &slot;
        }
        if (best == nullptr) {
            return make_error(Errc::would_block, "acquire_free_image: no free image (all presented or retiring)");
        }
        return FreeImage{best->id, std::move(best->fence)};
    }

    // Like acquire_free_image(), but dispatches until one is free; Errc::timed_out when the
    // consumer releases nothing for `timeout` (a stuck peer), Errc::peer_closed if it dies.
    Result<FreeImage> wait_for_free_image(std::chrono::milliseconds timeout) {
        auto waited = dispatch_until(
            timeout, [this] { return has_free_image(); }, "release");
        if (!waited) return std::move(waited).error();
        return acquire_free_image();
    }

    UniqueFd take_release_fence(std::uint64_t id) {
        Slot* slot = slots_.find(id);
        return slot != nullptr ? std::move(slot->fence) : UniqueFd();
    }

    // Starts dropping image id (one this side added); it leaves this sender when the
    // consumer answers `retired`, or at once when no consumer has seen it.
    Result<void> retire(std::uint64_t id) {
        Slot* slot = slots_.find(id);
        if (slot == nullptr) return make_error(Errc::invalid_argument, "retire: unknown image id {}", id);
        if (!slot->local) {
            return make_error(Errc::invalid_argument,
                              "retire: image {} was added by the consumer; only the consumer retires it", id);
        }
        if (slot->state == FrameImageState::retiring) {
            return make_error(Errc::invalid_argument, "retire: image {} is already being retired", id);
        }
        if (slot->unshared) {
            drop(*slot);
            return {};
        }
        if (auto sent = send(FrameKind::retire, id); !sent) return sent;
        slot->held_while_retiring = slot->state == FrameImageState::presented;
        slot->state = FrameImageState::retiring;
        return {};
    }

    // Handles every pending message; returns how many. Errc::peer_closed once the consumer is
    // gone: every image of this side it held is free again (counted in reclaimed_count()),
    // and its own images are dropped.
    Result<std::size_t> dispatch() { return dispatch_pending(); }

    // Takes a new consumer after the previous one died: shares this side's images with it
    // (all free) and goes on presenting; frame numbers keep increasing.
    Result<void> resume(FrameChannel channel) {
        if (auto adopted = adopt_channel(std::move(channel)); !adopted) return adopted;
        return share_unshared();
    }

    // What the consumer said it can import (FrameReceiver::advertise), if it said so; feed it
    // to negotiate() (negotiation.hpp) and allocate what that picks.
    const FormatTable* peer_formats() const noexcept { return peer_formats_ ? &*peer_formats_ : nullptr; }
    // True once after each new table from the consumer: time to renegotiate, retire the old
    // images and add a new set.
    bool take_formats_changed() noexcept { return std::exchange(formats_changed_, false); }

    // The number the next present() will carry (e.g. to stamp or timestamp the frame).
    std::uint64_t next_frame_number() const noexcept { return next_frame_; }
    std::size_t presented_count() const noexcept { return presented_; }
    std::size_t released_count() const noexcept { return released_; }
    std::size_t reclaimed_count() const noexcept { return reclaimed_; }

    // Says bye (best effort) and closes the channel; this side's images stay.
    void close() noexcept {
        say_bye();
        on_peer_gone();
    }

private:
    FrameSender() : FrameEndpoint(Role::producer) {}

    bool has_free_image() const noexcept {
        for (const Slot& slot : slots_) {
            if (slot.id != 0 && slot.state == FrameImageState::free && !slot.unshared) return true;
        }
        return false;
    }

    Result<void> handle(FrameKind kind, const FrameMessage& m, std::array<UniqueFd, frame_fd_slots>& fds) override {
        Slot* slot = slots_.find(m.image_id);
        switch (kind) {
            case FrameKind::add_image:
                return accept_peer_image(m, fds);
            case FrameKind::release:
                if (slot != nullptr && slot->state == FrameImageState::presented) {
                    slot->state = FrameImageState::free;
                    slot->fence = std::move(fds[frame_fence_slot]);
                    ++released_;
                    return {};
                }
                if (slot != nullptr && slot->held_while_retiring) {
                    slot->held_while_retiring = false;  // the fence is moot: the image goes away
                    ++released_;
                    return {};
                }
                return make_error(Errc::protocol, "release of image {}, which the consumer does not hold",
                                  m.image_id);
            case FrameKind::retire:  // the consumer drops an image it added, held or not
                if (slot == nullptr || slot->local) {
                    return make_error(Errc::protocol, "retire of image {}, which is {}", m.image_id,
                                      slot == nullptr ? "unknown" : "the producer's own");
                }
                drop(*slot);
                return send(FrameKind::retired, m.image_id);
            case FrameKind::capabilities: {
                if (!fds[0]) return make_error(Errc::protocol, "capabilities without a format table fd");
                auto table = decode_format_table(fds[0].borrow());
                if (!table) return std::move(table).error();
                if (!peer_formats_ || *peer_formats_ != *table) formats_changed_ = true;
                peer_formats_ = std::move(*table);
                return {};
            }
            case FrameKind::retired:
                if (slot == nullptr || !slot->local || slot->state != FrameImageState::retiring ||
                    slot->held_while_retiring) {
                    return make_error(Errc::protocol,
                                      "retired for image {}, which was not retiring or not "
                                      "released first",
                                      m.image_id);
                }
                drop(*slot);
                return {};
            default:
                return make_error(Errc::protocol, "{} of image {} sent to a producer", to_string(kind),
                                  m.image_id);
        }
    }

    void on_peer_gone() noexcept override {
        reclaimed_ += forget_peer();
        peer_formats_.reset();  // the next consumer may be on another device
        formats_changed_ = false;
    }

    std::uint64_t next_frame_ = 1;
    std::size_t presented_ = 0;
    std::size_t released_ = 0;
    std::size_t reclaimed_ = 0;
    std::optional<FormatTable> peer_formats_;
    bool formats_changed_ = false;
};

}  // namespace texshare
