// The timeline fences of one frame endpoint (FenceKind::drm_syncobj_timeline): this side's
// DRM syncobj, shared once per session, and the peer's, with the last point each way.
//
// Use it through FrameSender and FrameReceiver (share_timeline, present / release with a
// TimelinePoint, peer_timeline); this header is their shared part. The model is Wayland's
// linux-drm-syncobj-v1: the producer's timeline carries acquire points (present), the
// consumer's release points (release); each syncobj fd crosses once (FrameKind::timeline,
// the fd in the fence slot) and is checked on receipt to be a DRM syncobj
// (detail::require_syncobj_fd: what can and cannot be checked is written there). The
// endpoints never touch a DRM device: the application imports the peer's fd
// (DrmSyncobj::import, drm_syncobj.hpp) and waits or signals there.
//
// Rules (protocol.hpp): a point needs a timeline shared first (sending: Errc::invalid_argument;
// receiving: Errc::protocol); points on one timeline strictly increase, so a repeated or lower
// point is refused the same way and changes nothing; a second timeline from the same peer in
// one session is Errc::protocol. A new peer (resume) gets this side's timeline again, and
// this side's points keep increasing on it (the syncobj is the same kernel object); the
// peer's timeline and last point are forgotten with the peer.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <fcntl.h>

#include <cstdint>
#include <utility>

#include "texshare/detail/fence_probe.hpp"
#include "texshare/frame/link.hpp"

namespace texshare {

// A point on a DRM syncobj timeline, as present() and release() take it (a type of its own,
// so that a point is never taken for an fd number or a frame number). Must be > 0.
struct TimelinePoint {
    std::uint64_t value = 0;
};

namespace detail {

class FrameTimelines {
public:
    // This side's syncobj fd (borrowed; kept as a dup for later peers), sent to the current
    // peer now if there is one. Errc::invalid_argument when one is shared already, Errc::rejected
    // when `syncobj` is not a DRM syncobj, Errc::system for the dup; errors from the send
    // (peer_closed, ...) leave nothing changed.
    Result<void> share(FrameLink& link, BorrowedFd syncobj) {
        if (own_) {
            return make_error(Errc::invalid_argument,
                              "share_timeline: this side shared its timeline already (fd {})", own_.get());
        }
        if (auto checked = require_syncobj_fd(syncobj); !checked) return std::move(checked).error();
        UniqueFd copy(::fcntl(syncobj.get(), F_DUPFD_CLOEXEC, 3));
        if (!copy) return make_sys_error(errno, "share_timeline: F_DUPFD_CLOEXEC of fd {}", syncobj.get());
        if (link.is_open() && !link.hung_up()) {
            if (auto sent = send_own(link, copy.borrow()); !sent) return sent;
            own_sent_ = true;
        }
        own_ = std::move(copy);
        return {};
    }

    // Sends this side's timeline to a new peer (resume), if there is one and it has not got it.
    Result<void> share_with_new_peer(FrameLink& link) {
        if (!own_ || own_sent_) return {};
        if (auto sent = send_own(link, own_.borrow()); !sent) return sent;
        own_sent_ = true;
        return {};
    }

    // Whether `point` may go out next on this side's timeline; the caller sends, then
    // calls sent(point).
    Result<void> check_outgoing(const char* call, std::uint64_t id, std::uint64_t point) const {
        if (!own_sent_) [[unlikely]] {
            return make_error(Errc::invalid_argument,
                              "{}: image {}: timeline point {} before share_timeline{}", call, id, point,
                              own_ ? " reached this peer" : "");
        }
        if (point <= own_point_) [[unlikely]] {
            return make_error(Errc::invalid_argument, "{}: image {}: timeline point {} is not after point {}",
                              call, id, point, own_point_);
        }
        return {};
    }
    void sent(std::uint64_t point) noexcept { own_point_ = point; }

    // A peer's FrameKind::timeline message (the envelope is checked): takes the fd if it is a
    // syncobj and the first this session. The fd stays in `fd` on refusal (closed by the caller).
    Result<void> accept_peer(UniqueFd& fd, const char* peer) {
        if (peer_) {
            return make_error(Errc::protocol, "timeline from the {}, which shared one already this session",
                              peer);
        }
        if (auto checked = require_syncobj_fd(fd.borrow()); !checked) return std::move(checked).error();
        peer_ = std::move(fd);
        return {};
    }

    // Whether a point from the peer may be taken (then call took(point)).
    Result<void> check_incoming(const char* what, std::uint64_t id, std::uint64_t point,
                                const char* peer) const {
        if (!peer_) [[unlikely]] {
            return make_error(Errc::protocol,
                              "{} of image {} at timeline point {}, but the {} shared no timeline", what, id,
                              point, peer);
        }
        if (point <= peer_point_) [[unlikely]] {
            return make_error(Errc::protocol, "{} of image {} at timeline point {}, not after point {}", what,
                              id, point, peer_point_);
        }
        return {};
    }
    void took(std::uint64_t point) noexcept { peer_point_ = point; }

    BorrowedFd peer() const noexcept { return peer_.borrow(); }
    std::uint64_t peer_point() const noexcept { return peer_point_; }
    BorrowedFd own() const noexcept { return own_.borrow(); }
    std::uint64_t own_point() const noexcept { return own_point_; }
    bool own_sent() const noexcept { return own_sent_; }

    // The peer is gone: its timeline goes (a syncobj's close never blocks), ours is unsent.
    void forget_peer() noexcept {
        peer_.reset();
        peer_point_ = 0;
        own_sent_ = false;
    }

private:
    static Result<void> send_own(FrameLink& link, BorrowedFd fd) {
        FrameMessage message = make_frame_message(FrameKind::timeline, 0);
        message.fence_kind = static_cast<std::uint8_t>(FenceKind::drm_syncobj_timeline);
        std::array<BorrowedFd, frame_fd_slots> fds{};
        fds[frame_fence_slot] = fd;
        return link.send(message, fds);
    }

    UniqueFd own_;
    bool own_sent_ = false;
    std::uint64_t own_point_ = 0;
    UniqueFd peer_;
    std::uint64_t peer_point_ = 0;
};

}  // namespace detail
}  // namespace texshare
