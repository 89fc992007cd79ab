// FrameSender and FrameReceiver: share images once, then present and release them by id.
//
// Use these for the per-frame exchange between a producer (renders into images) and a
// consumer (shows them). Either process may be the producer: whoever allocates owns the
// FrameSender, the other end of the same socket pair gets the FrameReceiver.
//
// The rules both endpoints keep:
// - An image is shared once (add_image: descriptor + plane fds, validated by import_image on
//   the consumer); from then on only ids, frame numbers and optional sync fences travel.
// - The producer sees each image as free or presented. present() of a presented image
//   (the consumer still holds it), of a retiring one or of an unknown id is refused, so the
//   producer can never write into an image the consumer is still reading.
// - The consumer holds at most one image: the latest presented one. When a newer present
//   arrives the previous image is released back automatically, without a release fence.
//   A consumer that samples asynchronously calls release(id, fence) itself as soon as its
//   reads of the current image are submitted, and the producer waits on that fence.
// - A release fence is kept with the producer's image until taken (acquire_free_image() or
//   take_release_fence()); presenting an image whose fence was never taken is refused, so
//   a fence cannot be dropped silently.
// - retire(id) (e.g. on resize) drops the image on both sides only after the consumer lets
//   go: the consumer answers with release (if it held it) and then retired.
// - Both endpoints are non-blocking: poll native_handle() and call dispatch(), which handles
//   everything pending. When the peer is gone (closed socket or bye), dispatch() returns
//   Errc::peer_closed: the producer gets every presented image back as free ("reclaimed"),
//   the consumer drops every image.
// - Per frame (present, release): one sendmsg and one recvmsg, no heap allocation (images
//   live in fixed arrays of max_frame_images), no validation syscalls beyond AuxChannel's
//   one fcntl(F_GETFD) on a fence fd being sent.
#pragma once

#include "texshare/frame_messages.hpp"
#include "texshare/frame_receiver.hpp"
#include "texshare/frame_sender.hpp"
