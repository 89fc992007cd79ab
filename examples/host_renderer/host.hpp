// What the host keeps across its renderers, and what its summary reports.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "allocation.hpp"
#include "frame_reader.hpp"
#include "options.hpp"
#include "texshare/frame/protocol.hpp"

namespace host_renderer {

struct Report {
    std::string images;           // Allocator::description()
    std::string method;           // FrameReader::method()
    std::uint64_t presented = 0;  // the renderers' own counts (tally.hpp)
    std::uint64_t released = 0;   // releases the renderers got back
    std::uint64_t shown = 0;      // frames the host put on its screen, each checked pixel by pixel
    std::uint64_t verified = 0;   // shown frames whose every pixel matched
    std::uint64_t mismatched_pixels = 0;
    std::uint64_t acquire_fences = 0;     // shown frames that came with a fence the host waited on
    std::uint64_t received = 0;           // FrameReceiver: presents taken in (shown, or superseded unseen)
    std::uint64_t skipped = 0;            // FrameReceiver: presents of images the host had retired
    std::uint64_t in_flight_at_kill = 0;  // presented by the killed renderer, not yet received
    std::uint64_t images_added = 0;
    std::uint64_t images_retired = 0;
    std::uint64_t images_reclaimed = 0;  // the host's images back from the killed renderer
    std::uint64_t renderers = 0;
    // Pacing (pacing.hpp): begin_frames sent, and for each shown frame that answered one, the
    // time from its begin_frame to its presented (ns). The renderers' feedback counts (tally).
    std::uint64_t begin_frames = 0;
    std::vector<std::int64_t> latencies_ns;
    std::uint64_t feedback_presented = 0;
    std::uint64_t feedback_discarded = 0;
    // Damage: pixels the shown frames said changed, against all their pixels.
    std::uint64_t damaged_pixels = 0;
    std::uint64_t shown_pixels = 0;
    bool resized = false;
    bool killed = false;
    bool renderers_as_planned = true;  // the killed one died of SIGKILL, every other exited 0
    std::vector<std::string> events;   // a line each: the resize, each renderer's end
    // The screen: the last frame shown, as RGBA rows (what the PNG gets).
    std::vector<std::uint8_t> screen;
    Size screen_size;
    std::uint64_t screen_frame = 0;
};

// Declared in destruction order's reverse: the receiver goes first (its images leave the
// reader's listener), then the reader (EGL), then the allocator (the GBM device).
struct Host {
    Options options;
    std::string program;  // run again, in --renderer mode
    Allocator allocator;
    FrameReader reader;
    std::optional<texshare::FrameReceiver> receiver;
    std::array<std::uint64_t, swapchain_length> ids{};  // the current swapchain's image ids
    Report report;

    // Presents the receiver has taken in, shown or not: what --resize-at and --kill-at count.
    std::uint64_t seen() const { return receiver->received_count() + receiver->skipped_count(); }
};

// Adds a swapchain to the receiver (shared with the renderer at once, or on resume).
texshare::Result<void> add_swapchain(Host& host, SwapchainImages images);

// Spawns a renderer that presents `frames` frames into the host's images and serves it until
// it is gone (its bye, or the planned SIGKILL); shows, checks and resizes on the way. The
// first call creates host.receiver and adds `first_images`; later ones resume it.
texshare::Result<void> serve_renderer(Host& host, std::uint64_t frames, SwapchainImages& first_images);

}  // namespace host_renderer
