// Renderer mode: the child the host spawns. It owns a small swapchain of images (GBM
// DMA-BUFs or memfds, see allocation.hpp), shares each with the host once, then draws
// frames into whichever image the host has handed back, announcing each by image id.
#include "modes.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>

#include <fmt/format.h>

#include "allocation.hpp"
#include "pattern.hpp"
#include "process.hpp"
#include "protocol.hpp"
#include "texshare/image_wire.hpp"

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;

struct RendererStats {
    std::string images;  // Allocation::description
    std::size_t fds_sent = 0;
    std::uint64_t frames = 0;
    std::uint64_t waits = 0;  // times every image was with the host and we had to wait
};

// Numbers from the command line become owners only once they are known to be open:
// an AuxChannel that refuses an fd closes it, and closing a number that was never open
// would trip texshare's double-close check.
template <typename Channel>
Result<Channel> adopt_inherited(int fd, std::string_view what) {
    if (!texshare::is_open(texshare::BorrowedFd(fd))) {
        return make_error(Errc::invalid_argument, "{} fd {} is not open; was this started by the host?", what,
                          fd);
    }
    return Channel::adopt(texshare::UniqueFd(fd));
}

class Swapchain {
public:
    using Images = SwapchainImages;

    explicit Swapchain(Images images) : images_(std::move(images)) {
        for (std::uint64_t id = first_id; id < first_id + swapchain_length; ++id) free_.push_back(id);
    }

    static constexpr std::uint64_t first_id = 1;
    const texshare::DmaBufImage& image(std::uint64_t id) const { return images_[id - first_id]; }
    bool has_free() const noexcept { return !free_.empty(); }
    bool all_free() const noexcept { return free_.size() == swapchain_length; }

    // Oldest released first, so all images take turns.
    std::uint64_t acquire() {
        const std::uint64_t id = free_.front();
        free_.pop_front();
        return id;
    }

    // Blocks for one "done with image N" from the host and checks it names an image the
    // host actually holds: releasing a free image twice would let two frames share it.
    Result<void> wait_for_release(FrameChannel& channel) {
        auto received = channel.receive();
        if (!received) return std::move(received).error();
        const FrameMessage& message = received->message;
        if (message.kind != static_cast<std::uint32_t>(FrameKind::release) || message.reserved != 0) {
            return make_error(Errc::protocol, "expected a release, got kind {} (reserved {})", message.kind,
                              message.reserved);
        }
        if (message.image_id < first_id || message.image_id >= first_id + swapchain_length ||
            std::ranges::find(free_, message.image_id) != free_.end()) {
            return make_error(Errc::protocol, "host released image {}, which it does not hold",
                              message.image_id);
        }
        free_.push_back(message.image_id);
        return {};
    }

private:
    Images images_;
    std::deque<std::uint64_t> free_;
};

Result<Swapchain> share_swapchain(texshare::ImageChannel& image_channel, FrameChannel& frame_channel,
                                  const Options& options, RendererStats& stats) {
    auto allocation = allocate_swapchain(options);
    if (!allocation) return std::move(allocation).error();
    stats.images = std::move(allocation->description);
    for (std::size_t i = 0; i < swapchain_length; ++i) {
        const texshare::DmaBufImage& image = allocation->images[i];
        const std::uint64_t id = Swapchain::first_id + i;
        if (auto sent = texshare::send_image(image_channel, id, image); !sent) return std::move(sent).error();
        for (const texshare::BorrowedFd fd : image.plane_fds()) stats.fds_sent += fd.valid() ? 1 : 0;
    }
    FrameMessage source = make_message(FrameKind::source, 0, 0);
    source.device = allocation->device;
    if (auto sent = frame_channel.send(source); !sent) return std::move(sent).error();
    return Swapchain(std::move(allocation->images));
}

Result<void> render_frames(FrameChannel& channel, Swapchain& swapchain, const Options& options,
                           RendererStats& stats) {
    for (std::uint64_t frame = 0; frame < options.frames; ++frame) {
        if (!swapchain.has_free()) ++stats.waits;
        while (!swapchain.has_free()) {
            if (auto released = swapchain.wait_for_release(channel); !released) return released;
        }
        const std::uint64_t id = swapchain.acquire();
        const texshare::DmaBufImage& image = swapchain.image(id);
        const auto order = byte_order(image.fourcc());
        if (!order) {
            return make_error(Errc::unsupported, "image {}: cannot draw {}", id,
                              texshare::format_name(image.fourcc()));
        }
        // For a DMA-BUF, map() brackets the writes with DMA_BUF_IOCTL_SYNC start/end.
        auto mapping = image.map(texshare::Access::write);
        if (!mapping) return std::move(mapping).error();
        const Pattern pattern(frame, options.width, options.height);
        if (!pattern.fits(mapping->plane(0).size(), mapping->stride(0))) {
            return make_error(Errc::invalid_layout,
                              "image {}: plane 0 ({} bytes, stride {}) cannot hold {}x{}", id,
                              mapping->plane(0).size(), mapping->stride(0), options.width, options.height);
        }
        pattern.render(mapping->plane(0), mapping->stride(0), *order);
        // Finish before announcing: for a DMA-BUF this is the SYNC_END that publishes the writes.
        if (auto finished = mapping->finish(); !finished) return finished;
        if (auto sent = channel.send(make_message(FrameKind::frame_ready, id, frame)); !sent) return sent;
        ++stats.frames;
    }
    // Wait for every image back, so the host never sends a release to a renderer that is gone.
    while (!swapchain.all_free()) {
        if (auto released = swapchain.wait_for_release(channel); !released) return released;
    }
    return channel.send(make_message(FrameKind::bye, 0, stats.frames));
}

Result<RendererStats> run(texshare::ImageChannel& image_channel, FrameChannel& frame_channel,
                          const Options& options) {
    RendererStats stats;
    auto swapchain = share_swapchain(image_channel, frame_channel, options, stats);
    if (!swapchain) return std::move(swapchain).error();
    image_channel.close();  // images are shared once; from here on only ids travel
    if (auto rendered = render_frames(frame_channel, *swapchain, options, stats); !rendered) {
        return std::move(rendered).error();
    }
    return stats;
}

}  // namespace

int run_renderer(const Options& options) {
    // Anything beyond stdio and our two channels was leaked to us by the host's spawn.
    std::string unexpected;
    if (auto fds = list_open_fds(); fds) {
        for (const int fd : *fds) {
            if (fd > 2 && fd != options.image_fd && fd != options.frame_fd)
                unexpected += fmt::format(" {}", fd);
        }
    }
    // An fd that is not one of our channels is a bad argument (exit 2), like any other.
    auto image_channel = adopt_inherited<texshare::ImageChannel>(options.image_fd, "--image-fd");
    auto frame_channel = adopt_inherited<FrameChannel>(options.frame_fd, "--frame-fd");
    if (!image_channel || !frame_channel) {
        fmt::print(stderr, "host_renderer (renderer): {}\n",
                   image_channel ? frame_channel.error() : image_channel.error());
        return 2;
    }
    auto stats = run(*image_channel, *frame_channel, options);
    if (!stats) {
        fmt::print(stderr, "host_renderer (renderer): {}\n", stats.error());
        return 1;
    }
    fmt::print(stderr,
               "host_renderer (renderer): shared {}; {} fds sent, {} frames rendered, "
               "waited for a release {} times, inherited fds beyond stdio and the channels:{}\n",
               stats->images, stats->fds_sent, stats->frames, stats->waits,
               unexpected.empty() ? " none" : unexpected);
    return unexpected.empty() ? 0 : 1;
}

}  // namespace host_renderer
