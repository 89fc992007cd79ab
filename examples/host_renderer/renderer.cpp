// Renderer mode: the child the host spawns with texshare::ChildProcess. It allocates
// nothing: the host shares its swapchain on the FrameChannel (fd 3), and the renderer is
// that channel's FrameSender. Paced (--paced, the host's --rate), it renders one frame per
// begin_frame of the host; otherwise it runs free. Each frame it takes the free image the
// host released longest ago, redraws what changed since that image last held a frame of
// this renderer (buffer age: the whole picture for an image it never drew or of another
// size) and presents it with what changed since its previous present as damage. It counts
// the host's feedback (presented or discarded) in its tally. The host retires and adds
// images as it likes; dispatch() keeps up.
#include "modes.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <unordered_map>
#include <vector>

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

// Draws `areas` of frame `frame`'s picture into the image, leaving the rest as it is.
Result<void> draw(const texshare::DmaBufImage& image, const Pattern& pattern,
                  std::span<const texshare::DamageRect> areas) {
    const auto order = byte_order(image.fourcc());
    if (!order) return make_error(Errc::unsupported, "cannot draw {}", texshare::format_name(image.fourcc()));
    // For a DMA-BUF, map() brackets the writes with DMA_BUF_IOCTL_SYNC start/end.
    auto mapping = image.map(texshare::Access::write);
    if (!mapping) return std::move(mapping).error();
    if (!pattern.fits(mapping->plane(0).size(), mapping->stride(0))) {
        return make_error(Errc::invalid_layout, "plane 0 ({} bytes, stride {}) cannot hold {}x{}",
                          mapping->plane(0).size(), mapping->stride(0), image.width(), image.height());
    }
    for (const auto& area : areas) pattern.render(mapping->plane(0), mapping->stride(0), *order, area);
    return mapping->finish();  // for a DMA-BUF, the SYNC_END that publishes the writes
}

// What this renderer has drawn: the frame each image holds (for buffer age) and its last
// present (for damage). Frame numbers are this renderer's own (the sender's, from 1).
class DrawnFrames {
public:
    // The parts of `next` to draw into image `id`: what changed since the frame it holds, or
    // the whole picture for an image it never drew (the host's, a new one after a resize).
    std::vector<texshare::DamageRect> to_draw(std::uint64_t id, const Pattern& next) const {
        const auto held = held_.find(id);
        if (held == held_.end()) return {next.whole_image()};
        const auto changed = next.changed_since(Pattern(held->second, next.width(), next.height()));
        return {changed.begin(), changed.end()};
    }
    // The damage of presenting `next`: what changed since the previous present, or the whole
    // image for the first one and after a resize (what the host shows changed everywhere).
    std::vector<texshare::DamageRect> damage(const Pattern& next) const {
        if (last_frame_ == 0 || last_size_ != Size{next.width(), next.height()}) return {next.whole_image()};
        const auto changed = next.changed_since(Pattern(last_frame_, next.width(), next.height()));
        return {changed.begin(), changed.end()};
    }
    void presented(std::uint64_t id, const Pattern& drawn, std::uint64_t frame) {
        held_[id] = frame;  // an image's size never changes, so its entry stays right
        last_frame_ = frame;
        last_size_ = {drawn.width(), drawn.height()};
    }

private:
    std::unordered_map<std::uint64_t, std::uint64_t> held_;
    std::uint64_t last_frame_ = 0;
    Size last_size_;
};

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

Result<void> render(texshare::FrameSender& sender, Tally& tally, std::uint64_t frames, bool paced) {
    DrawnFrames drawn;
    std::uint64_t feedback_presented = 0, feedback_discarded = 0;
    while (sender.presented_count() < frames) {
        if (paced) {
            // The host's begin_frame says when to draw; a renderer that fell behind answers
            // the newest (dispatch() reads the ones queued behind it).
            if (auto begin = sender.wait_for_begin_frame(10s); !begin) return std::move(begin).error();
            if (auto caught_up = sender.dispatch(); !caught_up) return std::move(caught_up).error();
        }
        // The host's images arrive (and leave) through the dispatch inside this wait.
        auto free_image = sender.wait_for_free_image(10s);
        tally.set_released(sender.released_count());
        while (const auto feedback = sender.take_feedback()) ++(feedback->presented ? feedback_presented : feedback_discarded);
        tally.set_feedback(feedback_presented, feedback_discarded);
        if (!free_image) return std::move(free_image).error();
        if (auto waited = texshare::wait_fence(free_image->release_fence.borrow(), 5s); !waited)
            return waited;
        const texshare::DmaBufImage& image = *sender.image(free_image->id);
        const std::uint64_t frame = sender.next_frame_number();
        const Pattern pattern(frame, image.width(), image.height());
        if (auto done = draw(image, pattern, drawn.to_draw(free_image->id, pattern)); !done) {
            return make_error(done.error().code, "frame {} into image {:#x}: {}", frame, free_image->id,
                              done.error().message);
        }
        auto fence = acquire_fence(image);
        if (!fence) return std::move(fence).error();
        const auto damage = drawn.damage(pattern);
        // Counted before the sendmsg: a renderer killed in between shows the frame as in
        // flight at the kill, never as a present the host saw but nobody made.
        tally.set_presented(sender.presented_count() + 1);
        if (auto presented = sender.present(free_image->id, fence->borrow(), texshare::FenceKind::sync_file,
                                            texshare::PresentInfo{.damage = damage});
            !presented) {
            return std::move(presented).error();
        }
        drawn.presented(free_image->id, pattern, frame);
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
    auto sender = channel ? texshare::FrameSender::create(std::move(*channel), {.paced = options.paced})
                          : Result<texshare::FrameSender>(channel.error());
    auto tally = Tally::adopt(tally_fd);
    if (!sender || !tally) {
        fmt::print(stderr, "host_renderer (renderer): {}\n", sender ? tally.error() : sender.error());
        return 2;
    }
    const auto rendered = render(*sender, *tally, options.frames, options.paced);
    if (!rendered) fmt::print(stderr, "host_renderer (renderer {}): {}\n", ::getpid(), rendered.error());
    sender->close();  // bye: the host keeps showing the last frame
    if (!unexpected.empty())
        fmt::print(stderr, "host_renderer (renderer): inherited unexpected fds:{}\n", unexpected);
    return rendered && unexpected.empty() ? 0 : 1;
}

}  // namespace host_renderer
