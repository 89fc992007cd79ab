// FenceKind: what the fence fd of a present or release is, as the frame protocol says it.
//
// Use it where a fence crosses the frame protocol: FrameSender::present and
// FrameReceiver::release take one with the fd, the other side reads it back
// (FrameReceiver::acquire_fence_kind, FrameSender::FreeImage::release_fence_kind), and each
// endpoint says which kinds it accepts (FrameReceiverOptions / FrameSenderOptions
// accepted_fence_kinds; sync_file alone by default). The kind travels in the message
// (FrameMessage::fence_kind) so that the receiver never has to guess from the fd what it
// is: a sync_file and a DRM syncobj share one anonymous inode, and a semaphore exported as
// OPAQUE_FD is whatever the driver makes it (a DRM syncobj on Mesa's hardware drivers, an fd
// of /dev/nvidiactl on NVIDIA).
//
// Kinds, and where the rules for each come from:
// - sync_file: a Linux sync_file (linux/sync_file.h), waited on with poll() or imported as
//   a SYNC_FD semaphore; what EGL_ANDROID_native_fence_sync and Vulkan SYNC_FD export.
// - vulkan_opaque_semaphore: a binary VkSemaphore's payload exported with
//   VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_OPAQUE_FD_BIT. Only the same driver on the same
//   device can import it (Vulkan spec, "External Semaphore Handle Types": OPAQUE_FD handles
//   are only meaningful to a device with the same deviceUUID and driverUUID), so a side
//   accepts it only when negotiation proved the peer to be that (texshare cannot tell from
//   the fd). It cannot be waited on with poll(): only a Vulkan import waits on it.
//
// - drm_syncobj_timeline: a point on a DRM syncobj timeline (drm_syncobj.hpp), the model of
//   Wayland's linux-drm-syncobj-v1: each side shares its syncobj's fd once per session
//   (FrameKind::timeline, the fd in the fence slot), and from then on a present carries the
//   acquire point and a release the release point in FrameMessage::fence_point, with no fd.
//   Points on one timeline strictly increase; a repeated or lower point is Errc::protocol.
//   It is the one kind "without an fd in the message": fence_kind_carries_fd() says so.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <string_view>

namespace texshare {

enum class FenceKind : std::uint8_t {
    none = 0,                     // no fence: the fence slot is empty
    sync_file = 1,                // a sync_file fd
    vulkan_opaque_semaphore = 2,  // a VkSemaphore payload exported as OPAQUE_FD
    drm_syncobj_timeline = 3,     // a point (FrameMessage::fence_point) on the shared timeline
};

// The highest kind this version knows; a message with a higher one is Errc::protocol.
inline constexpr FenceKind last_fence_kind = FenceKind::drm_syncobj_timeline;

constexpr std::string_view to_string(FenceKind kind) noexcept {
    switch (kind) {
        case FenceKind::none:
            return "none";
        case FenceKind::sync_file:
            return "sync_file";
        case FenceKind::vulkan_opaque_semaphore:
            return "vulkan_opaque_semaphore";
        case FenceKind::drm_syncobj_timeline:
            return "drm_syncobj_timeline";
    }
    return "unknown";
}

// Whether a fence of this kind travels as an fd in the message's fence slot: sync_file and
// vulkan_opaque_semaphore do; none and drm_syncobj_timeline (a point, its fd shared once) do
// not. One constant, bit k for kind k, so the per-frame check reads no table.
inline constexpr unsigned fence_kinds_with_fd =
    (1U << static_cast<unsigned>(FenceKind::sync_file)) |
    (1U << static_cast<unsigned>(FenceKind::vulkan_opaque_semaphore));
constexpr bool fence_kind_carries_fd(std::uint8_t kind) noexcept {
    return kind < 32 && ((fence_kinds_with_fd >> kind) & 1U) != 0;
}

// A set of fence kinds: which ones an endpoint accepts from its peer. `none` (no fence) is
// always accepted and need not be in it.
class FenceKindSet {
public:
    constexpr FenceKindSet() noexcept = default;
    constexpr FenceKindSet(FenceKind kind) noexcept : bits_(bit(kind)) {}  // NOLINT: a set of one
    constexpr FenceKindSet operator|(FenceKindSet other) const noexcept {
        return FenceKindSet(bits_ | other.bits_);
    }
    constexpr bool contains(FenceKind kind) const noexcept { return (bits_ & bit(kind)) != 0; }
    constexpr bool contains_raw(std::uint8_t kind) const noexcept {
        return kind < 8 && ((bits_ >> kind) & 1U) != 0;
    }
    constexpr std::uint8_t bits() const noexcept { return bits_; }
    friend constexpr bool operator==(FenceKindSet, FenceKindSet) noexcept = default;

private:
    constexpr explicit FenceKindSet(std::uint8_t bits) noexcept : bits_(bits) {}
    static constexpr std::uint8_t bit(FenceKind kind) noexcept {
        return static_cast<std::uint8_t>(1U << static_cast<unsigned>(kind));
    }
    std::uint8_t bits_ = 0;
};

constexpr FenceKindSet operator|(FenceKind a, FenceKind b) noexcept {
    return FenceKindSet(a) | FenceKindSet(b);
}

// What each endpoint accepts unless told otherwise: sync_files, as before fence kinds existed.
inline constexpr FenceKindSet default_fence_kinds = FenceKindSet(FenceKind::sync_file);

}  // namespace texshare
