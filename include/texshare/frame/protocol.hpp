// FrameSender and FrameReceiver: share images once, then present and release them by id.
//
// Use these for the per-frame exchange between a producer (renders frames) and a consumer
// (shows them), e.g. a renderer child and its UI host. Either side may allocate: the
// producer shares its own images (a video decoder's output) or the consumer shares images
// the producer renders into (a host allocating its renderer's swapchain); both kinds live
// in one table per endpoint and follow the same rules.
//
// The rules both endpoints keep:
// - Hello (frame protocol 2.0, frame/hello.hpp): each side's first message is its hello
//   (create() and resume() send it): major.minor version, role, and the features it asks
//   for or offers (pacing, feedback; used when both hellos carry them). Messages are
//   handled in order, so nothing the peer sends is used before its hello is accepted: a
//   peer of another major version is Errc::protocol naming both versions ("the producer
//   speaks frame protocol 3.0, this side 2.0"), a hello from the wrong role, a second
//   hello, non-zero bytes after Hello, or any message but bye before the hello is
//   Errc::protocol. A protocol 1 peer (before the hello) frames its messages 8 bytes
//   shorter: its first message is refused as "no hello from the producer: its first
//   message is not a frame protocol 2.0 message"; it refuses our hello as a record longer
//   than its messages (its AuxChannel: Errc::truncated, MSG_TRUNC). dispatch() does not
//   count the hello.
//   This side's add_image may be on its way before the peer's hello is read; a peer of
//   another major refuses the hello in front of it first.
// - Pacing (begin_frame, consumer -> producer): a producer that asks to be paced
//   (FrameSenderOptions::paced) gets begin_frame(sequence, target_time_ns, interval_ns)
//   from the consumer's begin_frame(), called from its vsync or timer, and renders one frame
//   per begin_frame (wait_for_begin_frame); times are CLOCK_MONOTONIC ns. Sequences start at
//   1 each session and increase; target times are > 0. Each present answers the newest
//   begin_frame not answered yet (0: none), and the consumer checks that it was sent and
//   not answered before. A paced producer may present without a begin_frame (it is not an
//   error): the consumer shows the newest present and the one it replaces unshown goes
//   back as discarded + release (mailbox); what a producer can never do is present an image
//   the consumer still holds, so it cannot run ahead of its swapchain. begin_frame to a
//   producer that did not ask, or from a consumer that did not offer, is Errc::protocol.
// - Feedback (presented / discarded, consumer -> producer): where both offered it, every
//   present gets exactly one, before the image comes back: presented (the consumer's
//   presented(time_ns, flags): when it reached the screen, zero_copy or copied) or discarded
//   (replaced by a newer present, released, or given back unshown before it was
//   reported). Each names the image and the present's frame number and echoes the
//   begin_frame it answered, so the producer can measure begin_frame -> screen
//   (take_feedback()). Exceptions: a present of an image the consumer retires (the retire
//   ends it on both sides) and a present the peer's end cuts short get none. Feedback not
//   agreed, for a present that awaits none, with a wrong begin_frame, a presented time <= 0,
//   unknown or both flags, or a discarded with a time or flags, and a release (or
//   `retired`) before the feedback of the present it ends, are Errc::protocol.
// - Present metadata (PresentMetadata in each present, present_metadata.hpp): damage as up
//   to 8 rectangles in buffer coordinates (none: the whole image; more collapse into their
//   bounding box on the producer), the content time (ns, for video) and flags (opaque).
//   The consumer checks it against the image before anything changes: known flags, a
//   content time >= 0, at most 8 rectangles, each non-empty and inside the image (in 64
//   bits: no wrap), unused entries zero; anything else is Errc::protocol. The host reads it
//   from Frame::metadata (damaged_pixel_count() measures the damaged share). The producer's
//   damage is relative to its previous present; the consumer's Frame::metadata damage is
//   relative to the last frame it reported presented(): presents replaced, released or
//   skipped unshown in between have their damage merged in (merge_damage: both lists, or
//   their bounding box beyond 8; another image size or an unknown image: the whole image).
//   A session's first frame, and the frame after a present the consumer skipped or refused,
//   damage the whole image whatever the producer said (nothing older is on the host's screen).
// - Every message's header and payload are checked before the endpoint looks at them
//   (messages.hpp): a field a kind does not use (frame number, image id, fence point, the
//   payload after its data) must be zero.
// - An image is shared once (add_image: descriptor + plane fds, validated by import_image on
//   the receiving side); from then on only ids, frame numbers and optional sync fences
//   travel. Ids never repeat within a session; the consumer's have consumer_image_id_bit set.
// - The producer sees each image as free or presented. present() of a presented image
//   (the consumer still holds it), of a retiring one or of an unknown id is refused, so the
//   producer can never write into an image the consumer is still reading.
// - The consumer holds at most one image: the latest presented one. When a newer present
//   arrives the previous image is released back automatically (mailbox), without a release
//   fence, unless it was never shown (no presented() for it) and its sync_file acquire
//   fence was never taken: then that fence goes back as its release fence.
//   A consumer that samples asynchronously calls release(id, fence) itself as soon as its
//   reads of the current image are submitted, and the producer waits on that fence.
// - Fences: present carries an optional acquire fence, release an optional release fence,
//   each with its kind on the wire (fence_kind.hpp): a sync_file (sync_file.hpp,
//   egl/fence.hpp, vulkan/fence.hpp's sync_fd mode) or a Vulkan semaphore exported as
//   OPAQUE_FD (vulkan/fence.hpp's opaque_fd mode, for drivers without SYNC_FD such as
//   NVIDIA's; only the same driver on the same device can wait on it). Each side says which
//   kinds it accepts (Options::accepted_fence_kinds, sync_file alone by default). A fence
//   fd without a kind, a kind without its fd, an unknown kind or a kind on a message that
//   carries no fence is Errc::protocol; a fence of a kind this side does not accept, or an
//   fd that is not what its kind says (a sync_file: the anonymous inode; an OPAQUE_FD
//   semaphore: a character device or that inode, never a pipe, socket, regular file, memfd
//   or DMA-BUF), is Errc::rejected and changes nothing: a present is never shown without
//   its fence, or with a fence this side cannot wait on. The kind is read with the fence
//   (FrameReceiver::acquire_fence_kind, FrameSender::FreeImage::release_fence_kind). A
//   release fence stays with the producer's image until taken (acquire_free_image() or
//   take_release_fence()); presenting an image whose fence was never taken is refused, so
//   a fence cannot be dropped silently. A fence nobody took is closed by the endpoint: at
//   once for a sync_file, off the dispatching thread for any other kind.
// - Timeline sync (FenceKind::drm_syncobj_timeline, frame/timeline.hpp; the model of
//   Wayland's linux-drm-syncobj-v1): each side may share one DRM syncobj timeline per
//   session with share_timeline(fd) (FrameKind::timeline: the fd in the fence slot, fence
//   kind drm_syncobj_timeline, no point), re-shared with each new peer on resume(). Then a
//   present(id, TimelinePoint) carries the producer's acquire point and a
//   release(id, TimelinePoint) the consumer's release point in FrameMessage::fence_point,
//   with no fd; the other side reads acquire_point() / FreeImage::release_point with
//   peer_timeline(), imports that once (DrmSyncobj::import, drm_syncobj.hpp) and waits for
//   the point there. On receipt: the kind must be accepted (Options::accepted_fence_kinds;
//   not by default), else Errc::rejected; the timeline fd must be a DRM syncobj (the shared
//   anonymous inode named anon_inode:syncobj_file, detail/fence_probe.hpp), else
//   Errc::rejected; a second timeline in one session, a point before any timeline, and a
//   point not after the last one from that peer (repeated or lower) are Errc::protocol;
//   each changes nothing. A point travels only with a kind that has points and never with
//   an fd; a point of 0 is refused by the envelope. Sending: a point before share_timeline or
//   not after this side's last is Errc::invalid_argument, nothing sent. An untaken release
//   point holds its image back like an untaken release fence.
// - Only the side that added an image retires it (e.g. on resize). The producer's retire
//   waits for the consumer to let go (`retired` once it no longer holds it, which for a held
//   image means released too); the consumer's retire takes effect at once on its side, and a
//   present of it that crossed the retire is skipped, not an error.
// - Each side decides how many images the other may add to its table
//   (FrameReceiverOptions::max_producer_images, FrameSenderOptions::max_consumer_images;
//   half the table by default, 0 for none), so a peer can never take the slots of this
//   side's own images. An add_image beyond that is refused: dispatch() returns
//   Errc::rejected naming the quota and the count, and the peer is told (FrameKind::refused,
//   as for cut fds). Retiring one of its images frees a place.
// - A refused message leaves no trace: each message and each call either takes effect
//   whole or changes nothing (every check, and every send that can fail, comes before the
//   first change; a `retired` or `release` answer is sent before the image goes). What the
//   peer is told is always what this side did. Errors that report a message which did take
//   effect say so (Errc::truncated: released back; Errc::rejected for an add_image: refused
//   and told).
// - Both endpoints are non-blocking: poll native_handle() and call dispatch(), which handles
//   everything pending. wait_for_free_image() / wait_for_frame() wait with a timeout
//   (Errc::timed_out names the stuck peer), inside the recvmsg that receives the answer,
//   and return as soon as it is there; a signal (a profiler's timer) neither ends a wait
//   early nor stretches it. One timeout rule everywhere (these waits and
//   AuxChannel::receive_within): > 0 waits that long, 0 only handles what is pending,
//   < 0 is Errc::invalid_argument.
// - Each endpoint owns an image table and a link to its peer (image_table.hpp, link.hpp) and
//   handles messages top to bottom in dispatch(); a send never receives.
// - Ending a session cleanly: either side calls close(), which sends bye and closes the
//   channel; the other side's dispatch() (or wait) then returns Errc::peer_closed "the
//   producer/consumer said bye" and drops the peer's images. A producer closes after its
//   last present has been released (wait_for_free_image) if the consumer should see it;
//   a consumer closes when it wants no more frames. Destroying an endpoint without close()
//   reads to the peer as a crash (EOF, no bye), with the same effect.
// - Peer death: the socket says only that every copy of the peer's end is closed (or the
//   peer said bye); dispatch() then returns Errc::peer_closed once it has read what the
//   peer sent before. A peer process that exits while a process it forked (or passed its
//   end to) holds the end is not seen through the socket at all: a host watches its
//   child's pidfd beside the channel (ChildProcess::wait_for_event) and, on the child's
//   exit, calls dispatch() once (the child's last messages are queued by then) and then
//   close(), which ends the session the same way. A send to a gone peer (present, release, ...)
//   returns Errc::peer_closed ("the producer is gone") and changes nothing; the next
//   dispatch() reads the peer's last words and its end. The peer's images are dropped;
//   this side's images stay, free again ("reclaimed" on the producer), and
//   resume(new channel) shares them with a new peer. The consumer may keep its last frame
//   (Options::keep_last_frame) until the new producer presents.
// - The fd limit: when this process cannot take the fds of a message (MSG_CTRUNC, at its
//   RLIMIT_NOFILE), the message is still handled safely and dispatch() returns
//   Errc::truncated naming its kind and image: a present whose acquire fence was cut is
//   released back unshown (never shown unfenced); an add_image whose plane fds were cut is
//   refused and the adding side told with FrameKind::refused (it keeps the image unshared;
//   presents of it that crossed are released back); a release whose fence was cut frees
//   the image and says the fence is lost.
// - A zero-length record from a live peer is Errc::protocol, never taken for EOF.
// - Per frame (begin_frame, present with its metadata, presented or discarded, release):
//   one sendmsg and one recvmsg per message, no heap allocation (images live in fixed
//   arrays of max_frame_images, feedback in a ring of 64) and, on the receiving side, one
//   statx per fence (its kind); images are validated once, when shared.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include "texshare/frame/fence_kind.hpp"
#include "texshare/frame/hello.hpp"
#include "texshare/frame/image_listener.hpp"
#include "texshare/frame/image_table.hpp"
#include "texshare/frame/messages.hpp"
#include "texshare/frame/payloads.hpp"
#include "texshare/frame/present_metadata.hpp"
#include "texshare/frame/receiver.hpp"
#include "texshare/frame/sender.hpp"
