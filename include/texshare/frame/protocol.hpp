// FrameSender and FrameReceiver: share images once, then present and release them by id.
//
// Use these for the per-frame exchange between a producer (renders frames) and a consumer
// (shows them), e.g. a renderer child and its UI host. Either side may allocate: the
// producer shares its own images (a video decoder's output) or the consumer shares images
// the producer renders into (a host allocating its renderer's swapchain); both kinds live
// in one table per endpoint and follow the same rules.
//
// The rules both endpoints keep:
// - An image is shared once (add_image: descriptor + plane fds, validated by import_image on
//   the receiving side); from then on only ids, frame numbers and optional sync fences
//   travel. Ids never repeat within a session; the consumer's have consumer_image_id_bit set.
// - The producer sees each image as free or presented. present() of a presented image
//   (the consumer still holds it), of a retiring one or of an unknown id is refused, so the
//   producer can never write into an image the consumer is still reading.
// - The consumer holds at most one image: the latest presented one. When a newer present
//   arrives the previous image is released back automatically, without a release fence.
//   A consumer that samples asynchronously calls release(id, fence) itself as soon as its
//   reads of the current image are submitted, and the producer waits on that fence.
// - Fences: present carries an optional acquire fence, release an optional release fence
//   (sync_file fds, see sync_file.hpp and egl_fence.hpp for where they come from and the
//   fallback without them). A release fence stays with the producer's image until taken
//   (acquire_free_image() or take_release_fence()); presenting an image whose fence was
//   never taken is refused, so a fence cannot be dropped silently.
// - Only the side that added an image retires it (e.g. on resize). The producer's retire
//   waits for the consumer to let go (release, if it held it, then retired); the consumer's
//   retire takes effect at once on its side, and a present of it that crossed the retire is
//   skipped, not an error.
// - Both endpoints are non-blocking: poll native_handle() and call dispatch(), which handles
//   everything pending. wait_for_free_image() / wait_for_frame() wait with a timeout
//   (Errc::timed_out names the stuck peer), inside the recvmsg that receives the answer,
//   and return as soon as it is there; a signal (a profiler's timer) neither ends a wait
//   early nor stretches it.
// - Peer death (closed socket or bye): dispatch() returns Errc::peer_closed at once. The
//   peer's images are dropped; this side's images stay, free again ("reclaimed" on the
//   producer), and resume(new channel) shares them with a new peer. The consumer may keep
//   its last frame (Options::keep_last_frame) until the new producer presents.
// - Per frame (present, release): one sendmsg and one recvmsg, no heap allocation (images
//   live in fixed arrays of max_frame_images) and no fd validation syscalls: the kernel
//   itself refuses a closed fence fd, and images are validated once, when shared.
#pragma once

#include "texshare/frame/endpoint.hpp"
#include "texshare/frame/messages.hpp"
#include "texshare/frame/receiver.hpp"
#include "texshare/frame/sender.hpp"
