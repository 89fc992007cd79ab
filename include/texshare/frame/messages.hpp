// The per-frame protocol's messages: what FrameSender and FrameReceiver say to each other.
//
// Use frame/protocol.hpp for the endpoints; this header is the wire format and its one
// receive-side check, for tests and for anyone writing a compatible peer. Every message is
// one FrameMessage on one AuxChannel frame (one sendmsg, one recvmsg), with fds in fixed
// slots: the image's planes in slots 0..3 (add_image only) and a fence in slot 4
// (present: acquire fence; release: release fence), whose kind (fence_kind.hpp) the
// message names in fence_kind: a fence fd without a kind, a kind without its fd, an
// unknown kind, or a kind on a message that carries no fence is refused here. Which kinds may carry which fds is
// fixed per kind, and check_frame_message() refuses anything else before the endpoint
// looks at the message, so a misbehaving peer cannot smuggle fds through a kind that would
// silently drop them.
//
//   producer -> consumer: add_image (descriptor + plane fds), present (+ acquire fence),
//                         retire, bye
//   consumer -> producer: release (+ release fence), retired, bye, capabilities (+ table)
//   either way:           add_image, retire and retired for images the sender added;
//                         refused for an image of the other side it did not take (its
//                         fds did not arrive, or the other side is at its quota)
#pragma once

#include "texshare/detail/require_cxx20.hpp"

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
};

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
    }
    return "unknown";
}

inline constexpr std::size_t frame_fence_slot = max_planes;  // slot 4
inline constexpr std::size_t frame_fd_slots = max_planes + 1;

// Every byte is a named field. descriptor is meaningful for add_image only and all zero
// otherwise; frame_number for present only; fence_kind for present and release only (the
// kind of the fd in the fence slot, FenceKind::none when it is empty).
struct FrameMessage {
    std::uint32_t kind = 0;           // FrameKind
    std::uint8_t fence_kind = 0;      // FenceKind
    std::uint8_t reserved_byte = 0;   // must be zero
    std::uint16_t reserved = 0;       // must be zero
    std::uint64_t image_id = 0;
    std::uint64_t frame_number = 0;
    ImageDescriptor descriptor = zero_descriptor();

    static constexpr ImageDescriptor zero_descriptor() noexcept {
        ImageDescriptor d;
        d.magic = 0;
        d.version = 0;
        return d;
    }
};
static_assert(std::has_unique_object_representations_v<FrameMessage>, "no padding on the wire");
static_assert(offsetof(FrameMessage, image_id) == 8, "fence_kind and the reserved fields fill the old reserved u32");

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
// Unrolled by hand (a fold): it runs per frame, and -O2 does not unroll loops.
template <typename T, std::size_t... Word>
bool any_bits_set(const T& value, std::index_sequence<Word...>) noexcept {
    const auto* bytes = reinterpret_cast<const unsigned char*>(&value);
    const auto word = [bytes](std::size_t at) {
        std::uint64_t w = 0;
        std::memcpy(&w, bytes + at * sizeof w, sizeof w);
        return w;
    };
    return (word(Word) | ...) != 0;
}
template <std::size_t... Slot>
unsigned valid_slots(const std::array<UniqueFd, frame_fd_slots>& fds, std::index_sequence<Slot...>) noexcept {
    return ((fds[Slot].valid() ? 1U << Slot : 0U) | ...);
}

// The slots each kind may carry fds in (bit i: slot i), 5 bits per kind packed into one
// constant (an immediate in the code: no table to read from memory per frame).
inline constexpr std::uint64_t frame_allowed_slots_packed =
    (std::uint64_t{(1U << max_planes) - 1} << (5 * 1)) |  // add_image: the planes
    (std::uint64_t{1U << frame_fence_slot} << (5 * 2)) |  // present: acquire fence
    (std::uint64_t{1U << frame_fence_slot} << (5 * 3)) |  // release: release fence
    (std::uint64_t{1U} << (5 * 7));                       // capabilities: the format table
static_assert(frame_fd_slots <= 5);
constexpr unsigned frame_allowed_slots(std::uint32_t kind) noexcept {  // kind <= 8
    return static_cast<unsigned>(frame_allowed_slots_packed >> (5 * kind)) & 0x1fU;
}

// The whole envelope in a few branches (the per-frame path): true when check_frame_message
// would accept the message. frame_envelope_error() says what is wrong when it is false.
[[gnu::always_inline]] inline bool frame_envelope_ok(const FrameMessage& m, unsigned filled_slots) noexcept {
    const std::uint32_t kind = m.kind;
    if (kind - 1 >= static_cast<std::uint32_t>(FrameKind::refused) || (m.reserved | m.reserved_byte) != 0) return false;
    if ((filled_slots & ~frame_allowed_slots(kind)) != 0) return false;
    // A fence kind exactly when the fence slot holds an fd (and only a known kind): since
    // only present and release may fill that slot, this also keeps a kind off every other
    // message. No separate branch per fence kind on the way.
    const std::uint8_t fence = m.fence_kind;
    if (fence > static_cast<std::uint8_t>(last_fence_kind) ||
        fence_kind_carries_fd(fence) != (((filled_slots >> frame_fence_slot) & 1U) != 0)) {
        return false;
    }
    if (kind != static_cast<std::uint32_t>(FrameKind::present) && m.frame_number != 0) return false;
    if (kind == static_cast<std::uint32_t>(FrameKind::add_image)) return m.descriptor.image_id == m.image_id;
    // OR of its 8-byte words (one pass, no zero copy to compare with).
    static_assert(sizeof(ImageDescriptor) % sizeof(std::uint64_t) == 0);
    return !any_bits_set(m.descriptor, std::make_index_sequence<sizeof(ImageDescriptor) / 8>());
}

// Names the first check a message fails, in check_frame_message()'s order. Out of line and
// cold: only a broken or hostile peer gets here.
[[gnu::cold]] [[gnu::noinline]] inline Error frame_envelope_error(const FrameMessage& m, unsigned filled_slots) {
    if (m.kind < static_cast<std::uint32_t>(FrameKind::add_image) ||
        m.kind > static_cast<std::uint32_t>(FrameKind::refused)) {
        return make_error(Errc::protocol, "frame message of unknown kind {} (image {})", m.kind, m.image_id);
    }
    const auto kind = static_cast<FrameKind>(m.kind);
    if (m.reserved != 0 || m.reserved_byte != 0) {
        return make_error(Errc::protocol, "{} of image {}: reserved field is {}, not 0", to_string(kind),
                          m.image_id, m.reserved != 0 ? m.reserved : m.reserved_byte);
    }
    if (m.fence_kind != 0 && kind != FrameKind::present && kind != FrameKind::release) {
        return make_error(Errc::protocol, "{} of image {}: fence kind {} on a message that carries no fence",
                          to_string(kind), m.image_id, m.fence_kind);
    }
    if (m.fence_kind > static_cast<std::uint8_t>(last_fence_kind)) {
        return make_error(Errc::protocol, "{} of image {}: unknown fence kind {} (this side knows 0..{})",
                          to_string(kind), m.image_id, m.fence_kind, static_cast<unsigned>(last_fence_kind));
    }
    if (kind != FrameKind::present && m.frame_number != 0) {
        return make_error(Errc::protocol, "{} of image {}: frame number {} where none belongs",
                          to_string(kind), m.image_id, m.frame_number);
    }
    if (kind != FrameKind::add_image) {
        if (any_bits_set(m.descriptor, std::make_index_sequence<sizeof(ImageDescriptor) / 8>())) {
            return make_error(Errc::protocol, "{} of image {}: descriptor bytes are not zero",
                              to_string(kind), m.image_id);
        }
    } else if (m.descriptor.image_id != m.image_id) {
        return make_error(Errc::protocol, "add_image of image {}: its descriptor names image {}", m.image_id,
                          m.descriptor.image_id);
    }
    if (const unsigned forbidden = filled_slots & ~frame_allowed_slots(m.kind); forbidden != 0) {
        return make_error(Errc::protocol, "{} of image {}: carries an fd in slot {}, which it may not use",
                          to_string(kind), m.image_id, std::countr_zero(forbidden));
    }
    const auto fence = static_cast<FenceKind>(m.fence_kind);
    if (fence_kind_carries_fd(m.fence_kind)) {
        return make_error(Errc::protocol, "{} of image {}: fence kind {} without a fence fd (slot {} is empty)",
                          to_string(kind), m.image_id, to_string(fence), frame_fence_slot);
    }
    return make_error(Errc::protocol, "{} of image {}: a fence fd in slot {} without a fence kind", to_string(kind),
                      m.image_id, frame_fence_slot);
}
}  // namespace detail

// Checks the envelope of a received message: known kind, reserved zero, a zero descriptor
// (and frame number) where the kind has none, fds only in the slots the kind uses, and a
// known fence kind exactly when the fence slot holds an fd (present and release only).
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
