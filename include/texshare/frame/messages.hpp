// The per-frame protocol's messages: what FrameSender and FrameReceiver say to each other.
//
// Use frame/protocol.hpp for the endpoints; this header is the wire format and its one
// receive-side check, for tests and for anyone writing a compatible peer. Every message is
// one FrameMessage on one AuxChannel frame (one sendmsg, one recvmsg): a fixed header (kind,
// fence kind, image id, frame number, fence point) and a per-kind payload (payloads.hpp:
// the descriptor of add_image, PresentMetadata of present, Hello, BeginFrame,
// PresentationFeedback), with fds in fixed slots: the image's planes in slots 0..3
// (add_image only) and a fence in slot 4 (present: acquire fence; release: release fence),
// whose kind (fence_kind.hpp) the message names in fence_kind: a fence fd without a kind, a
// kind without its fd, an unknown kind, or a kind on a message that carries no fence is
// refused here. Which kinds may carry which fds, a frame number and how many payload bytes
// is fixed per kind (frame_kind_rules), and check_frame_message() refuses anything else,
// unused payload bytes that are not zero included, before the endpoint looks at the
// message, so a misbehaving peer cannot smuggle fds or data through a kind that would
// silently drop them.
//
//   producer -> consumer: hello, add_image (descriptor + plane fds), present (+ acquire
//                         fence, metadata), retire, bye
//   consumer -> producer: hello, begin_frame, presented, discarded, release (+ release
//                         fence), retired, bye, capabilities (+ table)
//   either way:           add_image, retire and retired for images the sender added;
//                         refused for an image of the other side it did not take (its
//                         fds did not arrive, or the other side is at its quota)
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>

#include "texshare/aux_channel.hpp"
#include "texshare/frame/fence_kind.hpp"
#include "texshare/frame/payloads.hpp"
#include "texshare/image_wire.hpp"
#include "texshare/result.hpp"

namespace texshare {

enum class FrameKind : std::uint32_t {
    add_image = 1,  // share an image once: descriptor + plane fds, under image_id
    present = 2,    // show image_id as frame frame_number; optional acquire fence
    release = 3,    // the consumer no longer reads image_id; optional release fence
    retire = 4,     // drop image_id once the consumer lets go of it (resize)
    retired = 5,    // the consumer has dropped image_id
    bye = 6,        // orderly goodbye; the peer treats it like a closed channel
    capabilities = 7,  // the consumer's FormatTable (format_table.hpp) as a sealed memfd in slot 0
    // The receiver of add_image image_id did not take it: the kernel cut its plane fds
    // (MSG_CTRUNC: the receiver was at its open-file limit), or the adding side is at the
    // quota of images the receiver lets it add. The adding side keeps the image unshared
    // (present() refuses it; retire() drops it; it is shared again with the next peer);
    // presents of it that crossed are released back, not blamed.
    refused = 8,
    hello = 9,         // first message each way: protocol version, role and features (Hello)
    begin_frame = 10,  // consumer -> producer: draw for this vsync (BeginFrame)
    presented = 11,    // consumer -> producer: present frame_number reached the screen (PresentationFeedback)
    discarded = 12,    // consumer -> producer: present frame_number was replaced unshown (PresentationFeedback)
    // this side's DRM syncobj timeline, shared once per session: its fd in the fence slot,
    // fence_kind drm_syncobj_timeline, fence point 0; later presents (producer) or releases
    // (consumer) carry only points on it (fence_kind.hpp)
    timeline = 13,
};
inline constexpr FrameKind last_frame_kind = FrameKind::timeline;

constexpr std::string_view to_string(FrameKind kind) noexcept {
    switch (kind) {
        case FrameKind::add_image:
            return "add_image";
        case FrameKind::present:
            return "present";
        case FrameKind::release:
            return "release";
        case FrameKind::retire:
            return "retire";
        case FrameKind::retired:
            return "retired";
        case FrameKind::bye:
            return "bye";
        case FrameKind::capabilities:
            return "capabilities";
        case FrameKind::refused:
            return "refused";
        case FrameKind::hello:
            return "hello";
        case FrameKind::begin_frame:
            return "begin_frame";
        case FrameKind::presented:
            return "presented";
        case FrameKind::discarded:
            return "discarded";
        case FrameKind::timeline:
            return "timeline";
    }
    return "unknown";
}

inline constexpr std::size_t frame_fence_slot = max_planes;  // slot 4
inline constexpr std::size_t frame_fd_slots = max_planes + 1;

// The payload is as large as the largest thing a kind carries (the descriptor today), in
// whole 8-byte words so that the zero check reads words.
inline constexpr std::size_t frame_payload_bytes =
    (std::max({sizeof(ImageDescriptor), sizeof(PresentMetadata), sizeof(Hello), sizeof(BeginFrame),
               sizeof(PresentationFeedback)}) +
     7) / 8 * 8;

// A type that may live in a FrameMessage payload.
template <typename T>
concept FramePayload = std::is_trivially_copyable_v<T> && std::has_unique_object_representations_v<T> &&
                       sizeof(T) <= frame_payload_bytes;

// Every byte is a named field. frame_number is meaningful for present, presented and
// discarded only; fence_kind for present and release only (the kind of the fd in the fence
// slot, FenceKind::none when it is empty); fence_point only for a fence kind that has points
// (none yet: the timeline kind, issue 16). The payload holds the kind's data
// (frame_payload_size) and zeros after it.
struct FrameMessage {
    std::uint32_t kind = 0;           // FrameKind
    std::uint8_t fence_kind = 0;      // FenceKind
    std::uint8_t reserved_byte = 0;   // must be zero
    std::uint16_t reserved = 0;       // must be zero
    std::uint64_t image_id = 0;
    std::uint64_t frame_number = 0;
    std::uint64_t fence_point = 0;    // a timeline fence's point; 0 for every other fence kind
    std::array<std::byte, frame_payload_bytes> payload{};

    // The payload read as T (memcpy: no aliasing of the bytes).
    template <FramePayload T>
    T payload_as() const noexcept {
        T value;
        std::memcpy(&value, payload.data(), sizeof value);
        return value;
    }
    // Writes value at the payload's start; the bytes after it stay as they are.
    template <FramePayload T>
    void set_payload(const T& value) noexcept {
        std::memcpy(payload.data(), &value, sizeof value);
    }
    // Reads the payload as T, lets edit change it, writes it back (tests, hand-made peers).
    template <FramePayload T, typename Edit>
    void edit_payload(Edit&& edit) {
        T value = payload_as<T>();
        std::forward<Edit>(edit)(value);
        set_payload(value);
    }
    void clear_payload() noexcept { payload.fill(std::byte{0}); }

    ImageDescriptor descriptor() const noexcept { return payload_as<ImageDescriptor>(); }
    void set_descriptor(const ImageDescriptor& d) noexcept { set_payload(d); }
};
static_assert(std::has_unique_object_representations_v<FrameMessage>, "no padding on the wire");
static_assert(offsetof(FrameMessage, image_id) == 8, "fence_kind and the reserved fields fill the old reserved u32");
static_assert(offsetof(FrameMessage, payload) == 32, "a 32-byte header, then the payload");

using FrameChannel = AuxChannel<FrameMessage, frame_fd_slots>;

// How many images each endpoint tracks; fixed so the per-frame path never allocates.
inline constexpr std::size_t max_frame_images = 16;

constexpr FrameMessage make_frame_message(FrameKind kind, std::uint64_t image_id,
                                          std::uint64_t frame_number = 0) noexcept {
    FrameMessage message;
    message.kind = static_cast<std::uint32_t>(kind);
    message.image_id = image_id;
    message.frame_number = frame_number;
    return message;
}

namespace detail {
template <std::size_t... Slot>
unsigned valid_slots(const std::array<UniqueFd, frame_fd_slots>& fds, std::index_sequence<Slot...>) noexcept {
    return ((fds[Slot].valid() ? 1U << Slot : 0U) | ...);
}

// What each kind may carry, one word per kind (a 16-entry table in .rodata, one load per
// message): the fd slots it may fill (bits 0..4, bit i: slot i), whether it has a frame
// number, a fence kind, an image id, and how many 8-byte payload words it uses (bits 8..15;
// every later word must be zero).
inline constexpr std::uint32_t rule_frame_number = 1U << 5;
inline constexpr std::uint32_t rule_fence = 1U << 6;
inline constexpr std::uint32_t rule_image = 1U << 7;
inline constexpr std::size_t frame_payload_words = frame_payload_bytes / 8;
constexpr std::uint32_t payload_words(std::size_t bytes) noexcept {
    return static_cast<std::uint32_t>((bytes + 7) / 8) << 8;
}
inline constexpr std::uint32_t plane_slots = (1U << max_planes) - 1;
inline constexpr std::uint32_t fence_slot = 1U << frame_fence_slot;
inline constexpr std::array<std::uint32_t, 16> frame_kind_rules = {
    0,                                                                    // 0: no such kind
    plane_slots | rule_image | payload_words(sizeof(ImageDescriptor)),    // add_image
    fence_slot | rule_fence | rule_frame_number | rule_image |
        payload_words(sizeof(PresentMetadata)),                           // present
    fence_slot | rule_fence | rule_image,                                 // release
    rule_image,                                                           // retire
    rule_image,                                                           // retired
    rule_image,                                                           // bye
    1U | rule_image,                                                      // capabilities: the table in slot 0
    rule_image,                                                           // refused
    // hello: the endpoint reads the version first and then checks the rest itself, so that
    // a peer of another major version is told so, whatever its payload holds.
    payload_words(frame_payload_bytes),                                   // hello
    payload_words(sizeof(BeginFrame)),                                    // begin_frame
    rule_frame_number | rule_image | payload_words(sizeof(PresentationFeedback)),  // presented
    rule_frame_number | rule_image | payload_words(sizeof(PresentationFeedback)),  // discarded
    fence_slot | rule_fence,                                              // timeline: the syncobj fd
    0,
    0,
};
static_assert(frame_fd_slots <= 5 && frame_payload_words < 256);
static_assert(static_cast<std::size_t>(last_frame_kind) < frame_kind_rules.size());

// The fence kinds whose fence has a 64-bit point (FrameMessage::fence_point), bit k for kind
// k: drm_syncobj_timeline. On present and release such a kind comes with a point > 0 and no
// fd; on FrameKind::timeline with its syncobj fd and point 0.
inline constexpr unsigned fence_kinds_with_point = 1U << static_cast<unsigned>(FenceKind::drm_syncobj_timeline);
constexpr bool fence_kind_has_point(std::uint8_t kind) noexcept {
    return kind < 32 && ((fence_kinds_with_point >> kind) & 1U) != 0;
}

// Whether any payload word from `used` on is not zero. A jump into an unrolled chain of
// ORs (Duff's device): a kind checks only the words it leaves unused (a release all 21, a
// present its last 2), one load and one OR each, no compare per word. -O2 unrolls no loop.
inline bool payload_tail_set(const std::array<std::byte, frame_payload_bytes>& payload, std::uint32_t used) noexcept {
    static_assert(frame_payload_bytes / 8 == 21, "one case per payload word below");
    const auto word = [&payload](std::size_t at) {
        std::uint64_t w = 0;
        std::memcpy(&w, payload.data() + at * sizeof w, sizeof w);
        return w;
    };
    std::uint64_t acc = 0;
    switch (used) {
        case 0: acc |= word(0); [[fallthrough]];
        case 1: acc |= word(1); [[fallthrough]];
        case 2: acc |= word(2); [[fallthrough]];
        case 3: acc |= word(3); [[fallthrough]];
        case 4: acc |= word(4); [[fallthrough]];
        case 5: acc |= word(5); [[fallthrough]];
        case 6: acc |= word(6); [[fallthrough]];
        case 7: acc |= word(7); [[fallthrough]];
        case 8: acc |= word(8); [[fallthrough]];
        case 9: acc |= word(9); [[fallthrough]];
        case 10: acc |= word(10); [[fallthrough]];
        case 11: acc |= word(11); [[fallthrough]];
        case 12: acc |= word(12); [[fallthrough]];
        case 13: acc |= word(13); [[fallthrough]];
        case 14: acc |= word(14); [[fallthrough]];
        case 15: acc |= word(15); [[fallthrough]];
        case 16: acc |= word(16); [[fallthrough]];
        case 17: acc |= word(17); [[fallthrough]];
        case 18: acc |= word(18); [[fallthrough]];
        case 19: acc |= word(19); [[fallthrough]];
        case 20: acc |= word(20); [[fallthrough]];
        default:
            break;
    }
    return acc != 0;
}
inline bool payload_tail_set(const FrameMessage& m, std::uint32_t used_words) noexcept {
    return payload_tail_set(m.payload, used_words);
}
inline std::uint64_t descriptor_image_id(const FrameMessage& m) noexcept {
    std::uint64_t id = 0;
    std::memcpy(&id, m.payload.data() + offsetof(ImageDescriptor, image_id), sizeof id);
    return id;
}

// The whole envelope in a few branches (the per-frame path): true when check_frame_message
// would accept the message. frame_envelope_error() says what is wrong when it is false.
[[gnu::always_inline]] inline bool frame_envelope_ok(const FrameMessage& m, unsigned filled_slots) noexcept {
    const std::uint32_t kind = m.kind;
    if (kind - 1 >= static_cast<std::uint32_t>(last_frame_kind) || (m.reserved | m.reserved_byte) != 0) return false;
    const std::uint32_t rule = frame_kind_rules[kind];
    if ((filled_slots & ~rule & 0x1fU) != 0) return false;
    // A fence kind exactly when the fence slot holds an fd (and only a known kind, only on
    // a kind that carries fences). No separate branch per fence kind on the way.
    const std::uint8_t fence = m.fence_kind;
    // timeline: the syncobj's fd travels in the fence slot, so the fd goes with that message
    // kind rather than with the fence kind, and its point is 0.
    const bool timeline = kind == static_cast<std::uint32_t>(FrameKind::timeline);
    if (fence > static_cast<std::uint8_t>(last_fence_kind) || (fence != 0 && (rule & rule_fence) == 0) ||
        (fence_kind_carries_fd(fence) || timeline) != (((filled_slots >> frame_fence_slot) & 1U) != 0)) {
        return false;
    }
    // A point exactly with a kind that has points (none on the timeline message itself).
    if ((m.frame_number != 0 && (rule & rule_frame_number) == 0) ||
        (m.image_id != 0 && (rule & rule_image) == 0) ||
        (m.fence_point != 0) != (fence_kind_has_point(fence) && !timeline)) {
        return false;
    }
    if (timeline && fence != static_cast<std::uint8_t>(FenceKind::drm_syncobj_timeline)) [[unlikely]]
        return false;
    if (kind == static_cast<std::uint32_t>(FrameKind::add_image) && descriptor_image_id(m) != m.image_id) return false;
    return !payload_tail_set(m, rule >> 8);
}

// Names the first check a message fails, in check_frame_message()'s order. Out of line and
// cold: only a broken or hostile peer gets here.
[[gnu::cold]] [[gnu::noinline]] inline Error frame_envelope_error(const FrameMessage& m, unsigned filled_slots) {
    if (m.kind < static_cast<std::uint32_t>(FrameKind::add_image) ||
        m.kind > static_cast<std::uint32_t>(last_frame_kind)) {
        return make_error(Errc::protocol, "frame message of unknown kind {} (image {}; this side knows 1..{})",
                          m.kind, m.image_id, static_cast<std::uint32_t>(last_frame_kind));
    }
    const auto kind = static_cast<FrameKind>(m.kind);
    const std::uint32_t rule = frame_kind_rules[m.kind];
    if (m.reserved != 0 || m.reserved_byte != 0) {
        return make_error(Errc::protocol, "{} of image {}: reserved field is {}, not 0", to_string(kind),
                          m.image_id, m.reserved != 0 ? m.reserved : m.reserved_byte);
    }
    if (m.fence_kind != 0 && (rule & rule_fence) == 0) {
        return make_error(Errc::protocol, "{} of image {}: fence kind {} on a message that carries no fence",
                          to_string(kind), m.image_id, m.fence_kind);
    }
    if (m.fence_kind > static_cast<std::uint8_t>(last_fence_kind)) {
        return make_error(Errc::protocol, "{} of image {}: unknown fence kind {} (this side knows 0..{})",
                          to_string(kind), m.image_id, m.fence_kind, static_cast<unsigned>(last_fence_kind));
    }
    if (m.frame_number != 0 && (rule & rule_frame_number) == 0) {
        return make_error(Errc::protocol, "{} of image {}: frame number {} where none belongs",
                          to_string(kind), m.image_id, m.frame_number);
    }
    if (m.image_id != 0 && (rule & rule_image) == 0) {
        return make_error(Errc::protocol, "{}: image id {} where none belongs", to_string(kind), m.image_id);
    }
    if (kind == FrameKind::timeline) {
        if (m.fence_kind != static_cast<std::uint8_t>(FenceKind::drm_syncobj_timeline)) {
            return make_error(Errc::protocol, "timeline with fence kind {}, not drm_syncobj_timeline",
                              to_string(static_cast<FenceKind>(m.fence_kind)));
        }
        if (m.fence_point != 0) {
            return make_error(Errc::protocol, "timeline with fence point {}: the syncobj is shared without one",
                              m.fence_point);
        }
    } else if (m.fence_point != 0 && !fence_kind_has_point(m.fence_kind)) {
        return make_error(Errc::protocol, "{} of image {}: fence point {} with fence kind {}, which has no points",
                          to_string(kind), m.image_id, m.fence_point, to_string(static_cast<FenceKind>(m.fence_kind)));
    } else if (m.fence_point == 0 && fence_kind_has_point(m.fence_kind)) {
        return make_error(Errc::protocol, "{} of image {}: fence kind {} without a point (fence point 0)",
                          to_string(kind), m.image_id, to_string(static_cast<FenceKind>(m.fence_kind)));
    }
    if (kind == FrameKind::add_image && descriptor_image_id(m) != m.image_id) {
        return make_error(Errc::protocol, "add_image of image {}: its descriptor names image {}", m.image_id,
                          descriptor_image_id(m));
    }
    if (payload_tail_set(m, rule >> 8)) {
        std::size_t at = (rule >> 8) * 8;
        while (m.payload[at] == std::byte{0}) ++at;
        return make_error(Errc::protocol, "{} of image {}: payload byte {} is {}, not 0 ({} uses bytes 0..{})",
                          to_string(kind), m.image_id, at, std::to_integer<unsigned>(m.payload[at]), to_string(kind),
                          (rule >> 8) * 8);
    }
    if (const unsigned forbidden = filled_slots & ~rule & 0x1fU; forbidden != 0) {
        return make_error(Errc::protocol, "{} of image {}: carries an fd in slot {}, which it may not use",
                          to_string(kind), m.image_id, std::countr_zero(forbidden));
    }
    const auto fence = static_cast<FenceKind>(m.fence_kind);
    if (kind == FrameKind::timeline) {
        return make_error(Errc::protocol, "timeline without the syncobj fd (slot {} is empty)", frame_fence_slot);
    }
    if (fence_kind_has_point(m.fence_kind)) {
        return make_error(Errc::protocol, "{} of image {}: an fd in slot {} with fence kind {}, which carries a point, "
                          "not an fd", to_string(kind), m.image_id, frame_fence_slot, to_string(fence));
    }
    if (fence_kind_carries_fd(m.fence_kind)) {
        return make_error(Errc::protocol, "{} of image {}: fence kind {} without a fence fd (slot {} is empty)",
                          to_string(kind), m.image_id, to_string(fence), frame_fence_slot);
    }
    return make_error(Errc::protocol, "{} of image {}: a fence fd in slot {} without a fence kind", to_string(kind),
                      m.image_id, frame_fence_slot);
}
}  // namespace detail

// Checks the envelope of a received message: known kind, reserved zero, no frame number,
// image id or fence point where the kind has none, the add_image descriptor naming the
// message's image, zero payload bytes after what the kind uses, fds only in the slots the
// kind uses, and a known fence kind exactly when the fence slot holds an fd (present and
// release only).
// Which fence kinds an endpoint accepts, and what the fd is, the endpoint checks.
// filled_slots: bit i set when slot i holds an fd (FrameChannel::Received::filled_slots()
// gives it for a received message, from the slot mask AuxChannel already matched against the
// fds that came). The endpoints then check the ids against their own state.
inline Result<FrameKind> check_frame_message(const FrameMessage& m, unsigned filled_slots) {
    if (detail::frame_envelope_ok(m, filled_slots)) [[likely]] return static_cast<FrameKind>(m.kind);
    return detail::frame_envelope_error(m, filled_slots);
}

// The same, with the slots read off the fds themselves.
inline Result<FrameKind> check_frame_message(const FrameMessage& m,
                                             const std::array<UniqueFd, frame_fd_slots>& fds) {
    return check_frame_message(m, detail::valid_slots(fds, std::make_index_sequence<frame_fd_slots>()));
}

}  // namespace texshare
