// The cross-process round trips (sections 1 and 3): each is the parent's side of a
// ping-pong with a child of this binary that answers. One per way of doing it:
//   raw       sendmsg/recvmsg of a frame message's size, written directly (the limit)
//   texshare  FrameSender::present -> FrameReceiver -> release -> the sender sees it free
//   paced     a paced frame: begin_frame -> present -> presented + release (4 messages), raw and texshare
//   wayland   libwayland: wl_display_roundtrip, or a request with an fd answered by an event
//   copy      a 4K frame's pixels through a socket, or memcpy'd into shared memory
#pragma once

#include <cstdint>
#include <memory>

#include "harness.hpp"
#include "texshare/frame/messages.hpp"

namespace bench {

// Bytes of one frame-protocol message on the wire (AuxChannel header + slot mask + message),
// which the raw baseline sends too.
inline constexpr std::size_t frame_wire_bytes =
    2 * sizeof(std::uint32_t) + (texshare::frame_fd_slots + 7) / 8 + sizeof(texshare::FrameMessage);

// with_fd: each ping carries one fd (an eventfd, as an acquire fence would), closed by the child.
std::unique_ptr<RoundTrip> make_raw_round_trip(bool with_fd);

// One width x height memfd image, shared once; then present (with an acquire fence if
// with_fence) and wait until it is free again.
std::unique_ptr<RoundTrip> make_texshare_round_trip(bool with_fence, std::uint32_t width, std::uint32_t height);

// A paced frame's 4 messages, frame_wire_bytes each, written directly: the parent sends
// begin_frame, receives present, sends presented and release (the limit of the next one).
std::unique_ptr<RoundTrip> make_raw_paced_round_trip();

// A paced frame with texshare: the parent is the host (FrameReceiver, pacing and feedback
// on), the child a paced FrameSender with one 64x64 image. Per frame the host sends
// begin_frame, waits for the present (with damage), says presented and releases; the
// producer takes the feedback before it presents the next frame.
std::unique_ptr<RoundTrip> make_paced_frame_round_trip();

enum class WaylandRoundTrip { display_roundtrip, request_with_fd };
std::unique_ptr<RoundTrip> make_wayland_round_trip(WaylandRoundTrip kind);

// Hands a width x height ARGB8888 frame's pixels to the child: written through a stream
// socket (the child reads them all), or memcpy'd into a shared memfd mapping (the child is
// told it is there). Each answers with a one-byte ack.
enum class CopyKind { socket, shared_memory };
std::unique_ptr<RoundTrip> make_copy_round_trip(CopyKind kind, std::uint32_t width, std::uint32_t height);

}  // namespace bench
