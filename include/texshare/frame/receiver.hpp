// FrameReceiver: the consumer's end of the frame protocol (see frame_protocol.hpp for the rules).
//
// Use it in the process that shows the frames. It imports each image the producer shares
// once (every check of import_image), or shares images it allocated itself (add_image: a
// UI host allocating its renderer's swapchain), sees presents in order and holds at most
// the latest presented image: a newer present releases the previous one automatically. A
// peer that breaks the protocol (unknown id, a frame number that does not increase, an id
// shared twice) gets Errc::protocol from dispatch(), naming the id; the caller then drops
// the peer. With keep_last_frame, a dead producer's last frame stays current until a new
// producer (resume()) presents one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "texshare/format_table.hpp"
#include "texshare/frame/endpoint.hpp"

namespace texshare {

struct FrameReceiverOptions {
    // Keep showing the current frame when the producer dies (its image is kept, under
    // retained_image_id if the producer allocated it) instead of dropping it.
    bool keep_last_frame = false;
};

class FrameReceiver final : public detail::FrameEndpoint {
public:
    using Options = FrameReceiverOptions;

    // Takes one end of a FrameChannel and makes it non-blocking.
    static Result<FrameReceiver> create(FrameChannel channel, Options options = {}) {
        FrameReceiver receiver(options);
        if (auto adopted = receiver.adopt_channel(std::move(channel)); !adopted) {
            return std::move(adopted).error();
        }
        return receiver;
    }

    struct Frame {
        std::uint64_t image_id = 0;
        std::uint64_t frame_number = 0;
        const DmaBufImage* image = nullptr;  // valid until the next dispatch() or release()
        bool producer_gone = false;          // a kept last frame of a dead producer (keep_last_frame)
    };

    // The image this receiver holds (the latest presented one), if any.
    std::optional<Frame> current() const {
        if (current_ == no_slot) return std::nullopt;
        return Frame{slots_[current_].id, current_frame_, &slots_[current_].image, !current_live_};
    }

    // The acquire fence that came with the current frame (empty if none or already taken):
    // wait on it before reading the image.
    UniqueFd take_acquire_fence() noexcept { return std::move(acquire_fence_); }

    // Shares an image this side allocated with the producer, which may then render into
    // it; the id has consumer_image_id_bit set. On error the image stays with the caller.
    Result<std::uint64_t> add_image(DmaBufImage&& image) { return add_local(std::move(image)); }

    // Tells the producer what this side can import (once, and again whenever it changes).
    // From then on a DMA-BUF image whose (fourcc, modifier) the table lacks is refused
    // (Errc::rejected from dispatch()): it would fail in the importer anyway, later and
    // less clearly. Shared-memory images stay acceptable (the CPU path).
    Result<void> advertise(FormatTable table) {
        auto fd = encode_format_table(table);
        if (!fd) return std::move(fd).error();
        std::array<BorrowedFd, frame_fd_slots> fds{};
        fds[0] = fd->borrow();
        if (auto sent = checked(channel_.send(make_frame_message(FrameKind::capabilities, 0), fds)); !sent) {
            return sent;
        }
        advertised_ = std::move(table);
        return {};
    }

    // Drops an image this side added (e.g. on resize), at once here, even while shown; the
    // producer stops using it and answers `retired`, after which the slot is free.
    Result<void> retire(std::uint64_t id) {
        Slot* slot = slots_.find(id);
        if (slot == nullptr || !slot->local || slot->state == FrameImageState::retiring) {
            return make_error(Errc::invalid_argument, "retire: image {} is {}", id,
                              slot == nullptr    ? "unknown"
                              : !slot->local     ? "the producer's; only the producer retires it"
                                                 : "already being retired");
        }
        if (is_current(slot)) forget_current();
        if (slot->unshared) {
            drop(*slot);
            return {};
        }
        if (auto sent = send(FrameKind::retire, id); !sent) return sent;
        slot->state = FrameImageState::retiring;
        return {};
    }

    // Gives the current image back early, with an optional release fence that signals when
    // this side's reads are done. Errc::invalid_argument for an id this receiver does not hold.
    Result<void> release(std::uint64_t id, BorrowedFd release_fence = {}) {
        if (current_ == no_slot || slots_[current_].id != id || id == 0) {
            return make_error(
                Errc::invalid_argument, "release: image {} is {}", id,
                slots_.find(id) == nullptr ? "unknown" : "not held (never presented or already released)");
        }
        return release_current(release_fence);
    }

    // Handles every pending message; returns how many. Errc::peer_closed once the producer is
    // gone: its images are dropped (but for a kept last frame), this side's are kept.
    Result<std::size_t> dispatch() { return dispatch_pending(); }

    // Dispatches until a frame newer than `after_frame` is current; Errc::timed_out when the
    // producer presents nothing for `timeout` (a stuck peer), Errc::peer_closed if it dies.
    // Returns as soon as there is one: presents queued behind it wait for the next call (or
    // dispatch(), which handles everything pending and so shows only the newest).
    Result<Frame> wait_for_frame(std::uint64_t after_frame, std::chrono::milliseconds timeout) {
        auto waited = dispatch_until(
            timeout, [&] { return current_ != no_slot && current_live_ && current_frame_ > after_frame; },
            "present");
        if (!waited) return std::move(waited).error();
        return *current();
    }

    // Takes a new producer after the previous one died: shares this side's images with it
    // (a kept frame of this side's once it is released), advertises the format table again
    // if there is one, and accepts frame numbers afresh.
    Result<void> resume(FrameChannel channel) {
        if (auto adopted = adopt_channel(std::move(channel)); !adopted) return adopted;
        last_frame_ = 0;
        if (auto shared = share_unshared(); !shared) return shared;
        if (!advertised_) return {};
        return advertise(*advertised_);  // a copy: the new producer has not heard it
    }

    std::size_t received_count() const noexcept { return received_; }
    // Presents of an image this side was retiring at the time (a race, not an error).
    std::size_t skipped_count() const noexcept { return skipped_; }

    // Says bye (best effort), closes the channel and drops the producer's images.
    void close() noexcept {
        say_bye();
        on_peer_gone();
    }

private:
    explicit FrameReceiver(Options options) : FrameEndpoint(Role::consumer), options_(options) {}

    static constexpr std::size_t no_slot = max_frame_images;

    bool is_current(const Slot* slot) const noexcept { return current_ != no_slot && slot == &slots_[current_]; }

    void forget_current() noexcept {
        slots_[current_].state = FrameImageState::free;
        current_ = no_slot;
        acquire_fence_.reset();
    }

    Result<void> release_current(BorrowedFd release_fence) {
        Slot& slot = slots_[current_];
        if (slot.id == retained_image_id) {  // a dead producer's frame: nobody to give it back to
            forget_current();
            drop(slot);
            return {};
        }
        if (slot.unshared) {  // this side's kept frame: the new producer may have it now
            forget_current();
            return send_add(slot);
        }
        if (auto sent = send(FrameKind::release, slot.id, 0, release_fence); !sent) return sent;
        const bool retiring = slot.held_while_retiring;
        forget_current();
        if (!retiring) return {};
        const std::uint64_t id = slot.id;
        drop(slot);
        return send(FrameKind::retired, id);
    }

    Result<void> handle(FrameKind kind, const FrameMessage& m, std::array<UniqueFd, frame_fd_slots>& fds) override {
        Slot* slot = slots_.find(m.image_id);
        if (slot != nullptr && slot->unshared) slot = nullptr;  // the producer cannot know it yet
        switch (kind) {
            case FrameKind::add_image:
                return accept_peer_image(m, fds);
            case FrameKind::present:
                return present(slot, m, fds);
            case FrameKind::retire:  // the producer drops an image it added
                if (slot == nullptr || slot->local || slot->held_while_retiring) {
                    return make_error(Errc::protocol, "retire of image {}, which is {}", m.image_id,
                                      slot == nullptr ? "unknown"
                                      : slot->local   ? "the consumer's own"
                                                      : "already retiring");
                }
                if (is_current(slot)) {
                    slot->held_while_retiring = true;
                    return {};
                }
                drop(*slot);
                return send(FrameKind::retired, m.image_id);
            case FrameKind::retired:
                if (slot == nullptr || !slot->local || slot->state != FrameImageState::retiring) {
                    return make_error(Errc::protocol, "retired for image {}, which this side was not retiring",
                                      m.image_id);
                }
                drop(*slot);
                return {};
            default:
                return make_error(Errc::protocol, "{} of image {} sent to a consumer", to_string(kind),
                                  m.image_id);
        }
    }

    Result<void> present(Slot* slot, const FrameMessage& m, std::array<UniqueFd, frame_fd_slots>& fds) {
        if (slot == nullptr || slot->held_while_retiring) {
            return make_error(Errc::protocol, "present of image {}, which is {}", m.image_id,
                              slot == nullptr ? "unknown" : "retiring");
        }
        if (m.frame_number <= last_frame_) {
            return make_error(Errc::protocol, "present of image {} as frame {}, not after frame {}", m.image_id,
                              m.frame_number, last_frame_);
        }
        last_frame_ = m.frame_number;
        if (slot->state == FrameImageState::retiring) {  // ours, retired before the present crossed
            ++skipped_;
            return {};
        }
        if (is_current(slot)) {
            return make_error(Errc::protocol, "present of image {}, which this side still holds", m.image_id);
        }
        if (current_ != no_slot) {
            if (auto released = release_current({}); !released) return released;
        }
        current_ = slots_.index_of(slot);
        slot->state = FrameImageState::presented;
        current_frame_ = m.frame_number;
        current_live_ = true;
        acquire_fence_ = std::move(fds[frame_fence_slot]);
        ++received_;
        return {};
    }

    Result<void> vet_peer_image(std::uint64_t id, const DmaBufImage& image) override {
        if (!advertised_ || image.backing() != Backing::dma_buf) return {};
        if (advertised_->contains(image.fourcc(), image.layout().modifier)) return {};
        return make_error(Errc::rejected, "image {}: {} with modifier {} was never advertised ({} formats advertised)", id,
                          format_name(image.fourcc()), modifier_name(image.layout().modifier),
                          advertised_->formats.pair_count());
    }

    void on_peer_gone() noexcept override {
        const bool keep = options_.keep_last_frame && current_ != no_slot;
        current_live_ = false;
        (void)forget_peer(keep ? current_ : no_slot);
        if (!keep) {
            current_ = no_slot;
            acquire_fence_.reset();
            return;
        }
        Slot& kept = slots_[current_];
        kept.held_while_retiring = false;
        if (kept.local) {
            kept.unshared = true;
        } else if (kept.id != retained_image_id) {
            const std::uint64_t old_id = std::exchange(kept.id, retained_image_id);
            if (listener_ != nullptr) listener_->image_renamed(old_id, retained_image_id);
        }
    }

    Options options_;
    std::size_t current_ = no_slot;  // index of the held image in slots_
    std::uint64_t current_frame_ = 0;
    bool current_live_ = false;  // presented by the current producer (not a kept frame)
    std::uint64_t last_frame_ = 0;
    UniqueFd acquire_fence_;
    std::size_t received_ = 0;
    std::size_t skipped_ = 0;
    std::optional<FormatTable> advertised_;
};

}  // namespace texshare
