// Sharing images between the two frame endpoints, which both may do: adding a local image
// (add_image), taking a peer's (import_image and the table's checks), refusing one whose
// fds the kernel cut, and hearing that the peer refused one of ours. Free functions over
// an endpoint's table and link; private to the frame layer.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>

#include "texshare/frame/image_table.hpp"
#include "texshare/frame/link.hpp"

namespace texshare::detail {

// Shares an image this side allocated under a fresh id and keeps it. On error the image
// stays with the caller (moved from only on success). Without a peer it is kept and shared
// with the next one.
inline Result<std::uint64_t> add_local_image(FrameImageTable& table, FrameLink& link, DmaBufImage&& image) {
    auto id = table.reserve_local(image);
    if (!id) return id;
    const bool shared = link.is_open() && !link.hung_up();
    if (shared) {
        if (auto sent = link.send_add(*id, image); !sent) {
            table.unreserve(*id);
            return std::move(sent).error();
        }
    }
    table.insert_local(*id, std::move(image), shared);
    return id;
}

inline Result<void> share_image(FrameLink& link, FrameSlot& slot) {
    if (auto sent = link.send_add(slot.id, slot.image); !sent) return sent;
    slot.unshared = false;
    slot.refused = false;
    return {};
}

// Shares every local image the new peer has not seen, except ones this side holds (the
// consumer's kept frame: shared once released).
inline Result<void> share_unshared(FrameImageTable& table, FrameLink& link) {
    for (FrameSlot& slot : table.slots()) {
        if (slot.id == 0 || !slot.unshared || slot.state == FrameImageState::presented) continue;
        if (auto sent = share_image(link, slot); !sent) return sent;
    }
    return {};
}

// A well-formed add_image this side will not take (no room for it: the peer's quota, or its
// fds cut): the peer is told (FrameKind::refused) so that it neither presents it in vain nor
// is blamed when a present of it crossed the refusal, and the id is remembered for that.
// Returns `why` once the peer is told; if telling fails (its socket full), that error, and
// nothing is remembered.
inline Result<void> refuse_peer_image(FrameImageTable& table, FrameLink& link, std::uint64_t id, Error why) {
    if (auto told = link.answer(FrameKind::refused, id); !told) return told;
    table.remember_refused(id);
    return why;
}

// A resume whose greeting failed (a share or the format table could not be sent): the new
// peer is let go and every local image is unshared again, as before the resume (with no
// peer, none was shared).
inline void abandon_peer(FrameImageTable& table, FrameLink& link) noexcept {
    link.close();
    for (FrameSlot& slot : table.slots()) {
        if (slot.id != 0 && slot.local) slot.unshared = true;
    }
}

// add_image from the peer: checks the id, then that the peer has room (its quota, a free
// slot: if not, refused and the peer told), then every check of import_image, then `vet`
// (the consumer's advertised formats), then the listener's. The fds are closed on refusal.
template <typename Vet>
Result<void> accept_peer_image(FrameImageTable& table, FrameLink& link, const FrameMessage& m,
                               std::array<UniqueFd, frame_fd_slots>& fds, Vet&& vet) {
    if (auto id_ok = table.check_peer_id(m.image_id); !id_ok) return id_ok;
    if (auto room = table.check_peer_room(m.image_id); !room) {
        Error why = std::move(room).error();
        why.message += fmt::format("; refused, and the {} told so", link.peer());
        return refuse_peer_image(table, link, m.image_id, std::move(why));
    }
    PlaneFds planes;
    for (std::size_t i = 0; i < max_planes; ++i) planes[i] = std::move(fds[i]);
    auto image = import_image(m.descriptor(), std::move(planes));
    if (!image) return std::move(image).error();
    if (auto vetted = vet(m.image_id, *image); !vetted) return vetted;
    return table.insert_peer(m.image_id, std::move(*image));
}

// add_image whose plane fds the kernel cut (this process at its open-file limit): the
// image cannot be imported. Refused, and the peer told (refuse_peer_image).
inline Result<void> refuse_cut_image(FrameImageTable& table, FrameLink& link, const FrameMessage& m) {
    if (auto id_ok = table.check_peer_id(m.image_id); !id_ok) return id_ok;
    return refuse_peer_image(table, link, m.image_id,
                             make_error(Errc::truncated,
                                        "add_image of image {}: its plane fds were cut off (MSG_CTRUNC: this "
                                        "process is at its open-file limit); refused, and the {} told so",
                                        m.image_id, link.peer()));
}

// The peer refused one of this side's images: it stays here, unshared.
inline Result<void> peer_refused(FrameImageTable& table, std::uint64_t id) {
    FrameSlot* slot = table.find(id);
    if (slot == nullptr || !slot->local || slot->unshared) {
        return make_error(Errc::protocol, "refused for image {}, which {}", id,
                          slot == nullptr  ? "is unknown"
                          : !slot->local   ? "this side did not add"
                                           : "the peer never had");
    }
    slot->unshared = true;
    slot->refused = true;
    return {};
}

// The wait both endpoints make (wait_for_free_image, wait_for_frame, wait_for_begin_frame):
// handles messages until `ready()` or the timeout (the one rule: > 0 waits, 0 only looks,
// < 0 is an error). Each message is waited for in its own blocking recvmsg (no poll, no
// read that finds nothing): one recvmsg per message, as a paced producer reading
// presented, release and begin_frame in one wait shows. It returns as soon as `ready()`
// holds, leaving later messages for the next dispatch or wait. Each recvmsg is limited to
// half the timeout (SO_RCVTIMEO, set once for a frame loop's constant timeout; the kernel
// rounds it up to its tick), and the next begins only while a whole half fits before the
// deadline (one clock read per message beyond the first); otherwise, after a signal, or
// when a receive found nothing, it polls and drains with whatever time is left, so a wait
// never ends early and overruns its timeout by at most the kernel's rounding of the last step. A timeout of 2^30 ms (about 12 days) or more waits without limit
// (std::chrono::milliseconds::max() for "forever"): no clock read and no kernel timer.
// wait_until() once its receives ran out of time: poll and drain until the deadline. Out
// of line, so that the per-frame part of wait_until() stays small and its code together
// (a frame loop rarely gets here).
template <typename Ready, typename Dispatch>
[[gnu::noinline]] Result<void> wait_on(FrameLink& link, std::chrono::milliseconds timeout, const char* waiting_for,
                                       Clock::time_point deadline, Ready& ready, Dispatch& dispatch) {
    while (true) {
        if (auto handled = dispatch(); !handled) return std::move(handled).error();
        if (ready()) return {};
        auto readable = wait_readable(link.native_handle(), deadline);
        if (!readable) return std::move(readable).error();
        if (!*readable) return link.timed_out(timeout, waiting_for);
    }
}

template <typename Ready, typename HandleIncoming, typename Dispatch, typename PeerGone>
[[gnu::hot]] Result<void> wait_until(FrameLink& link, std::chrono::milliseconds timeout, const char* waiting_for,
                                     const char* who, Ready&& ready, HandleIncoming&& handle_incoming,
                                     Dispatch&& dispatch, PeerGone&& peer_gone) {
    if (auto valid = check_wait_timeout(timeout, who); !valid) [[unlikely]] return valid;
    if (ready()) return {};
    if (!link.is_open()) [[unlikely]] return link.closed(who);
    // An unbounded wait reads no clock: its deadline is "never", and a frame loop waiting
    // forever pays no clock read per frame (under a hypervisor that is a paravirtual clock read).
    const bool unbounded = timeout >= std::chrono::milliseconds(1 << 30);
    const auto start = unbounded ? Clock::time_point() : Clock::now();
    const auto deadline = unbounded ? Clock::time_point::max() : start + timeout;  // no overflow either way
    const auto step = unbounded ? std::chrono::microseconds::max()
                                : std::max(std::chrono::microseconds(timeout) / 2, std::chrono::microseconds(1));
    if (timeout.count() > 0) {
        while (true) {
            auto received = link.receive_within(step);
            if (!received) [[unlikely]] {
                if (received.error().code == Errc::peer_closed) peer_gone();
                return std::move(received).error();
            }
            if (*received != ReceiveStatus::message) [[unlikely]] {
                // A signal, or the step ran out: poll out what is left. Also what a socket
                // someone set O_NONBLOCK on gives at once, so that never spins here.
                break;
            }
            if (auto done = handle_incoming(); !done) return done;
            if (ready()) [[likely]] return {};
            if (!unbounded && Clock::now() + step > deadline) break;
        }
    }
    return wait_on(link, timeout, waiting_for, deadline, ready, dispatch);
}

}  // namespace texshare::detail
