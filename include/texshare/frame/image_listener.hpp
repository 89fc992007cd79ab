// FrameImageListener: hears of every image a FrameSender or FrameReceiver tracks.
//
// Use it to keep something per image in step with an endpoint, e.g. the EGL import cache
// (texshare::egl::ImportListener): it hears of every image from the moment it enters the
// endpoint's table (added there or by the peer) until it leaves, so GL textures are created
// once per image, never per frame. Set it with set_listener() on the endpoint.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>

#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"

namespace texshare {

// Where the images each side adds get their ids, so the two never collide: the producer's
// ids have the top bit clear, the consumer's have it set. retained_image_id is never on the wire.
inline constexpr std::uint64_t consumer_image_id_bit = std::uint64_t{1} << 63;
inline constexpr std::uint64_t retained_image_id = ~std::uint64_t{0};

class FrameImageListener {
public:
    virtual ~FrameImageListener() = default;
    // An image entered the table. An error refuses it: add_image() then fails with nothing
    // sent, or, for a peer's image, dispatch() fails with Errc::rejected.
    virtual Result<void> image_added(std::uint64_t id, const DmaBufImage& image, bool added_by_peer) = 0;
    virtual void image_removed(std::uint64_t id) noexcept = 0;
    // A dead producer's last frame was kept under retained_image_id (FrameReceiver).
    virtual void image_renamed(std::uint64_t from, std::uint64_t to) noexcept = 0;
};

}  // namespace texshare
