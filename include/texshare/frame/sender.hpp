// FrameSender: the producer's end of the frame protocol (see frame/protocol.hpp for the rules).
//
// Use it in the process that renders the frames. It presents images by id and gets each
// back by a release message; it tracks every image as free, presented (the consumer holds
// it) or retiring, and never hands out an image the consumer still holds. The images are
// its own (add_image: a video decoder allocating its output) or the consumer's (shared by
// the consumer's FrameReceiver::add_image: a UI host allocating its renderer's swapchain).
// Paced (Options::paced), it renders one frame per begin_frame of the consumer
// (wait_for_begin_frame); otherwise it runs free. With feedback (on by default) it learns
// what became of each present: presented (when it reached the screen) or discarded
// (replaced unshown), read with take_feedback().
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "texshare/format_table.hpp"
#include "texshare/frame/image_table.hpp"
#include "texshare/frame/link.hpp"
#include "texshare/frame/present_metadata.hpp"
#include "texshare/frame/sharing.hpp"
#include "texshare/frame/timeline.hpp"

namespace texshare {

struct FrameSenderOptions {
    // How many images the consumer may add to this sender at a time (its add_image: a host
    // allocating its renderer's swapchain), at most max_frame_images; 0: none. The rest of
    // the table stays this side's own. Beyond it an add_image is refused (Errc::rejected
    // from dispatch(), naming quota and count) and the consumer told (FrameKind::refused).
    std::size_t max_consumer_images = max_frame_images / 2;
    // The fence kinds this side accepts with a release (fence_kind.hpp). A release fence of
    // another kind is refused like a fence that is not what it says (Errc::rejected from
    // dispatch(), nothing changed). Add FenceKind::vulkan_opaque_semaphore only where
    // negotiation proved the consumer to be on this device and driver, and this side waits
    // on release fences with Vulkan (vulkan/fence.hpp, SyncMode::opaque_fd).
    // Add FenceKind::drm_syncobj_timeline to take the consumer's release timeline
    // (FrameKind::timeline) and release points on it (release_point()).
    FenceKindSet accepted_fence_kinds = default_fence_kinds;
    // Ask the consumer to pace this producer: it sends begin_frame from its vsync or timer,
    // and this side renders one frame per begin_frame (wait_for_begin_frame). A present
    // without one is still fine (the consumer shows the newest and discards the one it
    // replaces unshown: mailbox). Off: the producer runs free and gets no begin_frame.
    bool paced = false;
    // Ask for presentation feedback: presented or discarded for every present
    // (take_feedback()). Used when the consumer offers it too.
    bool feedback = true;
};

// What became of one present (FrameSender::take_feedback()).
struct PresentFeedback {
    std::uint64_t image_id = 0;
    std::uint64_t frame_number = 0;          // the present's frame number
    std::uint64_t begin_frame_sequence = 0;  // the begin_frame it answered; 0: none
    std::int64_t time_ns = 0;                // presented: when it reached the screen (CLOCK_MONOTONIC); discarded: 0
    std::uint32_t flags = 0;                 // presented: presented_flag_* bits
    bool presented = false;                  // false: discarded (replaced or released unshown)
};

class FrameSender {
public:
    using Options = FrameSenderOptions;

    // Takes one end of a connected FrameChannel. The socket is made blocking (O_NONBLOCK
    // cleared) and every call on it non-blocking (MSG_DONTWAIT), so that waits happen inside
    // recvmsg under SO_RCVTIMEO; dispatch() and sends never block. Errc::system if fcntl fails,
    // Errc::invalid_argument for a max_consumer_images above max_frame_images.
    static Result<FrameSender> create(FrameChannel channel, Options options = {}) {
        if (options.max_consumer_images > max_frame_images) {
            return make_error(Errc::invalid_argument,
                              "max_consumer_images {} is more than the table's {} slots",
                              options.max_consumer_images, max_frame_images);
        }
        FrameSender sender;
        sender.table_.set_peer_quota(options.max_consumer_images);
        sender.accepted_fences_ = options.accepted_fence_kinds;
        sender.paced_ = options.paced;
        sender.offered_ = (options.paced ? hello_feature_pacing : 0) | (options.feedback ? hello_feature_feedback : 0);
        if (auto adopted = sender.link_.adopt(std::move(channel)); !adopted) return std::move(adopted).error();
        // A consumer gone already is no error here: dispatch() reports it, as before the hello.
        if (auto greeted = sender.link_.greet(HelloRole::producer, sender.offered_);
            !greeted && greeted.error().code != Errc::peer_closed) {
            return std::move(greeted).error();
        }
        return sender;
    }

    bool is_open() const noexcept { return link_.is_open(); }
    // Readable (poll/epoll) means dispatch() has work: a message, or a consumer that is gone.
    BorrowedFd native_handle() const noexcept { return link_.native_handle(); }
    // Not owned; must outlive this sender or be unset (nullptr) first.
    void set_listener(FrameImageListener* listener) noexcept { table_.set_listener(listener); }

    // The image under id (nullptr for an unknown id); valid until it leaves this sender.
    const DmaBufImage* image(std::uint64_t id) const { return table_.image(id); }
    std::optional<FrameImageState> state(std::uint64_t id) const { return table_.state(id); }
    // Whether this side allocated image id (false for the consumer's images and unknown ids).
    bool is_local(std::uint64_t id) const { return table_.is_local(id); }
    std::size_t image_count() const noexcept { return table_.count(); }

    // Shares an image this side allocated under a fresh id and keeps it. On error the image
    // stays with the caller (it is moved from only on success). Without a consumer (gone,
    // not yet resumed) the image is kept and shared on resume().
    Result<std::uint64_t> add_image(DmaBufImage&& image) {
        return detail::add_local_image(table_, link_, std::move(image));
    }

    // Shows image id as the next frame; returns its frame number. acquire_fence (optional)
    // signals when the producer's writes are done; it is sent, not taken, as a sync_file
    // (FenceKind::sync_file). Errors: invalid_argument (unknown id, held, retiring, an
    // untaken release fence, no consumer has it), fd_not_open (a closed fence fd),
    // peer_closed (the consumer is gone).
    [[gnu::hot]]
    Result<std::uint64_t> present(std::uint64_t id, BorrowedFd acquire_fence = {}) {
        return present(id, acquire_fence, FenceKind::sync_file);
    }

    // The same with the fence's kind named: FenceKind::vulkan_opaque_semaphore for a Vulkan
    // semaphore exported as OPAQUE_FD (vulkan::Fences::fence_for_peer gives fd and kind
    // together), which the consumer must accept (FrameReceiverOptions::accepted_fence_kinds)
    // or it refuses the present. An empty fence goes as no fence whatever the kind; a fence
    // of kind none, or of a kind this version does not know, is Errc::invalid_argument.
    [[gnu::hot]]
    Result<std::uint64_t> present(std::uint64_t id, BorrowedFd acquire_fence, FenceKind fence_kind) {
        return present(id, acquire_fence, fence_kind, PresentInfo{});
    }

    // The same with what the present says about the frame (present_metadata.hpp): its
    // damage (empty: the whole image; more than 8 rectangles collapse into their bounding
    // box), content time and flags. Errc::invalid_argument for damage that is empty or
    // outside the image, or unknown flags. The present answers the latest begin_frame not
    // answered yet (0 if none), which the consumer echoes in its feedback.
    Result<std::uint64_t> present(std::uint64_t id, const PresentInfo& info) {
        return present(id, BorrowedFd(), FenceKind::none, info);
    }
    [[gnu::hot]]
    Result<std::uint64_t> present(std::uint64_t id, BorrowedFd acquire_fence, FenceKind fence_kind,
                                  const PresentInfo& info) {
        if (acquire_fence.valid() && !fence_kind_carries_fd(static_cast<std::uint8_t>(fence_kind))) [[unlikely]] {
            return make_error(Errc::invalid_argument, "present: image {}: a fence fd {} of kind {} ({}), which "
                              "carries no fd", id, acquire_fence.get(), static_cast<unsigned>(fence_kind),
                              to_string(fence_kind));
        }
        return present_with(id, acquire_fence, fence_kind, 0, info);
    }

private:
    [[gnu::hot]] [[gnu::always_inline]]
    Result<std::uint64_t> present_with(std::uint64_t id, BorrowedFd acquire_fence, FenceKind fence_kind,
                                       std::uint64_t point, const PresentInfo& info) {
        detail::FrameSlot* slot = table_.find(id);
        if (slot == nullptr) return make_error(Errc::invalid_argument, "present: unknown image id {}", id);
        if (slot->state != FrameImageState::free) {
            return make_error(Errc::invalid_argument, "present: image {} is {}; it cannot be presented", id,
                              slot->state == FrameImageState::presented
                                  ? "still held by the consumer (presented, not yet released)"
                                  : "being retired");
        }
        if (slot->fence || slot->fence_point != 0) {
            return make_error(Errc::invalid_argument,
                              "present: image {} has a release fence nobody took; take it "
                              "(acquire_free_image or take_release_fence) and wait on it first",
                              id);
        }
        if (slot->unshared) {
            return make_error(Errc::invalid_argument, "present: image {}: {}", id,
                              slot->refused
                                  ? "the consumer refused it (fds cut off, or beyond its quota); retire it"
                                  : "no consumer to present to");
        }
        const std::uint64_t frame = next_frame_;
        const std::uint64_t begin_frame_sequence = begin_pending_;
        if (!info.damage.empty() || info.flags != 0 || info.content_time_ns != 0) {
            auto made = make_present_metadata(info, slot->image.width(), slot->image.height());
            if (!made) return std::move(made).error();
            made->begin_frame_sequence = begin_frame_sequence;
            if (auto sent = link_.send(FrameKind::present, id, frame, acquire_fence, fence_kind, *made, point); !sent)
                return std::move(sent).error();
        } else {
            // Nothing but the begin_frame it answers: the metadata's first word, the rest zero
            // (the link zeroes what a longer earlier payload left), not 152 bytes built and copied.
            const BeginFrameAnswer answer{begin_frame_sequence};
            if (auto sent = link_.send(FrameKind::present, id, frame, acquire_fence, fence_kind, answer, point); !sent)
                return std::move(sent).error();
        }
        ++next_frame_;
        ++presented_;
        begin_pending_ = 0;
        slot->state = FrameImageState::presented;
        slot->last_frame = frame;
        // Before the consumer's hello this side cannot know whether it offers feedback: it
        // expects it if it asked, and forgets that when the hello says no (take_hello).
        slot->awaiting_feedback = (offered_ & hello_feature_feedback) != 0 &&
                                  (!link_.greeted() || link_.has(hello_feature_feedback));
        slot->begin_frame_sequence = begin_frame_sequence;
        return frame;
    }

public:

    // Shares this side's DRM syncobj timeline (drm_syncobj.hpp's DrmSyncobj::export_fd; borrowed,
    // kept as a dup) with the consumer, once: from then on present(id, TimelinePoint) sends
    // acquire points on it, and each later consumer (resume) gets it too. Errc::invalid_argument
    // when shared already, Errc::rejected when the fd is not a DRM syncobj, send errors
    // (peer_closed, ...) with nothing changed. The consumer must accept
    // FenceKind::drm_syncobj_timeline or it refuses the timeline and every point.
    Result<void> share_timeline(BorrowedFd syncobj) { return timelines_.share(link_, syncobj); }

    // Shows image id as the next frame with an acquire point on this side's timeline
    // (share_timeline first): the consumer waits for the point before reading. Points strictly
    // increase; a point not after the last one sent, or one before share_timeline, is
    // Errc::invalid_argument with nothing sent. Otherwise as present(id, fence).
    [[gnu::hot]]
    Result<std::uint64_t> present(std::uint64_t id, TimelinePoint acquire) {
        if (auto ok = timelines_.check_outgoing("present", id, acquire.value); !ok) [[unlikely]]
            return std::move(ok).error();
        auto frame = present_with(id, {}, FenceKind::drm_syncobj_timeline, acquire.value, PresentInfo{});
        if (frame) timelines_.sent(acquire.value);
        return frame;
    }

    // The consumer's timeline (its FrameKind::timeline), empty until it shares one this session;
    // import it (DrmSyncobj::import) to wait for release points. Valid while the session lasts.
    BorrowedFd peer_timeline() const noexcept { return timelines_.peer(); }

    // Paced producers: handles the consumer's messages until a begin_frame this side has
    // not answered with a present is there, and returns it. It returns as soon as it reads
    // one (one recvmsg per frame); begin_frames queued behind it replace it as they are read
    // (dispatch(), the next wait), the older ones counted in skipped_begin_frames(), so a
    // producer that fell behind calls dispatch() first to answer the newest. It stays
    // pending until the next present() answers it: a second call returns it again at once. timeout as
    // wait_for_free_image. Errc::invalid_argument for a producer that is not paced, or whose
    // consumer said in its hello that it does not pace; Errc::timed_out when none comes in
    // time; Errc::peer_closed if the consumer is gone.
    [[gnu::hot]]
    Result<BeginFrame> wait_for_begin_frame(std::chrono::milliseconds timeout) {
        if (!paced_ || (link_.greeted() && !link_.has(hello_feature_pacing))) [[unlikely]] {
            return make_error(Errc::invalid_argument, "wait_for_begin_frame: {}",
                              !paced_ ? "this producer runs free (FrameSenderOptions::paced is false)"
                                      : "the consumer does not pace (its hello offers no begin_frame)");
        }
        auto waited = detail::wait_until(
            link_, timeout, "begin_frame", "wait_for_begin_frame", [this] { return begin_pending_ != 0; },
            [this] { return handle_incoming(); }, [this] { return dispatch(); }, [this] { end_session(); });
        if (!waited) return std::move(waited).error();
        return latest_begin_;
    }
    // The latest begin_frame received this session (sequence 0 before the first).
    const BeginFrame& latest_begin_frame() const noexcept { return latest_begin_; }
    std::size_t begin_frame_count() const noexcept { return begin_frames_; }
    std::size_t skipped_begin_frames() const noexcept { return begin_frames_skipped_; }
    // Whether the consumer paces this producer (both asked for pacing in their hellos).
    bool paced() const noexcept { return link_.has(hello_feature_pacing); }

    // The oldest feedback not taken yet: one per present, presented or discarded, in the
    // order the consumer sent them. Up to feedback_capacity are kept; beyond that the
    // oldest is dropped and counted (dropped_feedback()).
    std::optional<PresentFeedback> take_feedback() noexcept {
        if (feedback_count_ == 0) return std::nullopt;
        const PresentFeedback taken = feedback_[feedback_head_];
        feedback_head_ = (feedback_head_ + 1) % feedback_capacity;
        --feedback_count_;
        return taken;
    }
    static constexpr std::size_t feedback_capacity = 64;
    std::size_t dropped_feedback() const noexcept { return feedback_dropped_; }
    // Whether the consumer sends feedback (both offered it in their hellos).
    bool has_feedback() const noexcept { return link_.has(hello_feature_feedback); }

    struct FreeImage {
        std::uint64_t id = 0;
        UniqueFd release_fence;  // wait on it (if set) before writing into the image
        FenceKind release_fence_kind = FenceKind::none;  // what release_fence is (none when empty)
        // With FenceKind::drm_syncobj_timeline: the point on peer_timeline() to wait for.
        std::uint64_t release_point = 0;
    };

    // A free image to render into next (the least recently presented), or Errc::would_block
    // when the consumer holds them all.
    Result<FreeImage> acquire_free_image() {
        detail::FrameSlot* best = free_image();
        if (best == nullptr) {
            return make_error(Errc::would_block, "acquire_free_image: no free image (all presented or retiring)");
        }
        return take_free(*best);
    }

    // Like acquire_free_image(), but handles the consumer's messages until one is free.
    // timeout > 0 waits at most that long, 0 only handles what is pending, < 0 is
    // Errc::invalid_argument. Errc::timed_out when the consumer releases nothing in time (a
    // stuck peer), Errc::peer_closed if it is gone.
    [[gnu::hot]]
    Result<FreeImage> wait_for_free_image(std::chrono::milliseconds timeout) {
        // The slot ready() found is the one handed out: nothing runs between that check and
        // the return, so the table is not scanned a second time.
        detail::FrameSlot* best = nullptr;
        auto waited = detail::wait_until(
            link_, timeout, "release", "wait_for_free_image",
            [this, &best] { return (best = free_image()) != nullptr; },
            [this] { return handle_incoming(); }, [this] { return dispatch(); }, [this] { end_session(); });
        if (!waited) return std::move(waited).error();
        return take_free(*best);
    }

    // The release fence of image id (empty if none, taken already, or an unknown id); its
    // kind is release_fence_kind(id), asked before taking it.
    UniqueFd take_release_fence(std::uint64_t id) {
        detail::FrameSlot* slot = table_.find(id);
        if (slot == nullptr) return UniqueFd();
        slot->fence_kind = FenceKind::none;
        slot->fence_point = 0;
        return std::move(slot->fence);
    }
    // What image id's untaken release fence is: FenceKind::none when it has none.
    FenceKind release_fence_kind(std::uint64_t id) const {
        const detail::FrameSlot* slot = table_.find(id);
        return slot != nullptr && (slot->fence.valid() || slot->fence_point != 0) ? slot->fence_kind
                                                                                  : FenceKind::none;
    }
    // The untaken release point of image id (FenceKind::drm_syncobj_timeline; 0 when none),
    // on peer_timeline(); take_release_fence() takes it too.
    std::uint64_t release_point(std::uint64_t id) const {
        const detail::FrameSlot* slot = table_.find(id);
        return slot != nullptr ? slot->fence_point : 0;
    }

    // Starts dropping image id (one this side added); it leaves this sender when the
    // consumer answers `retired`, or at once when no consumer has it.
    Result<void> retire(std::uint64_t id) {
        detail::FrameSlot* slot = table_.find(id);
        if (slot == nullptr) return make_error(Errc::invalid_argument, "retire: unknown image id {}", id);
        if (!slot->local) {
            return make_error(Errc::invalid_argument,
                              "retire: image {} was added by the consumer; only the consumer retires it", id);
        }
        if (slot->state == FrameImageState::retiring) {
            return make_error(Errc::invalid_argument, "retire: image {} is already being retired", id);
        }
        if (slot->unshared && slot->state == FrameImageState::free) {
            table_.drop(*slot);
            return {};
        }
        if (auto sent = link_.send(FrameKind::retire, id); !sent) return sent;
        slot->held_while_retiring = slot->state == FrameImageState::presented;
        slot->state = FrameImageState::retiring;
        return {};
    }

    // At most this many messages per dispatch(), so that a consumer that sends as fast as this
    // side reads cannot keep dispatch() from returning. Each costs a bounded number of
    // syscalls, none of which waits on anything the peer controls (security model).
    static constexpr std::size_t dispatch_limit = 64;

    // Handles the pending messages, at most dispatch_limit; returns how many (the consumer's
    // hello, handled here like any message, is not counted). Errc::peer_closed
    // once the consumer is gone (closed, exited or said bye; after a send found it gone, once what it sent
    // before is read): every image of this side it held is free again (counted in
    // reclaimed_count()), and its own images are dropped. It stops at the first message that
    // fails: Errc::protocol (a broken or stuck consumer) or Errc::rejected (an image failing
    // import_image's checks, a bad format table) refused it and changed nothing;
    // Errc::truncated and Errc::rejected for an image beyond max_consumer_images report
    // messages handled safely and answered (protocol.hpp).
    Result<std::size_t> dispatch() {
        if (!link_.is_open()) return link_.closed("dispatch");
        std::size_t handled = 0;
        while (handled < dispatch_limit) {
            auto received = link_.receive();
            if (!received) {
                if (received.error().code == Errc::peer_closed) end_session();
                return std::move(received).error();
            }
            if (*received == ReceiveStatus::nothing) return handled;
            const bool hello = link_.incoming().message.kind == static_cast<std::uint32_t>(FrameKind::hello);
            if (auto done = handle_incoming(); !done) return std::move(done).error();
            handled += hello ? 0 : 1;  // the hello is the session's, not a message the caller counts
        }
        return handled;  // more may be pending: native_handle() stays readable
    }

    // Takes a new consumer after the previous one is gone: says hello again, shares this
    // side's images with it (all free) and goes on presenting; frame numbers keep increasing. If a send found
    // the old consumer gone and dispatch() has not read its end yet, its unread messages
    // are dropped.
    // If a send to it fails (it is gone already, or the kernel refuses the fds in flight:
    // ETOOMANYREFS) the new channel is closed and this side is as it was, without a
    // consumer: resume again with another channel.
    Result<void> resume(FrameChannel channel) {
        if (link_.hung_up()) end_session();
        if (auto adopted = link_.adopt(std::move(channel)); !adopted) return adopted;
        auto shared = link_.greet(HelloRole::producer, offered_);  // the hello again, first
        if (shared) shared = detail::share_unshared(table_, link_);
        if (shared) shared = timelines_.share_with_new_peer(link_);
        if (!shared) detail::abandon_peer(table_, link_);
        return shared;
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

    // Ends the session cleanly: says bye (best effort; the consumer's dispatch() then
    // reports peer_closed "the producer said bye") and closes the channel. This side's
    // images stay, free, for resume().
    void close() noexcept {
        link_.say_bye();
        end_session();
    }

private:
    FrameSender() : table_(detail::FrameImageTable::Side::producer), link_("consumer") {}
    friend struct detail::FrameStateProbe;

    static FreeImage take_free(detail::FrameSlot& slot) noexcept {
        return FreeImage{slot.id, std::move(slot.fence), std::exchange(slot.fence_kind, FenceKind::none),
                         std::exchange(slot.fence_point, 0)};
    }

    detail::FrameSlot* free_image() noexcept {
        detail::FrameSlot* best = nullptr;
        for (detail::FrameSlot& slot : table_.slots()) {
            if (slot.id == 0 || slot.state != FrameImageState::free || slot.unshared) continue;
            if (best == nullptr || slot.last_frame < best->last_frame) best = &slot;
        }
        return best;
    }

    // The message link_.incoming() holds; its fds nobody took are closed at once. A refused
    // message changes nothing here.
    [[gnu::hot]]
    Result<void> handle_incoming() {
        auto handled = handle_message();
        link_.clear_incoming();
        return handled;
    }

    [[gnu::hot]]
    Result<void> handle_message() {
        FrameChannel::Received& in = link_.incoming();
        const FrameMessage& m = in.message;
        if (in.fds_cut) link_.clear_incoming();  // what did arrive is no use: handled as cut below
        // The slots holding fds are the header's mask (AuxChannel matched them); once cut,
        // the slots the sender declared, so that a fence kind still matches its (lost) fd.
        auto kind = check_frame_message(m, in.slot_mask());
        if (!kind) return std::move(kind).error();
        if ((*kind == FrameKind::hello || !link_.greeted()) && *kind != FrameKind::bye) [[unlikely]] {
            return take_hello(m, *kind);
        }
        if (in.fds_cut) return handle_cut(*kind, m);
        detail::FrameSlot* slot = table_.find(m.image_id);
        switch (*kind) {
            case FrameKind::begin_frame:
                return begin_frame(m);
            case FrameKind::presented:
            case FrameKind::discarded:
                return feedback(slot, m, *kind);
            case FrameKind::release:
                if (slot != nullptr && slot->awaiting_feedback) [[unlikely]] return no_feedback(*slot, *kind);
                if (slot != nullptr && slot->state == FrameImageState::presented) {
                    // The fence goes to the renderer, which waits on it and closes it: only a
                    // kind this side accepts, and an fd of that kind (one statx; anything else
                    // is closed off this thread). A timeline point: accepted kind, a timeline
                    // shared, and after the last point.
                    if (m.fence_point != 0) {
                        if (!accepted_fences_.contains_raw(m.fence_kind)) [[unlikely]] {
                            return make_error(Errc::rejected, "release of image {}: {}", m.image_id,
                                              detail::fence_not_accepted(FenceKind::drm_syncobj_timeline,
                                                                         accepted_fences_)
                                                  .message);
                        }
                        if (auto ok = timelines_.check_incoming("release", m.image_id, m.fence_point, "consumer");
                            !ok) {
                            return ok;
                        }
                        timelines_.took(m.fence_point);
                    } else if (in.fds[frame_fence_slot].valid()) {
                        if (auto fence = detail::require_fence(in.fds[frame_fence_slot].borrow(), m.fence_kind,
                                                               accepted_fences_);
                            !fence) {
                            return make_error(Errc::rejected, "release of image {}: {}", m.image_id,
                                              fence.error().message);
                        }
                    }
                    slot->state = FrameImageState::free;
                    slot->fence = std::move(in.fds[frame_fence_slot]);
                    slot->fence_kind = static_cast<FenceKind>(m.fence_kind);
                    slot->fence_point = m.fence_point;
                    ++released_;
                    return {};
                }
                if (slot != nullptr && slot->held_while_retiring) {
                    // The fence is moot (the image goes away), but a point still counts on the
                    // consumer's timeline (only a shared one, and only after the last).
                    if (m.fence_point != 0) {
                        if (auto ok = timelines_.check_incoming("release", m.image_id, m.fence_point, "consumer");
                            !ok) {
                            return ok;
                        }
                        timelines_.took(m.fence_point);
                    }
                    slot->held_while_retiring = false;
                    ++released_;
                    return {};
                }
                return make_error(Errc::protocol, "release of image {}, which the consumer does not hold",
                                  m.image_id);
            case FrameKind::add_image:
                return detail::accept_peer_image(table_, link_, m, in.fds,
                                                 [](std::uint64_t, const DmaBufImage&) { return Result<void>(); });
            case FrameKind::retire:  // the consumer drops an image it added, held or not; answered first
                if (slot == nullptr && table_.was_refused(m.image_id)) {
                    if (auto told = link_.answer(FrameKind::retired, m.image_id); !told) return told;
                    table_.forget_refused(m.image_id);
                    return {};
                }
                if (slot == nullptr || slot->local) {
                    return make_error(Errc::protocol, "retire of image {}, which is {}", m.image_id,
                                      slot == nullptr ? "unknown" : "the producer's own");
                }
                if (auto told = link_.answer(FrameKind::retired, m.image_id); !told) return told;
                table_.drop(*slot);
                return {};
            case FrameKind::retired:
                // For an image the consumer held when it was retired, `retired` says released too.
                if (slot == nullptr || !slot->local || slot->state != FrameImageState::retiring) {
                    return make_error(Errc::protocol, "retired for image {}, which was not retiring",
                                      m.image_id);
                }
                if (slot->awaiting_feedback) return no_feedback(*slot, *kind);
                if (slot->held_while_retiring) ++released_;
                table_.drop(*slot);
                return {};
            case FrameKind::capabilities: {
                if (!in.fds[0]) return make_error(Errc::protocol, "capabilities without a format table fd");
                auto table = decode_format_table(in.fds[0].borrow());
                if (table) {
                    in.fds[0].reset();  // a proven memfd: its close never blocks
                } else {
                    detail::close_peer_fd(in.fds[0]);
                }
                if (!table) return std::move(table).error();
                if (!peer_formats_ || *peer_formats_ != *table) formats_changed_ = true;
                peer_formats_ = std::move(*table);
                return {};
            }
            case FrameKind::refused:
                return detail::peer_refused(table_, m.image_id);
            case FrameKind::timeline:
                if (!accepted_fences_.contains(FenceKind::drm_syncobj_timeline)) {
                    return make_error(Errc::rejected, "timeline of the consumer: {}",
                                      detail::fence_not_accepted(FenceKind::drm_syncobj_timeline, accepted_fences_)
                                          .message);
                }
                return timelines_.accept_peer(in.fds[frame_fence_slot], "consumer");
            case FrameKind::bye:
                end_session();
                return make_error(Errc::peer_closed, "the consumer said bye");
            default:
                return make_error(Errc::protocol, "{} of image {} sent to a producer", to_string(*kind),
                                  m.image_id);
        }
    }

    // The consumer's hello, or a message before it (link.hpp): a hello that says no
    // feedback ends the expectation of feedback for presents sent before it came.
    [[gnu::cold]] Result<void> take_hello(const FrameMessage& m, FrameKind kind) {
        if (auto taken = link_.take_hello(m, kind); !taken) return taken;
        if (!link_.has(hello_feature_feedback)) {
            for (detail::FrameSlot& slot : table_.slots()) slot.awaiting_feedback = false;
        }
        return {};
    }

    // begin_frame: only to a producer that asked to be paced; sequences increase and the
    // target time is a CLOCK_MONOTONIC time (> 0). A newer one replaces one not answered.
    Result<void> begin_frame(const FrameMessage& m) {
        const BeginFrame begin = m.payload_as<BeginFrame>();
        if (!link_.has(hello_feature_pacing)) {
            return make_error(Errc::protocol, "begin_frame {} to a producer that {}", begin.sequence,
                              paced_ ? "the consumer's hello said it does not pace"
                                     : "did not ask to be paced (FrameSenderOptions::paced)");
        }
        if (begin.sequence <= latest_begin_.sequence) {
            return make_error(Errc::protocol, "begin_frame {}: its sequence is not after {}", begin.sequence,
                              latest_begin_.sequence);
        }
        if (begin.target_time_ns <= 0) {
            return make_error(Errc::protocol, "begin_frame {}: target time {} ns is not a CLOCK_MONOTONIC time",
                              begin.sequence, begin.target_time_ns);
        }
        if (begin_pending_ != 0) ++begin_frames_skipped_;
        latest_begin_ = begin;
        begin_pending_ = begin.sequence;
        ++begin_frames_;
        return {};
    }

    // presented / discarded: only when both offered feedback, exactly one for the present
    // the image is held for (its frame number), echoing its begin_frame; presented with a
    // time (> 0) and at most one of zero_copy / copied, discarded with neither.
    Result<void> feedback(detail::FrameSlot* slot, const FrameMessage& m, FrameKind kind) {
        const PresentationFeedback f = m.payload_as<PresentationFeedback>();
        const bool presented = kind == FrameKind::presented;
        if (!link_.has(hello_feature_feedback)) {
            return make_error(Errc::protocol, "{} of image {} frame {}: no feedback was agreed in the hellos",
                              to_string(kind), m.image_id, m.frame_number);
        }
        if (slot == nullptr || !slot->awaiting_feedback || slot->last_frame != m.frame_number) {
            return make_error(Errc::protocol, "{} of image {} frame {}: no present of it awaits feedback",
                              to_string(kind), m.image_id, m.frame_number);
        }
        if (f.begin_frame_sequence != slot->begin_frame_sequence) {
            return make_error(Errc::protocol, "{} of image {} frame {}: says begin_frame {}, the present answered {}",
                              to_string(kind), m.image_id, m.frame_number, f.begin_frame_sequence,
                              slot->begin_frame_sequence);
        }
        if (f.reserved != 0) {
            return make_error(Errc::protocol, "{} of image {} frame {}: reserved field is {}, not 0", to_string(kind),
                              m.image_id, m.frame_number, f.reserved);
        }
        if (presented && f.time_ns <= 0) {
            return make_error(Errc::protocol, "presented of image {} frame {}: time {} ns is not a CLOCK_MONOTONIC time",
                              m.image_id, m.frame_number, f.time_ns);
        }
        if (presented && ((f.flags & ~known_presented_flags) != 0 || f.flags == known_presented_flags)) {
            return make_error(Errc::protocol, "presented of image {} frame {}: flags 0x{:x} (at most one of "
                              "zero_copy 0x1, copied 0x2)", m.image_id, m.frame_number, f.flags);
        }
        if (!presented && (f.time_ns != 0 || f.flags != 0)) {
            return make_error(Errc::protocol, "discarded of image {} frame {}: time {} ns, flags 0x{:x}: a discarded "
                              "frame was never shown", m.image_id, m.frame_number, f.time_ns, f.flags);
        }
        slot->awaiting_feedback = false;
        if (feedback_count_ == feedback_capacity) {  // the oldest goes: the caller does not read them
            feedback_head_ = (feedback_head_ + 1) % feedback_capacity;
            --feedback_count_;
            ++feedback_dropped_;
        }
        feedback_[(feedback_head_ + feedback_count_) % feedback_capacity] =
            PresentFeedback{m.image_id, m.frame_number, f.begin_frame_sequence, f.time_ns, f.flags, presented};
        ++feedback_count_;
        return {};
    }

    // A release (or `retired`) of a present that got neither presented nor discarded.
    [[gnu::cold]] Error no_feedback(const detail::FrameSlot& slot, FrameKind kind) const {
        return make_error(Errc::protocol, "{} of image {} before presented or discarded for its frame {}",
                          to_string(kind), slot.id, slot.last_frame);
    }

    // A message whose fds the kernel cut (MSG_CTRUNC: this process at its open-file limit).
    Result<void> handle_cut(FrameKind kind, const FrameMessage& m) {
        if (kind == FrameKind::add_image) return detail::refuse_cut_image(table_, link_, m);
        if (kind == FrameKind::release) {
            detail::FrameSlot* slot = table_.find(m.image_id);
            const bool held = slot != nullptr &&
                              (slot->state == FrameImageState::presented || slot->held_while_retiring);
            if (!held) {
                return make_error(Errc::protocol, "release of image {}, which the consumer does not hold",
                                  m.image_id);
            }
            if (slot->awaiting_feedback) return no_feedback(*slot, kind);
            // The consumer let go, but its release fence is lost: the image is free again
            // (holding it back would stall the swapchain for good), and the caller is told.
            if (slot->held_while_retiring) {
                slot->held_while_retiring = false;  // retiring: the fence was moot anyway
            } else {
                slot->state = FrameImageState::free;
            }
            ++released_;
            return make_error(Errc::truncated,
                              "release of image {}: its release fence was cut off (MSG_CTRUNC: this process is at "
                              "its open-file limit); the image is free, but the consumer's reads may still be "
                              "in flight",
                              m.image_id);
        }
        return make_error(Errc::truncated,
                          "{} of image {}: its fds were cut off (MSG_CTRUNC: this process is at its open-file "
                          "limit); ignored",
                          to_string(kind), m.image_id);
    }

    void end_session() noexcept {
        link_.close();
        reclaimed_ += table_.forget_peer();
        timelines_.forget_peer();
        peer_formats_.reset();  // the next consumer may be on another device
        formats_changed_ = false;
        latest_begin_ = BeginFrame{};  // the next consumer counts its begin_frames afresh
        begin_pending_ = 0;
    }

    detail::FrameImageTable table_;
    detail::FrameLink link_;
    std::uint64_t next_frame_ = 1;
    std::size_t presented_ = 0;
    std::size_t released_ = 0;
    std::size_t reclaimed_ = 0;
    std::optional<FormatTable> peer_formats_;
    bool formats_changed_ = false;
    FenceKindSet accepted_fences_ = default_fence_kinds;
    detail::FrameTimelines timelines_;
    bool paced_ = false;
    std::uint64_t offered_ = 0;         // the features this side's hello offers
    BeginFrame latest_begin_{};         // the latest begin_frame of this session
    std::uint64_t begin_pending_ = 0;   // its sequence until a present answers it; 0: none pending
    std::size_t begin_frames_ = 0;
    std::size_t begin_frames_skipped_ = 0;
    std::array<PresentFeedback, feedback_capacity> feedback_{};  // a ring: no allocation per frame
    std::size_t feedback_head_ = 0;
    std::size_t feedback_count_ = 0;
    std::size_t feedback_dropped_ = 0;
};

}  // namespace texshare
