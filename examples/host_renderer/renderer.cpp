// Renderer mode: the child the host spawns with texshare::ChildProcess. It allocates
// nothing: the host shares its swapchain on the FrameChannel (fd 3), and the renderer is
// that channel's FrameSender. Each frame it takes the free image the host released longest
// ago, draws the picture at that image's size (so a resize needs nothing from it) and
// presents it. The host retires and adds images as it likes; dispatch() keeps up.
#include "modes.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>

#include "open_fds.hpp"
#include "pattern.hpp"
#include "tally.hpp"
#include "texshare/child_process.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/sync_file.hpp"

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;
using namespace std::chrono_literals;

// A helper process (a crash reporter, say) that this renderer forks: it holds every fd the
// renderer has, its channel end included, until `seconds` after the renderer is gone. Its
// output goes nowhere, so nobody waits on it but the channel.
void fork_helper(std::uint64_t seconds) {
    if (seconds == 0) return;
    if (::fork() != 0) return;  // the renderer goes on (a failed fork: without a helper)
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd <= 2 && null >= 0; ++fd) ::dup2(null, fd);
    const pid_t renderer = ::getppid();
    while (::getppid() == renderer) ::usleep(10'000);
    ::sleep(static_cast<unsigned>(seconds));
    ::_exit(0);
}

// Where ChildProcess::spawn put the host's fds: the channel, then the tally page.
constexpr int channel_fd = texshare::first_inherited_fd;
constexpr int tally_fd = texshare::first_inherited_fd + 1;

Result<void> draw(const texshare::DmaBufImage& image, std::uint64_t frame) {
    const auto order = byte_order(image.fourcc());
    if (!order) return make_error(Errc::unsupported, "cannot draw {}", texshare::format_name(image.fourcc()));
    // For a DMA-BUF, map() brackets the writes with DMA_BUF_IOCTL_SYNC start/end.
    auto mapping = image.map(texshare::Access::write);
    if (!mapping) return std::move(mapping).error();
    const Pattern pattern(frame, image.width(), image.height());
    if (!pattern.fits(mapping->plane(0).size(), mapping->stride(0))) {
        return make_error(Errc::invalid_layout, "plane 0 ({} bytes, stride {}) cannot hold {}x{}",
                          mapping->plane(0).size(), mapping->stride(0), image.width(), image.height());
    }
    pattern.render(mapping->plane(0), mapping->stride(0), *order);
    return mapping->finish();  // for a DMA-BUF, the SYNC_END that publishes the writes
}

// The acquire fence to present with: a DMA-BUF's implicit write fences as a sync_file
// (Linux 6.0+). A GPU renderer's would still be pending here; this CPU renderer's writes
// are done, so it is signalled, but the host waits on it all the same. memfds and older
// kernels have none: the host then relies on the writes being finished before present().
Result<texshare::UniqueFd> acquire_fence(const texshare::DmaBufImage& image) {
    if (image.backing() != texshare::Backing::dma_buf) return texshare::UniqueFd();
    auto fence = texshare::export_sync_file(image.plane_fd(0), texshare::Access::read);
    if (!fence && fence.error().code == Errc::unsupported) return texshare::UniqueFd();
    return fence;
}

Result<void> render(texshare::FrameSender& sender, Tally& tally, std::uint64_t frames) {
    while (sender.presented_count() < frames) {
        // The host's images arrive (and leave) through the dispatch inside this wait.
        auto free_image = sender.wait_for_free_image(10s);
        tally.set_released(sender.released_count());
        if (!free_image) return std::move(free_image).error();
        if (auto waited = texshare::wait_fence(free_image->release_fence.borrow(), 5s); !waited)
            return waited;
        const texshare::DmaBufImage& image = *sender.image(free_image->id);
        const std::uint64_t frame = sender.next_frame_number();
        if (auto drawn = draw(image, frame); !drawn) {
            return make_error(drawn.error().code, "frame {} into image {:#x}: {}", frame, free_image->id,
                              drawn.error().message);
        }
        auto fence = acquire_fence(image);
        if (!fence) return std::move(fence).error();
        // Counted before the sendmsg: a renderer killed in between shows the frame as in
        // flight at the kill, never as a present the host saw but nobody made.
        tally.set_presented(sender.presented_count() + 1);
        if (auto presented = sender.present(free_image->id, fence->borrow()); !presented) {
            return std::move(presented).error();
        }
    }
    return {};
}

}  // namespace

int run_renderer(const Options& options) {
    // ChildProcess::spawn closes everything but stdio and the fds it was given.
    std::string unexpected;
    if (auto fds = list_open_fds(); fds) {
        for (const int fd : *fds) {
            if (fd > tally_fd) unexpected += fmt::format(" {}", fd);
        }
    }
    auto socket = texshare::take_inherited_fd(channel_fd);
    fork_helper(options.helper_hold_s);
    auto channel = socket ? texshare::FrameChannel::adopt(std::move(*socket))
                          : Result<texshare::FrameChannel>(socket.error());
    auto sender = channel ? texshare::FrameSender::create(std::move(*channel))
                          : Result<texshare::FrameSender>(channel.error());
    auto tally = Tally::adopt(tally_fd);
    if (!sender || !tally) {
        fmt::print(stderr, "host_renderer (renderer): {}\n", sender ? tally.error() : sender.error());
        return 2;
    }
    const auto rendered = render(*sender, *tally, options.frames);
    if (!rendered) fmt::print(stderr, "host_renderer (renderer {}): {}\n", ::getpid(), rendered.error());
    sender->close();  // bye: the host keeps showing the last frame
    if (!unexpected.empty())
        fmt::print(stderr, "host_renderer (renderer): inherited unexpected fds:{}\n", unexpected);
    return rendered && unexpected.empty() ? 0 : 1;
}

}  // namespace host_renderer
