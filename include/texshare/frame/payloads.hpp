// What each frame message carries after its header: the per-kind payloads of protocol 2.
//
// Use these types when reading or writing FrameMessage::payload (messages.hpp) directly, in
// tests or in a compatible peer; the endpoints (protocol.hpp) fill and check them for you.
// Each is a plain struct of fixed-width fields without padding, copied in and out of the
// payload bytes with memcpy (FrameMessage::payload_as / set_payload), so the payload is
// never read through a pointer of the wrong type. Bytes a kind does not use are zero on the
// wire, and the receive-side envelope check (check_frame_message) refuses anything else.
//
// Times are CLOCK_MONOTONIC nanoseconds (clock_gettime(2)): both peers run on one machine,
// and that is the clock timerfd, poll timeouts, EGL/Vulkan present timing and Wayland's
// wp_presentation (with CLOCK_MONOTONIC) use.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace texshare {

// hello: the first message each way (protocol.hpp, "Hello"). major and minor sit at the
// payload's start in every version, so that any two versions can name each other's.
struct Hello {
    std::uint16_t major = 0;
    std::uint16_t minor = 0;
    std::uint32_t role = 0;      // HelloRole: who says it (a producer talking to a producer is refused)
    std::uint64_t features = 0;  // hello_feature_* bits this side offers; the session uses the intersection
};

// What a side asks for or offers beyond the base protocol; a feature is used only when
// both sides' hellos carry it (the intersection). Present metadata is part of protocol 2
// itself: no bit.
// Pacing: a producer asks to be paced, a consumer offers to send begin_frame.
inline constexpr std::uint64_t hello_feature_pacing = 1U << 0;
// Presentation feedback: a producer asks for it, a consumer offers presented / discarded.
inline constexpr std::uint64_t hello_feature_feedback = 1U << 1;
inline constexpr std::uint64_t known_hello_features = hello_feature_pacing | hello_feature_feedback;

enum class HelloRole : std::uint32_t {
    producer = 1,  // FrameSender
    consumer = 2,  // FrameReceiver
};

// begin_frame (consumer -> producer): "draw the frame for this vsync". Chromium's
// BeginFrameArgs (sequence, frame_time/deadline, interval) and Wayland's wl_surface.frame
// carry the same facts.
struct BeginFrame {
    std::uint64_t sequence = 0;        // 1, 2, ...: increases by at least 1 per begin_frame of a session
    std::int64_t target_time_ns = 0;   // when the frame is meant to reach the screen (CLOCK_MONOTONIC)
    std::uint64_t interval_ns = 0;     // the refresh interval; 0 when unknown
};

// A damaged rectangle in buffer coordinates (pixels of the image as shared: x to the right,
// y down from the first row in memory), like wl_surface.damage_buffer.
struct DamageRect {
    std::uint32_t x = 0;
    std::uint32_t y = 0;
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    friend constexpr bool operator==(const DamageRect&, const DamageRect&) = default;
};

// More rectangles than this collapse into their bounding box (set_damage, present_metadata.hpp):
// PipeWire's SPA_META_VideoDamage and compositors do the same when a region grows complex.
inline constexpr std::size_t max_damage_rects = 8;

// present: what the producer says about the frame beside the image and its fence.
struct PresentMetadata {
    std::uint64_t begin_frame_sequence = 0;  // the begin_frame it answers; 0: none (free running)
    std::int64_t content_time_ns = 0;        // when the content is meant to be seen (video PTS); 0: none
    std::uint32_t flags = 0;                 // present_flag_* bits
    std::uint32_t damage_count = 0;          // 0: the whole image changed; 1..8: damage[0..count)
    std::array<DamageRect, max_damage_rects> damage{};  // entries from damage_count on are zero
};

// The first word of a PresentMetadata alone: a present that says nothing but the
// begin_frame it answers sends this (the rest of the payload zero, which reads back as a
// PresentMetadata with no damage, content time or flags).
struct BeginFrameAnswer {
    std::uint64_t begin_frame_sequence = 0;
};
static_assert(offsetof(PresentMetadata, begin_frame_sequence) == 0, "BeginFrameAnswer is its prefix");

// PresentMetadata::flags. Every pixel's alpha is 1 (or to be ignored): the host may draw
// the image without blending.
inline constexpr std::uint32_t present_flag_opaque = 1U << 0;
inline constexpr std::uint32_t known_present_flags = present_flag_opaque;

// presented and discarded (consumer -> producer): what became of one present. The message's
// image_id and frame_number name the present; exactly one of the two answers each present.
struct PresentationFeedback {
    std::int64_t time_ns = 0;                // presented: when it reached the screen (CLOCK_MONOTONIC); discarded: 0
    std::uint64_t begin_frame_sequence = 0;  // the present's begin_frame_sequence, echoed
    std::uint32_t flags = 0;                 // presented: presented_flag_* bits; discarded: 0
    std::uint32_t reserved = 0;              // must be zero
};

// PresentationFeedback::flags of presented: how the host showed the image.
inline constexpr std::uint32_t presented_flag_zero_copy = 1U << 0;  // scanned out or sampled the shared image itself
inline constexpr std::uint32_t presented_flag_copied = 1U << 1;     // copied it first (e.g. into its own swapchain)
inline constexpr std::uint32_t known_presented_flags = presented_flag_zero_copy | presented_flag_copied;

static_assert(std::has_unique_object_representations_v<Hello> &&
                  std::has_unique_object_representations_v<BeginFrame> &&
                  std::has_unique_object_representations_v<DamageRect> &&
                  std::has_unique_object_representations_v<PresentMetadata> &&
                  std::has_unique_object_representations_v<PresentationFeedback>,
              "payloads go on the wire as they are: no padding");
static_assert(std::is_trivially_copyable_v<PresentMetadata> && sizeof(PresentMetadata) == 152);

}  // namespace texshare
