// FrameReceiver: the consumer's end of the frame protocol (see frame/protocol.hpp for the rules).
//
// Use it in the process that shows the frames. It imports each image the producer shares
// once (every check of import_image), or shares images it allocated itself (add_image: a
// UI host allocating its renderer's swapchain), sees presents in order and holds at most
// the latest presented image: a newer present releases the previous one automatically. A
// peer that breaks the protocol (unknown id, a frame number that does not increase, an id
// shared twice) gets Errc::protocol from dispatch(), naming the id; the caller then drops
// the peer. With keep_last_frame, a dead producer's last frame stays current until a new
// producer (resume()) presents one.
// Per frame it can pace the producer (begin_frame, from the host's vsync or timer), read
// what the producer said about the frame (Frame::metadata: damage, content time, flags) and
// tell it what became of the frame: presented() once it is on screen; a frame replaced or
// released before that is reported discarded by the receiver itself.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

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

struct FrameReceiverOptions {
    // Keep showing the current frame when the producer dies (its image is kept, under
    // retained_image_id if the producer allocated it) instead of dropping it.
    bool keep_last_frame = false;
    // How many images the producer may add to this receiver at a time (its add_image), at
    // most max_frame_images; 0: none (only this side allocates). The rest of the table stays
    // this side's: a producer cannot take the slots of the consumer's own images. Beyond it
    // an add_image is refused (Errc::rejected from dispatch(), naming quota and count) and
    // the producer told (FrameKind::refused); a retired image frees its place. The default,
    // half the table, fits a triple-buffered swapchain and its replacement during a resize.
    std::size_t max_producer_images = max_frame_images / 2;
    // The fence kinds this side accepts with a present (fence_kind.hpp). A present whose
    // acquire fence is of another kind is refused like a fence that is not what it says
    // (Errc::rejected from dispatch(), nothing changed, never shown). Add
    // FenceKind::vulkan_opaque_semaphore only where negotiation proved the producer to be on
    // this device and driver, and this side waits with Vulkan (vulkan/fence.hpp,
    // SyncMode::opaque_fd): such a fence cannot be waited on with poll(). Add
    // FenceKind::drm_syncobj_timeline to take the producer's timeline (FrameKind::timeline)
    // and acquire points on it (acquire_point()).
    FenceKindSet accepted_fence_kinds = default_fence_kinds;
    // Offer to pace a producer that asks for it (begin_frame). Off: a paced producer's
    // wait_for_begin_frame() says this side does not pace, and begin_frame() is refused.
    bool pacing = true;
    // Offer presentation feedback: presented / discarded for every present of a producer
    // that asks for it. Off: none is sent, and presented() only marks the frame shown.
    bool feedback = true;
};

class FrameReceiver {
public:
    using Options = FrameReceiverOptions;

    // Takes one end of a connected FrameChannel. The socket is made blocking (O_NONBLOCK
    // cleared) and every call on it non-blocking (MSG_DONTWAIT), so that waits happen inside
    // recvmsg under SO_RCVTIMEO; dispatch() and sends never block. Errc::system if fcntl fails,
    // Errc::invalid_argument for a max_producer_images above max_frame_images.
    static Result<FrameReceiver> create(FrameChannel channel, Options options = {}) {
        if (options.max_producer_images > max_frame_images) {
            return make_error(Errc::invalid_argument,
                              "max_producer_images {} is more than the table's {} slots",
                              options.max_producer_images, max_frame_images);
        }
        FrameReceiver receiver(options);
        if (auto adopted = receiver.link_.adopt(std::move(channel)); !adopted) return std::move(adopted).error();
        // A producer gone already is no error here: dispatch() reports it, as before the hello.
        if (auto greeted = receiver.link_.greet(HelloRole::consumer, receiver.offered());
            !greeted && greeted.error().code != Errc::peer_closed) {
            return std::move(greeted).error();
        }
        return receiver;
    }

    bool is_open() const noexcept { return link_.is_open(); }
    // Readable (poll/epoll) means dispatch() has work: a message, or a producer that is gone.
    BorrowedFd native_handle() const noexcept { return link_.native_handle(); }
    // Not owned; must outlive this receiver or be unset (nullptr) first.
    void set_listener(FrameImageListener* listener) noexcept { table_.set_listener(listener); }

    // The image under id (nullptr for an unknown id); valid until it leaves this receiver.
    const DmaBufImage* image(std::uint64_t id) const { return table_.image(id); }
    std::optional<FrameImageState> state(std::uint64_t id) const { return table_.state(id); }
    // Whether this side allocated image id (false for the producer's images and unknown ids).
    bool is_local(std::uint64_t id) const { return table_.is_local(id); }
    std::size_t image_count() const noexcept { return table_.count(); }

    struct Frame {
        std::uint64_t image_id = 0;
        std::uint64_t frame_number = 0;
        // The image, checked at each use: it stays usable while the image is in this
        // receiver (through later frames too) and aborts with a message once it has left
        // (see FrameImage); it must not outlive the receiver.
        FrameImage image;
        bool producer_gone = false;  // a kept last frame of a dead producer (keep_last_frame)
        // What the producer said about it: the begin_frame it answers, damage (checked to be
        // inside the image; damaged_pixel_count() measures it), content time, flags. The
        // damage is what changed since the last frame this side reported presented(): the
        // damage of presents replaced, released or skipped unshown in between is merged in
        // (merge_damage), so a host that composes only the damage never misses a change.
        PresentMetadata metadata{};
    };

    // The image this receiver holds (the latest presented one), if any.
    std::optional<Frame> current() const {
        if (current_ == no_slot) return std::nullopt;
        const detail::FrameSlot& slot = table_[current_];
        return Frame{slot.id, current_frame_, FrameImage(slot), !current_live_, current_metadata_};
    }

    // Asks a paced producer for its next frame: sends begin_frame with the next sequence
    // number (1, 2, ... per session), the time the frame is meant to reach the screen
    // (target_time_ns, CLOCK_MONOTONIC, > 0) and the refresh interval (ns; 0 if unknown).
    // Returns the sequence; the present answering it carries it (Frame::metadata
    // .begin_frame_sequence), so the host can match its vsync to the frame. Call it from the
    // vsync or a timer (a timerfd at the refresh rate); a producer slower than that answers
    // only the newest. Errc::invalid_argument before the producer's hello (dispatch()
    // first), for a producer that runs free (producer_paced() is false), or a target time
    // <= 0; Errc::peer_closed once it is gone, with nothing changed.
    [[gnu::hot]]
    Result<std::uint64_t> begin_frame(std::int64_t target_time_ns, std::uint64_t interval_ns) {
        if (!link_.has(hello_feature_pacing) || target_time_ns <= 0) [[unlikely]] {
            return make_error(Errc::invalid_argument, "begin_frame: {}",
                              target_time_ns <= 0 ? fmt::format("target time {} ns is not a CLOCK_MONOTONIC time",
                                                                target_time_ns)
                              : !link_.greeted()  ? std::string("no hello from the producer yet (dispatch() first)")
                                                  : std::string("the producer runs free (it did not ask to be paced)"));
        }
        const BeginFrame begin{begin_sent_ + 1, target_time_ns, interval_ns};
        if (auto sent = link_.send(FrameKind::begin_frame, 0, 0, {}, FenceKind::none, begin); !sent) {
            return std::move(sent).error();
        }
        begin_sent_ = begin.sequence;
        return begin.sequence;
    }
    // Whether the producer asked to be paced and this side offered it (after its hello).
    bool producer_paced() const noexcept { return link_.has(hello_feature_pacing); }

    // Says that the current frame reached the screen at time_ns (CLOCK_MONOTONIC, > 0), shown
    // as flags says (presented_flag_zero_copy: the shared image itself; presented_flag_copied:
    // a copy of it; or 0). With feedback agreed, the producer gets `presented`; otherwise
    // nothing is sent. At most once per frame: a frame replaced or released before it is
    // reported discarded instead. Errc::invalid_argument without a current frame of a live
    // producer, for a frame reported already, time_ns <= 0 or flags other than one of the
    // two; Errc::peer_closed once the producer is gone, with nothing changed.
    [[gnu::hot]]
    Result<void> presented(std::int64_t time_ns, std::uint32_t flags = presented_flag_zero_copy) {
        if (current_ == no_slot || !current_live_ || current_answered_ || time_ns <= 0 ||
            (flags & ~known_presented_flags) != 0 || flags == known_presented_flags) [[unlikely]] {
            return make_error(Errc::invalid_argument, "presented: {}",
                              current_ == no_slot || !current_live_ ? std::string("no frame of a live producer is current")
                              : current_answered_ ? fmt::format("frame {} was reported already", current_frame_)
                              : time_ns <= 0      ? fmt::format("time {} ns is not a CLOCK_MONOTONIC time", time_ns)
                                                  : fmt::format("flags 0x{:x}: at most one of zero_copy 0x1, copied 0x2", flags));
        }
        if (link_.has(hello_feature_feedback)) {
            const PresentationFeedback feedback{time_ns, current_metadata_.begin_frame_sequence, flags, 0};
            if (auto sent = link_.send(FrameKind::presented, table_[current_].id, current_frame_, {}, FenceKind::none,
                                       feedback);
                !sent) {
                return sent;
            }
        }
        current_answered_ = true;
        unshown_pending_ = false;  // the next frame's damage starts from this one
        ++presented_;
        return {};
    }

    // The acquire fence that came with the current frame (empty if none or already taken):
    // wait on it before reading the image. Its kind is acquire_fence_kind(), asked first.
    UniqueFd take_acquire_fence() noexcept {
        acquire_fence_kind_ = FenceKind::none;
        return std::move(acquire_fence_);
    }
    // What the untaken acquire fence is (FenceKind::none when there is none): a sync_file, or
    // with accepted_fence_kinds allowing it, a Vulkan OPAQUE_FD semaphore.
    FenceKind acquire_fence_kind() const noexcept {
        if (acquire_fence_.valid()) return acquire_fence_kind_;
        return acquire_point_ != 0 ? FenceKind::drm_syncobj_timeline : FenceKind::none;
    }
    // The current frame's acquire point on peer_timeline() (FenceKind::drm_syncobj_timeline;
    // 0 when it came without one): wait for it (DrmSyncobj::wait) before reading the image.
    std::uint64_t acquire_point() const noexcept { return acquire_point_; }
    // The producer's timeline (its FrameKind::timeline), empty until it shares one this session;
    // import it once (DrmSyncobj::import). Valid while the session lasts.
    BorrowedFd peer_timeline() const noexcept { return timelines_.peer(); }

    // Shares this side's DRM syncobj timeline (DrmSyncobj::export_fd; borrowed, kept as a dup)
    // with the producer, once: from then on release(id, TimelinePoint) sends release points on
    // it, and each later producer (resume) gets it too. Errc::invalid_argument when shared
    // already, Errc::rejected when the fd is not a DRM syncobj, send errors with nothing
    // changed. The producer must accept FenceKind::drm_syncobj_timeline.
    Result<void> share_timeline(BorrowedFd syncobj) { return timelines_.share(link_, syncobj); }

    // Gives the current image back with a release point on this side's timeline
    // (share_timeline first): the producer waits for the point before writing. Points strictly
    // increase; a point not after the last one sent, or one before share_timeline, is
    // Errc::invalid_argument with nothing sent. Otherwise as release(id, fence).
    [[gnu::hot]]
    Result<void> release(std::uint64_t id, TimelinePoint point) {
        if (auto ok = timelines_.check_outgoing("release", id, point.value); !ok) [[unlikely]]
            return std::move(ok).error();
        if (current_ == no_slot || table_[current_].id != id || id == 0) return not_held(id);
        auto released = release_current({}, FenceKind::drm_syncobj_timeline, false, point.value);
        if (released) timelines_.sent(point.value);
        return released;
    }

    // Shares an image this side allocated with the producer, which may then render into
    // it; the id has consumer_image_id_bit set. On error the image stays with the caller.
    Result<std::uint64_t> add_image(DmaBufImage&& image) {
        return detail::add_local_image(table_, link_, std::move(image));
    }

    // Tells the producer what this side can import (once, and again whenever it changes).
    // From then on a DMA-BUF image whose (fourcc, modifier) the table lacks is refused
    // (Errc::rejected from dispatch()): it would fail in the importer anyway, later and
    // less clearly. Shared-memory images stay acceptable (the CPU path).
    Result<void> advertise(FormatTable table) {
        auto fd = encode_format_table(table);
        if (!fd) return std::move(fd).error();
        std::array<BorrowedFd, frame_fd_slots> fds{};
        fds[0] = fd->borrow();
        if (auto sent = link_.send(make_frame_message(FrameKind::capabilities, 0), fds); !sent) return sent;
        advertised_ = std::move(table);
        return {};
    }

    // Drops an image this side added (e.g. on resize), at once here, even while shown; the
    // producer stops using it and answers `retired`, after which the slot is free.
    Result<void> retire(std::uint64_t id) {
        detail::FrameSlot* slot = table_.find(id);
        if (slot == nullptr || !slot->local || slot->state == FrameImageState::retiring) {
            return make_error(Errc::invalid_argument, "retire: image {} is {}", id,
                              slot == nullptr    ? "unknown"
                              : !slot->local     ? "the producer's; only the producer retires it"
                                                 : "already being retired");
        }
        if (slot->unshared) {
            if (is_current(*slot)) forget_current();
            table_.drop(*slot);
            return {};
        }
        if (auto sent = link_.send(FrameKind::retire, id); !sent) return sent;
        if (is_current(*slot)) forget_current();
        slot->state = FrameImageState::retiring;
        return {};
    }

    // Gives the current image back early, with an optional release fence (a sync_file) that
    // signals when this side's reads are done; it is sent, not taken. Errc::invalid_argument
    // for an id this receiver does not hold; Errc::peer_closed ("the producer is gone")
    // after the producer exited, with nothing changed (dispatch() then reads its end and
    // drops its images). An image the producer retired meanwhile goes at once (answered
    // `retired`; the fence is not sent).
    [[gnu::hot]]
    Result<void> release(std::uint64_t id, BorrowedFd release_fence = {}) {
        return release(id, release_fence, FenceKind::sync_file);
    }

    // The same with the fence's kind named (vulkan::Fences::fence_for_peer gives both): the
    // producer must accept the kind (FrameSenderOptions::accepted_fence_kinds) or it refuses
    // the release. An empty fence goes as no fence whatever the kind; a fence of kind none,
    // or of a kind this version does not know, is Errc::invalid_argument.
    [[gnu::hot]]
    Result<void> release(std::uint64_t id, BorrowedFd release_fence, FenceKind fence_kind) {
        if (release_fence.valid() && !fence_kind_carries_fd(static_cast<std::uint8_t>(fence_kind))) [[unlikely]] {
            return make_error(Errc::invalid_argument, "release: image {}: a fence fd {} of kind {} ({}), which "
                              "carries no fd", id, release_fence.get(), static_cast<unsigned>(fence_kind),
                              to_string(fence_kind));
        }
        if (current_ == no_slot || table_[current_].id != id || id == 0) return not_held(id);
        return release_current(release_fence, fence_kind, false);
    }

    // At most this many messages per dispatch(), so that a producer that sends as fast as this
    // side reads cannot keep dispatch() from returning. Each costs a bounded number of
    // syscalls, none of which waits on anything the peer controls (security model).
    static constexpr std::size_t dispatch_limit = 64;

    // Handles the pending messages, at most dispatch_limit; returns how many (the producer's
    // hello, handled here like any message, is not counted). Errc::peer_closed
    // once the producer is gone (closed, exited or said bye; after a send found it gone, once what it sent
    // before is read): its images are dropped (but for a kept last frame), this side's kept.
    // It stops at the first message that fails: Errc::protocol (a broken or stuck producer:
    // drop it) or Errc::rejected (an image failing import_image's checks, the advertised
    // formats or the listener) refused it and changed nothing; Errc::truncated (fds cut)
    // and Errc::rejected for an image beyond max_producer_images report messages handled
    // safely and answered (protocol.hpp).
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

    // Handles the producer's messages until a frame newer than `after_frame` is current.
    // timeout > 0 waits at most that long, 0 only handles what is pending, < 0 is
    // Errc::invalid_argument. Errc::timed_out when the producer presents nothing in time (a
    // stuck peer), Errc::peer_closed if it is gone. Returns as soon as there is one: presents
    // queued behind it wait for the next call (or dispatch(), which handles everything
    // pending and so shows only the newest).
    [[gnu::hot]]
    Result<Frame> wait_for_frame(std::uint64_t after_frame, std::chrono::milliseconds timeout) {
        auto waited = detail::wait_until(
            link_, timeout, "present", "wait_for_frame",
            [&] { return current_ != no_slot && current_live_ && current_frame_ > after_frame; },
            [this] { return handle_incoming(); }, [this] { return dispatch(); }, [this] { end_session(); });
        if (!waited) return std::move(waited).error();
        return *current();
    }

    // Takes a new producer after the previous one is gone: says hello again, shares this
    // side's images with it (a kept frame of this side's once it is released), advertises the format table
    // again if there is one, and accepts frame numbers afresh.
    // If a send to it fails (it is gone already, or the kernel refuses the fds in flight:
    // ETOOMANYREFS) the new channel is closed and this side is as it was, without a
    // producer: resume again with another channel.
    Result<void> resume(FrameChannel channel) {
        if (link_.hung_up()) end_session();
        if (auto adopted = link_.adopt(std::move(channel)); !adopted) return adopted;
        auto greeted = link_.greet(HelloRole::consumer, offered());  // the hello again, first
        if (greeted) greeted = detail::share_unshared(table_, link_);
        if (greeted && advertised_) greeted = advertise(*advertised_);  // a copy: the new producer lacks it
        if (greeted) greeted = timelines_.share_with_new_peer(link_);
        if (!greeted) {
            detail::abandon_peer(table_, link_);
            return greeted;
        }
        last_frame_ = 0;
        begin_sent_ = 0;
        begin_answered_ = 0;
        return {};
    }

    std::size_t received_count() const noexcept { return received_; }
    // Frames reported presented (presented()) and discarded (replaced or released unshown,
    // and presents released back unshown), this receiver's whole life.
    std::size_t presented_count() const noexcept { return presented_; }
    std::size_t discarded_count() const noexcept { return discarded_; }
    // Presents not shown: of an image this side was retiring at the time (a race), or of
    // an image this side refused or whose acquire fence was cut (released back at once).
    std::size_t skipped_count() const noexcept { return skipped_; }

    // Ends the session cleanly: says bye (best effort; the producer's dispatch() then
    // reports peer_closed "the consumer said bye"), closes the channel and drops the
    // producer's images (a kept frame stays with keep_last_frame).
    void close() noexcept {
        link_.say_bye();
        end_session();
    }

private:
    explicit FrameReceiver(Options options)
        : table_(detail::FrameImageTable::Side::consumer), link_("producer"), options_(options) {
        table_.set_peer_quota(options.max_producer_images);
    }
    std::uint64_t offered() const noexcept {
        return (options_.pacing ? hello_feature_pacing : 0) | (options_.feedback ? hello_feature_feedback : 0);
    }
    friend struct detail::FrameStateProbe;

    static constexpr std::size_t no_slot = max_frame_images;

    [[gnu::cold]] Error not_held(std::uint64_t id) const {
        return make_error(Errc::invalid_argument, "release: image {} is {}", id,
                          table_.find(id) == nullptr ? "unknown" : "not held (never presented or already released)");
    }

    bool is_current(const detail::FrameSlot& slot) const noexcept {
        return current_ != no_slot && &slot == &table_[current_];
    }

    void forget_current() noexcept {
        table_[current_].state = FrameImageState::free;
        current_ = no_slot;
        acquire_point_ = 0;
        if (acquire_fence_.valid()) drop_acquire_fence();
    }

    // answering: inside dispatch, where a gone producer is no error (the drain reads on).
    // One send at most, and nothing changes unless it succeeds: an image the producer
    // retired while this side held it is answered by `retired` alone (it means released
    // too; a release fence is moot for an image that goes away).
    [[gnu::hot]]
    Result<void> release_current(BorrowedFd release_fence, FenceKind fence_kind, bool answering,
                                 std::uint64_t point = 0) {
        detail::FrameSlot& slot = table_[current_];
        // A point goes out only with a release message: a kept or retiring image that goes
        // without one would leave this side's timeline count wrong, so it is refused (the
        // caller keeps its point and releases without one).
        if (point != 0 && (slot.id == retained_image_id || slot.unshared || slot.held_while_retiring)) [[unlikely]] {
            return make_error(Errc::invalid_argument,
                              "release: image {} goes without a release message (kept or retiring): release it "
                              "without a timeline point",
                              slot.id);
        }
        if (slot.id == retained_image_id) {  // a dead producer's frame: nobody to give it back to
            forget_current();
            table_.drop(slot);
            return {};
        }
        if (slot.unshared) {  // this side's kept frame: the new producer may have it now
            auto shared = detail::share_image(link_, slot);
            if (!shared && !(answering && shared.error().code == Errc::peer_closed)) return shared;
            forget_current();
            return {};
        }
        if (!current_answered_ && current_live_ && link_.has(hello_feature_feedback)) {
            // Never shown: discarded, before the image goes back (the producer counts on it).
            const PresentationFeedback discarded{0, current_metadata_.begin_frame_sequence, 0, 0};
            auto told = link_.send(FrameKind::discarded, slot.id, current_frame_, {}, FenceKind::none, discarded);
            if (!told && !(answering && told.error().code == Errc::peer_closed)) return told;
            current_answered_ = true;  // said: a retry of the release must not say it again
            ++discarded_;
        }
        const bool retiring = slot.held_while_retiring;
        auto sent = retiring ? link_.send(FrameKind::retired, slot.id)
                             : link_.send(FrameKind::release, slot.id, 0, release_fence, fence_kind, point);
        if (!sent && !(answering && sent.error().code == Errc::peer_closed)) return sent;
        forget_current();
        if (retiring) table_.drop(slot);
        return {};
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
            return link_.take_hello(m, *kind);
        }
        detail::FrameSlot* slot = table_.find(m.image_id);
        if (slot != nullptr && slot->unshared) slot = nullptr;  // the producer cannot know it yet
        switch (*kind) {
            case FrameKind::present:
                return present(slot, m, in);
            case FrameKind::add_image:
                if (in.fds_cut) return detail::refuse_cut_image(table_, link_, m);  // before any fd is used
                return detail::accept_peer_image(table_, link_, m, in.fds,
                                                 [this](std::uint64_t id, const DmaBufImage& image) {
                                                     return vet_peer_image(id, image);
                                                 });
            case FrameKind::retire:  // the producer drops an image it added; answered before anything changes
                if (slot == nullptr && table_.was_refused(m.image_id)) {
                    if (auto told = link_.answer(FrameKind::retired, m.image_id); !told) return told;
                    table_.forget_refused(m.image_id);
                    return {};
                }
                if (slot == nullptr || slot->local || slot->held_while_retiring) {
                    return make_error(Errc::protocol, "retire of image {}, which is {}", m.image_id,
                                      slot == nullptr ? "unknown"
                                      : slot->local   ? "the consumer's own"
                                                      : "already retiring");
                }
                if (is_current(*slot)) {
                    slot->held_while_retiring = true;
                    return {};
                }
                if (auto told = link_.answer(FrameKind::retired, m.image_id); !told) return told;
                table_.drop(*slot);
                return {};
            case FrameKind::retired:
                if (slot == nullptr || !slot->local || slot->state != FrameImageState::retiring) {
                    return make_error(Errc::protocol, "retired for image {}, which this side was not retiring",
                                      m.image_id);
                }
                table_.drop(*slot);
                return {};
            case FrameKind::refused:
                if (slot != nullptr && is_current(*slot)) {  // it presented the image, so it had it
                    return make_error(Errc::protocol, "refused for image {}, which the producer presented",
                                      m.image_id);
                }
                return detail::peer_refused(table_, m.image_id);
            case FrameKind::timeline:
                if (!options_.accepted_fence_kinds.contains(FenceKind::drm_syncobj_timeline)) {
                    return make_error(Errc::rejected, "timeline of the producer: {}",
                                      detail::fence_not_accepted(FenceKind::drm_syncobj_timeline,
                                                                 options_.accepted_fence_kinds)
                                          .message);
                }
                return timelines_.accept_peer(in.fds[frame_fence_slot], "producer");
            case FrameKind::bye:
                end_session();
                return make_error(Errc::peer_closed, "the producer said bye");
            default:
                if (in.fds_cut) {
                    return make_error(Errc::truncated, "{} of image {}: its fds were cut off (MSG_CTRUNC); ignored",
                                      to_string(*kind), m.image_id);
                }
                return make_error(Errc::protocol, "{} of image {} sent to a consumer", to_string(*kind),
                                  m.image_id);
        }
    }

    [[gnu::always_inline]]  // into handle_message(): its one caller, per frame
    Result<void> present(detail::FrameSlot* slot, const FrameMessage& m, FrameChannel::Received& in) {
        const bool refused = slot == nullptr && table_.was_refused(m.image_id);
        if ((slot == nullptr && !refused) || (slot != nullptr && slot->held_while_retiring)) {
            return make_error(Errc::protocol, "present of image {}, which is {}", m.image_id,
                              slot == nullptr ? "unknown" : "retiring");
        }
        if (m.frame_number <= last_frame_) {
            return make_error(Errc::protocol, "present of image {} as frame {}, not after frame {}", m.image_id,
                              m.frame_number, last_frame_);
        }
        if (slot != nullptr && is_current(*slot)) {
            return make_error(Errc::protocol, "present of image {}, which this side still holds", m.image_id);
        }
        // Its metadata, against the image (an image this side refused has no size here: only
        // the rules that need none). The begin_frame it answers was sent and not answered yet.
        // Most presents say only the begin_frame they answer (the whole image changed, no
        // content time, no flags): three words read and the rest checked zero, no 152-byte
        // copy. Anything else is copied and checked field by field.
        const detail::PresentHead head = detail::present_head(m);
        const bool plain = (head.flags | head.damage_count) == 0 && head.content_time_ns == 0 &&
                           !detail::payload_tail_set(m, detail::present_head_words);
        if (!plain) [[unlikely]] {
            const PresentMetadata metadata = m.payload_as<PresentMetadata>();
            if (auto checked = check_present_metadata(metadata, slot != nullptr ? slot->image.width() : UINT32_MAX,
                                                      slot != nullptr ? slot->image.height() : UINT32_MAX);
                !checked) [[unlikely]] {
                return make_error(Errc::protocol, "present of image {} as frame {}: {}", m.image_id, m.frame_number,
                                  checked.error().message);
            }
        }
        if (head.begin_frame_sequence != 0 &&
            (head.begin_frame_sequence <= begin_answered_ || head.begin_frame_sequence > begin_sent_))
            [[unlikely]] {
            return make_error(Errc::protocol, "present of image {} as frame {} answers begin_frame {}, which {}",
                              m.image_id, m.frame_number, head.begin_frame_sequence,
                              head.begin_frame_sequence > begin_sent_
                                  ? fmt::format("this side never sent (the last is {})", begin_sent_)
                                  : fmt::format("is answered already (up to {})", begin_answered_));
        }
        if (slot != nullptr && slot->state == FrameImageState::retiring) {  // ours, retired before it crossed
            // No feedback: the retire ends this present for both sides (protocol.hpp).
            last_frame_ = m.frame_number;
            answered(head.begin_frame_sequence);
            damage_chain_broken();  // its damage never reaches the host
            ++skipped_;
            return {};
        }
        if (refused || in.fds_cut) {
            // Not shown: an image this side never had, or one whose acquire fence is lost
            // (showing it unfenced could show a half-rendered frame). Given back at once,
            // so it keeps circulating: discarded first where feedback was agreed.
            if (link_.has(hello_feature_feedback)) {
                const PresentationFeedback discarded{0, head.begin_frame_sequence, 0, 0};
                if (auto told = link_.answer_feedback(FrameKind::discarded, m.image_id, m.frame_number, discarded);
                    !told) {
                    return told;
                }
                ++discarded_;
            }
            if (auto released = link_.answer(FrameKind::release, m.image_id); !released) return released;
            last_frame_ = m.frame_number;
            answered(head.begin_frame_sequence);
            damage_chain_broken();
            ++skipped_;
            if (refused) return {};
            return make_error(Errc::truncated,
                              "present of image {} as frame {}: its acquire fence was cut off (MSG_CTRUNC: this "
                              "process is at its open-file limit); released back unshown",
                              m.image_id, m.frame_number);
        }
        // The fence goes to the host, which polls (or imports) and closes it on its event
        // loop: only a kind this side accepts, and an fd of that kind (one statx; anything
        // else is closed off this thread).
        if (in.fds[frame_fence_slot].valid()) {
            if (auto fence = detail::require_fence(in.fds[frame_fence_slot].borrow(), m.fence_kind,
                                                   options_.accepted_fence_kinds);
                !fence) {
                return make_error(Errc::rejected, "present of image {} as frame {}: {}", m.image_id, m.frame_number,
                                  fence.error().message);
            }
        } else if (m.fence_point != 0) {  // a timeline point: accepted kind, a timeline, after the last
            if (!options_.accepted_fence_kinds.contains_raw(m.fence_kind)) [[unlikely]] {
                return make_error(Errc::rejected, "present of image {} as frame {}: {}", m.image_id, m.frame_number,
                                  detail::fence_not_accepted(FenceKind::drm_syncobj_timeline,
                                                             options_.accepted_fence_kinds)
                                      .message);
            }
            if (auto ok = timelines_.check_incoming("present", m.image_id, m.fence_point, "producer"); !ok) return ok;
        }
        if (current_ != no_slot) {
            // Mailbox: the replaced frame goes back. Never shown and its sync_file acquire
            // fence never taken, nothing here read it: that fence is its release fence (the
            // producer's own writes are what it waits for). Any other fence is dropped.
            const bool fence_back = !current_answered_ && acquire_fence_.valid() &&
                                    acquire_fence_kind_ == FenceKind::sync_file;
            if (auto released = release_current(fence_back ? acquire_fence_.borrow() : BorrowedFd(),
                                                fence_back ? FenceKind::sync_file : FenceKind::none, true);
                !released) {
                return released;
            }
        }
        last_frame_ = m.frame_number;
        answered(head.begin_frame_sequence);
        take_metadata(m, plain, *slot);
        current_ = table_.index_of(*slot);
        slot->state = FrameImageState::presented;
        current_frame_ = m.frame_number;
        current_live_ = true;
        acquire_point_ = m.fence_point;
        if (m.fence_point != 0) timelines_.took(m.fence_point);
        current_answered_ = false;
        if (in.fds[frame_fence_slot].valid()) {
            if (acquire_fence_.valid()) drop_acquire_fence();  // an untaken fence of an earlier frame
            acquire_fence_ = std::move(in.fds[frame_fence_slot]);
            acquire_fence_kind_ = static_cast<FenceKind>(m.fence_kind);
        }
        ++received_;
        return {};
    }

    // A present taken in (shown or not): the begin_frame it answers is answered.
    void answered(std::uint64_t begin_frame_sequence) noexcept {
        if (begin_frame_sequence != 0) begin_answered_ = begin_frame_sequence;
    }
    // The new current frame's metadata (checked; plain: nothing but the begin_frame it
    // answers, the whole image changed). Its damage joins that of the frames since the last
    // one reported presented() (merge_damage; another image size than that frame's: the whole
    // image), and is whole for a session's first frame and after a present that was skipped
    // or refused (its damage never reached the host).
    // A present that is not plain is read again here rather than kept from its check: the
    // plain one, nearly every present, then copies nothing.
    void take_metadata(const FrameMessage& m, bool plain, const detail::FrameSlot& slot) noexcept {
        const std::uint32_t width = slot.image.width(), height = slot.image.height();
        if (plain) [[likely]] {
            // The whole image changed: whatever was pending merges into that. A whole
            // damage's entries are zero already (checked, or zeroed here).
            const detail::PresentHead head = detail::present_head(m);
            current_metadata_.begin_frame_sequence = head.begin_frame_sequence;
            current_metadata_.content_time_ns = head.content_time_ns;
            current_metadata_.flags = head.flags;
            if (current_metadata_.damage_count != 0) {
                current_metadata_.damage = {};
                current_metadata_.damage_count = 0;
            }
        } else if (!unshown_pending_) {
            current_metadata_ = m.payload_as<PresentMetadata>();
            if (width != unshown_width_ || height != unshown_height_) {  // another size, or the first frame
                current_metadata_.damage = {};
                current_metadata_.damage_count = 0;
            }
        } else {
            const PresentMetadata metadata = m.payload_as<PresentMetadata>();
            merge_damage(current_metadata_, metadata, width == unshown_width_ && height == unshown_height_);
            current_metadata_.begin_frame_sequence = metadata.begin_frame_sequence;
            current_metadata_.content_time_ns = metadata.content_time_ns;
            current_metadata_.flags = metadata.flags;
        }
        unshown_pending_ = true;
        unshown_width_ = width;
        unshown_height_ = height;
    }

    // The next frame's damage cannot be related to anything on the host's screen (a new
    // session, a present skipped or refused): with no size to compare with, take_metadata
    // makes it the whole image.
    void damage_chain_broken() noexcept {
        unshown_pending_ = false;
        unshown_width_ = 0;
        unshown_height_ = 0;
    }

    Result<void> vet_peer_image(std::uint64_t id, const DmaBufImage& image) const {
        if (!advertised_ || image.backing() != Backing::dma_buf) return {};
        if (advertised_->contains(image.fourcc(), image.layout().modifier)) return {};
        return make_error(Errc::rejected, "image {}: {} with modifier {} was never advertised ({} formats advertised)",
                          id, format_name(image.fourcc()), modifier_name(image.layout().modifier),
                          advertised_->formats.pair_count());
    }

    // An acquire fence nobody took (detail/fence_probe.hpp: off this thread unless a sync_file).
    void drop_acquire_fence() noexcept {
        detail::drop_fence(acquire_fence_, acquire_fence_kind_);
        acquire_fence_kind_ = FenceKind::none;
    }

    void end_session() noexcept {
        const bool keep = options_.keep_last_frame && current_ != no_slot;
        link_.close();
        current_live_ = false;
        timelines_.forget_peer();
        begin_sent_ = 0;
        begin_answered_ = 0;
        damage_chain_broken();  // the next producer's damage is relative to frames this side never had
        (void)table_.forget_peer(keep ? current_ : no_slot);
        if (!keep) {
            current_ = no_slot;
            acquire_point_ = 0;
            if (acquire_fence_.valid()) drop_acquire_fence();
            return;
        }
        detail::FrameSlot& kept = table_[current_];
        kept.held_while_retiring = false;
        if (kept.local) {
            kept.unshared = true;
        } else if (kept.id != retained_image_id) {
            table_.rename(kept, retained_image_id);
        }
    }

    detail::FrameImageTable table_;
    detail::FrameLink link_;
    Options options_;
    std::size_t current_ = no_slot;  // index of the held image in table_
    std::uint64_t current_frame_ = 0;
    bool current_live_ = false;  // presented by the current producer (not a kept frame)
    std::uint64_t last_frame_ = 0;
    UniqueFd acquire_fence_;
    FenceKind acquire_fence_kind_ = FenceKind::none;  // what acquire_fence_ is
    std::uint64_t acquire_point_ = 0;  // the current frame's point on the producer's timeline
    detail::FrameTimelines timelines_;
    std::size_t received_ = 0;
    std::size_t skipped_ = 0;
    std::optional<FormatTable> advertised_;
    // What the current frame's present said; its damage since the last frame presented()
    // (take_metadata). Kept after the frame leaves: the next one's damage merges into it.
    PresentMetadata current_metadata_{};
    // The size of the image current_metadata_'s damage is in (0 x 0 before a session's first
    // frame and after a present skipped or refused: the next frame's damage is then the
    // whole image, whatever the producer said).
    std::uint32_t unshown_width_ = 0;
    std::uint32_t unshown_height_ = 0;
    bool unshown_pending_ = false;      // its damage is not shown yet: the next frame's merges into it
    bool current_answered_ = false;       // presented or discarded was said for the current frame
    std::uint64_t begin_sent_ = 0;        // the last begin_frame sequence sent this session
    std::uint64_t begin_answered_ = 0;    // the last begin_frame sequence a present answered
    std::size_t presented_ = 0;
    std::size_t discarded_ = 0;
};

}  // namespace texshare
