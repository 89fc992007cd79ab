// Test support: the other process of the cross-process frame-protocol tests. Spawned by a
// test with ChildProcess::spawn, its FrameChannel end on fd 3; plays a producer (renders
// stamped frames, into its own images or the consumer's) or a consumer (checks every frame's
// stamp), and can die, stall or resize on cue. Exit status: 0 when everything it saw was
// right and its open-fd count is what it started with; 1 otherwise (the reason on stderr).
//
//   frame_peer --role=producer|consumer [--frames=N] [--images=N] [--size=WxH]
//              [--fence] [--die-after=N] [--stall-after=N] [--resize-at=N]
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "support/fd_count.hpp"
#include "support/frame_stamp.hpp"
#include "texshare/child_process.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/sync_file.hpp"

namespace {

using namespace texshare;
using namespace std::chrono_literals;

struct Options {
    std::string role;
    std::uint64_t frames = 10;
    std::uint32_t images = 3;
    std::uint32_t width = 64, height = 32;
    bool fence = false;             // producer: an eventfd acquire fence, signalled after the pixels land
    std::uint64_t die_after = 0;    // SIGKILL itself after this many frames
    std::uint64_t stall_after = 0;  // stop answering after this many frames
    std::uint64_t resize_at = 0;    // producer: retire its images and add bigger ones at this frame
};

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "frame_peer: %s\n", what.c_str());
    std::exit(1);
}

template <typename T>
T must(Result<T> result, std::string_view what) {
    if (!result) fail(fmt::format("{}: {}", what, result.error().message));
    if constexpr (!std::is_void_v<T>) return std::move(*result);
}

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg(argv[i]);
        const auto eq = arg.find('=');
        const std::string key(arg.substr(0, eq));
        const std::string value(eq == std::string_view::npos ? "" : arg.substr(eq + 1));
        if (key == "--role") options.role = value;
        else if (key == "--frames") options.frames = std::stoull(value);
        else if (key == "--images") options.images = static_cast<std::uint32_t>(std::stoul(value));
        else if (key == "--size") {
            options.width = static_cast<std::uint32_t>(std::stoul(value));
            options.height = static_cast<std::uint32_t>(std::stoul(value.substr(value.find('x') + 1)));
        } else if (key == "--fence") options.fence = true;
        else if (key == "--die-after") options.die_after = std::stoull(value);
        else if (key == "--stall-after") options.stall_after = std::stoull(value);
        else if (key == "--resize-at") options.resize_at = std::stoull(value);
        else fail(fmt::format("unknown argument {}", arg));
    }
    if (options.role != "producer" && options.role != "consumer") fail("--role=producer|consumer is required");
    return options;
}

[[noreturn]] void stall() {
    while (true) ::pause();  // until the test kills it
}

template <typename Endpoint>
std::vector<std::uint64_t> add_images(Endpoint& endpoint, std::uint32_t count, std::uint32_t w, std::uint32_t h) {
    std::vector<std::uint64_t> ids;
    for (std::uint32_t i = 0; i < count; ++i) {
        ids.push_back(must(endpoint.add_image(must(MemfdAllocator().allocate(w, h, DRM_FORMAT_ARGB8888), "allocate")),
                           "add_image"));
    }
    return ids;
}

void produce(FrameChannel channel, const Options& o) {
    FrameSender sender = must(FrameSender::create(std::move(channel)), "FrameSender::create");
    std::vector<std::uint64_t> own = add_images(sender, o.images, o.width, o.height);
    // Images the consumer shares arrive through dispatch() like any message.
    while (sender.image_count() == 0) must(sender.wait_for_free_image(5s), "waiting for the consumer's images");
    for (std::uint64_t n = 1; n <= o.frames; ++n) {
        if (n == o.stall_after + 1 && o.stall_after != 0) stall();
        if (n == o.resize_at) {
            for (std::uint64_t id : own) must(sender.retire(id), "retire");
            own = add_images(sender, o.images, o.width * 2, o.height * 2);
        }
        auto free_image = must(sender.wait_for_free_image(5s), "wait_for_free_image");
        must(wait_fence(free_image.release_fence.borrow(), 5s), "release fence");
        const std::uint64_t frame = sender.next_frame_number();
        const DmaBufImage& image = *sender.image(free_image.id);
        if (!o.fence) {
            must(texshare::testing::stamp_image(image, frame), "stamp");
            must(sender.present(free_image.id), "present");
        } else {  // present first, write, then signal: a consumer that does not wait sees old pixels
            UniqueFd fence(::eventfd(0, EFD_CLOEXEC));
            if (!fence) fail("eventfd");
            must(sender.present(free_image.id, fence.borrow()), "present");
            ::usleep(2000);
            must(texshare::testing::stamp_image(image, frame), "stamp");
            const std::uint64_t one = 1;
            if (::write(fence.get(), &one, sizeof one) != sizeof one) fail("eventfd write");
        }
        if (n == o.die_after) ::raise(SIGKILL);
        (void)must(sender.dispatch(), "dispatch");
    }
    std::printf("producer: %llu frames presented, %zu released\n",
                static_cast<unsigned long long>(sender.presented_count()), sender.released_count());
    sender.close();
}

void consume(FrameChannel channel, const Options& o) {
    // keep_last_frame: a producer's bye right after its last present must not hide that frame.
    FrameReceiver receiver =
        must(FrameReceiver::create(std::move(channel), {.keep_last_frame = true}), "FrameReceiver::create");
    (void)add_images(receiver, o.images, o.width, o.height);
    // Shows the newest frame each time, as a compositor would (frames that arrive together
    // are released unseen), until the producer says bye; --frames bounds a run without one.
    std::uint64_t last = 0;
    bool producer_gone = false;
    for (std::uint64_t n = 1; n <= o.frames && !producer_gone; ++n) {
        if (n == o.stall_after + 1 && o.stall_after != 0) stall();
        auto frame = receiver.wait_for_frame(last, 5s);
        if (!frame && frame.error().code == Errc::peer_closed) {
            producer_gone = true;
            if (!receiver.current() || receiver.current()->frame_number <= last) break;
            frame = *receiver.current();  // presented just before bye
        }
        const auto current = must(std::move(frame), "wait_for_frame");
        UniqueFd fence = receiver.take_acquire_fence();
        must(wait_fence(fence.borrow(), 5s), "acquire fence");
        const auto wrong = must(texshare::testing::stamp_mismatches(*current.image, current.frame_number), "stamp check");
        if (wrong != 0) fail(fmt::format("frame {}: {} pixels are not its stamp", current.frame_number, wrong));
        last = current.frame_number;
        if (n == o.die_after) ::raise(SIGKILL);
    }
    std::printf("consumer: %zu frames verified\n", receiver.received_count());
    receiver.close();
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    const int fds_before = texshare::testing::open_fd_count() - 1;  // fd 3 is about to be taken
    {
        auto channel = must(FrameChannel::adopt(must(take_inherited_fd(first_inherited_fd), "fd 3")), "adopt");
        if (options.role == "producer") produce(std::move(channel), options);
        else consume(std::move(channel), options);
    }
    const int fds_after = texshare::testing::open_fd_count();
    if (fds_after != fds_before) fail(fmt::format("{} fds open at the end, {} at the start", fds_after, fds_before));
    return 0;
}
