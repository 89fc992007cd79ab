// The frame protocol's version and the hello that opens each session.
//
// Use it to know which protocol this build speaks (frame_protocol_major/minor) or to write
// a compatible peer; FrameSender and FrameReceiver send and check the hello themselves.
// Each side's first message is its hello (Hello, payloads.hpp): major and minor version,
// its role and the features it offers. A peer of another major version is refused with
// Errc::protocol naming both versions, before anything else it sent is looked at; another
// minor version of the same major is fine (a newer minor only adds features, which are used
// when both offer them). The descriptor (image_wire.hpp) and the format table keep versions
// of their own.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <string_view>

#include "texshare/frame/messages.hpp"

namespace texshare {

// 1: the protocol before the hello (no version on the wire; a smaller FrameMessage).
// 2.0: hello, begin_frame, presented/discarded, present metadata, fence points.
inline constexpr std::uint16_t frame_protocol_major = 2;
inline constexpr std::uint16_t frame_protocol_minor = 0;

constexpr std::string_view to_string(HelloRole role) noexcept {
    switch (role) {
        case HelloRole::producer:
            return "producer";
        case HelloRole::consumer:
            return "consumer";
    }
    return "unknown";
}

inline FrameMessage make_hello_message(HelloRole role, std::uint64_t features) noexcept {
    FrameMessage message = make_frame_message(FrameKind::hello, 0);
    Hello hello;
    hello.major = frame_protocol_major;
    hello.minor = frame_protocol_minor;
    hello.role = static_cast<std::uint32_t>(role);
    hello.features = features;
    message.set_payload(hello);
    return message;
}

// The peer's hello (a message check_frame_message() accepted as FrameKind::hello), checked
// in this order: its major version (Errc::protocol naming both versions), that it comes
// from `expected` (a producer talking to a producer is Errc::protocol), and that the payload
// after Hello is zero (what a later minor would add goes in feature bits, not in bytes
// this version cannot read). Returns the features both sides offer: the intersection of
// the peer's and `offered`. Feature bits this version does not know are ignored.
inline Result<std::uint64_t> check_hello(const FrameMessage& m, HelloRole expected, std::uint64_t offered) {
    const Hello hello = m.payload_as<Hello>();
    if (hello.major != frame_protocol_major) {
        return make_error(Errc::protocol,
                          "the {} speaks frame protocol {}.{}, this side {}.{}: another major version; nothing it "
                          "sends is used",
                          to_string(expected), hello.major, hello.minor, frame_protocol_major, frame_protocol_minor);
    }
    if (hello.role != static_cast<std::uint32_t>(expected)) {
        return make_error(Errc::protocol, "hello from the {}'s end says role {} ({}), not {}", to_string(expected),
                          hello.role, to_string(static_cast<HelloRole>(hello.role)), to_string(expected));
    }
    for (std::size_t at = sizeof(Hello); at < frame_payload_bytes; ++at) {
        if (m.payload[at] != std::byte{0}) {
            return make_error(Errc::protocol, "hello from the {}: payload byte {} is {}, not 0 (hello {}.{} uses bytes 0..{})",
                              to_string(expected), at, std::to_integer<unsigned>(m.payload[at]), hello.major,
                              hello.minor, sizeof(Hello));
        }
    }
    return hello.features & offered & known_hello_features;
}

}  // namespace texshare
