// What the host and the renderer say to each other after the images have been shared.
//
// Images travel once, on an ImageChannel. Every frame after that is one small FrameMessage
// each way on a second channel that carries no fds: "image N holds frame F" from the
// renderer, "done with image N" from the host. The renderer only draws into images the host
// has handed back, so the host never reads an image while it is being overwritten.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "texshare/aux_channel.hpp"

namespace host_renderer {

enum class FrameKind : std::uint32_t {
    frame_ready = 1,  // renderer -> host: image_id holds frame_number, read it
    release = 2,      // host -> renderer: image_id is free to draw into again
    bye = 3,          // renderer -> host: no more frames; every image was released
};

// Every byte is a named field: AuxChannel copies the struct byte for byte.
struct FrameMessage {
    std::uint32_t kind = 0;
    std::uint32_t reserved = 0;  // zero; lets the protocol grow without changing the size
    std::uint64_t image_id = 0;
    std::uint64_t frame_number = 0;
};
static_assert(std::has_unique_object_representations_v<FrameMessage>, "no padding on the wire");

using FrameChannel = texshare::AuxChannel<FrameMessage, 0>;

constexpr FrameMessage make_message(FrameKind kind, std::uint64_t image_id, std::uint64_t frame) {
    return FrameMessage{static_cast<std::uint32_t>(kind), 0, image_id, frame};
}

// Three images: one the host reads, one the renderer draws, one ready in between.
inline constexpr std::size_t swapchain_length = 3;

// Where the renderer finds its ends of the two channels; fixed so the command line is
// predictable, and just above stdio so nothing else needs to be inherited.
inline constexpr int child_image_fd = 3;
inline constexpr int child_frame_fd = 4;

}  // namespace host_renderer
