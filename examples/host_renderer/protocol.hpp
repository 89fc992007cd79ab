// What the host and the renderer say to each other after the images have been shared.
//
// Images travel once, on an ImageChannel. Then the renderer says once where they came from
// (a `source` message: which DRM device, if any, allocated them), and every frame after
// that is one small FrameMessage each way on a second channel that carries no fds: "image N
// holds frame F" from the renderer, "done with image N" from the host. The renderer only
// draws into images the host has handed back, so the host never reads an image while it is
// being overwritten.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "texshare/aux_channel.hpp"
#include "texshare/dma_buf_image.hpp"

namespace host_renderer {

enum class FrameKind : std::uint32_t {
    frame_ready = 1,  // renderer -> host: image_id holds frame_number, read it
    release = 2,      // host -> renderer: image_id is free to draw into again
    bye = 3,          // renderer -> host: no more frames; every image was released
    source = 4,       // renderer -> host, once before frame 0: `device` allocated the images
};

// Every byte is a named field: AuxChannel copies the struct byte for byte.
struct FrameMessage {
    std::uint32_t kind = 0;
    std::uint32_t reserved = 0;  // zero; lets the protocol grow without changing the size
    std::uint64_t image_id = 0;
    std::uint64_t frame_number = 0;
    // In `source` only (zero elsewhere): the st_rdev of the DRM node whose GBM allocated the
    // images, or 0 for memfd images. A device number rather than a path or driver name, as in
    // Wayland's linux-dmabuf feedback: it fits a fixed-size message, and the host looks the
    // node up itself and can open the same device to import the images.
    std::uint64_t device = 0;
};
static_assert(std::has_unique_object_representations_v<FrameMessage>, "no padding on the wire");

using FrameChannel = texshare::AuxChannel<FrameMessage, 0>;

constexpr FrameMessage make_message(FrameKind kind, std::uint64_t image_id, std::uint64_t frame) {
    return FrameMessage{static_cast<std::uint32_t>(kind), 0, image_id, frame, 0};
}

// Three images: one the host reads, one the renderer draws, one ready in between.
inline constexpr std::size_t swapchain_length = 3;
// Image ids on the wire are 1..swapchain_length; slot i holds id i + 1.
using SwapchainImages = std::array<texshare::DmaBufImage, swapchain_length>;

// Where the renderer finds its ends of the two channels; fixed so the command line is
// predictable, and just above stdio so nothing else needs to be inherited.
inline constexpr int child_image_fd = 3;
inline constexpr int child_frame_fd = 4;

}  // namespace host_renderer
