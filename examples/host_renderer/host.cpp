// Host mode: allocates the swapchain, spawns a renderer into it (and a second one after
// killing the first), shows and checks frames, then prints the summary (host_session.cpp
// serves each renderer).
#include <cstdint>

#include <fmt/format.h>

#include "host.hpp"
#include "modes.hpp"
#include "open_fds.hpp"
#include "pacing.hpp"
#include "png_writer.hpp"

namespace host_renderer {
namespace {

using texshare::Result;

// Everything that holds an fd lives in here, so it is all closed when the caller counts.
Result<void> run_session(const Options& options, const std::string& program, Report& report) {
    SwapchainImages first_images;
    auto allocator = Allocator::open(options.allocator, options.size, first_images);
    if (!allocator) return std::move(allocator).error();
    FrameReader reader = FrameReader::create(*allocator);
    Host host{options, program, std::move(*allocator), std::move(reader), std::nullopt, {}, {}};
    // The first renderer; after the planned kill, a second one presents the rest.
    Result<void> served;
    for (bool more = true; more && served;) {
        const bool killed_before = host.report.killed;
        served = serve_renderer(host, options.frames - host.report.presented, first_images);
        more = host.report.killed != killed_before && host.report.presented < options.frames;
    }
    host.report.images = host.allocator.description();
    host.report.method = host.reader.method();
    if (host.receiver) {
        host.report.received = host.receiver->received_count();
        host.report.skipped = host.receiver->skipped_count();
    }
    report = std::move(host.report);
    return served;
}

// The reasons the run failed, if any: what the summary's result= stands on.
std::vector<std::string> check(const Options& options, const Report& report, std::int64_t lost,
                               bool fds_equal) {
    std::vector<std::string> failed;
    const auto expect = [&failed](bool ok, std::string what) {
        if (!ok) failed.push_back(std::move(what));
    };
    expect(report.presented == options.frames,
           "the renderers presented another number of frames than --frames");
    expect(lost >= 0, "the host received presents nobody counted");
    expect(lost <= static_cast<std::int64_t>(report.in_flight_at_kill),
           "frames were lost beyond those in flight");
    expect(report.shown > 0, "no frame was shown");
    expect(report.verified == report.shown && report.mismatched_pixels == 0, "shown frames had wrong pixels");
    expect(report.renderers_as_planned, "a renderer did not end as planned (SIGKILL, else exit 0)");
    expect(report.resized == (options.resize_at != 0), "the planned resize did not happen");
    expect(report.killed == (options.kill_at != 0), "the planned kill did not happen");
    expect(!report.killed || report.images_reclaimed == swapchain_length,
           "the killed renderer's images did not all come back");
    expect(fds_equal, "the host leaked fds");
    // Pacing and feedback: the renderer drew to the host's clock and heard about its frames.
    const bool paced = options.rate_hz != 0;
    expect(!paced || (report.begin_frames > 0 && !report.latencies_ns.empty()),
           "no frame answered a begin_frame (the renderer was not paced)");
    expect(report.feedback_presented > 0 && report.feedback_presented <= report.shown,
           "the renderers got no presented feedback, or more than the frames shown");
    expect(report.feedback_presented + report.feedback_discarded <= report.presented,
           "the renderers got more feedback than they made presents");
    expect(report.damaged_pixels > 0 && report.damaged_pixels < report.shown_pixels,
           "the damage covered nothing, or every pixel (the renderer sends only what changed)");
    return failed;
}

}  // namespace

int run_host(const Options& options, const std::string& program) {
    auto fds_before = list_open_fds();
    if (!fds_before) {
        fmt::print(stderr, "host_renderer: {}\n", fds_before.error());
        return 1;
    }
    Report report;
    auto session = run_session(options, program, report);
    if (!session) fmt::print(stderr, "host_renderer: {}\n", session.error());

    bool png_ok = false;
    if (!report.screen.empty()) {
        auto png = write_png_rgba(options.output, report.screen_size.width, report.screen_size.height,
                                  report.screen);
        if (!png) fmt::print(stderr, "host_renderer: {}\n", png.error());
        png_ok = png.has_value();
    }
    auto fds_after = list_open_fds();
    if (!fds_after) fmt::print(stderr, "host_renderer: {}\n", fds_after.error());
    const std::size_t after = fds_after ? fds_after->size() : 0;

    if (!report.images.empty()) {
        fmt::print("host_renderer: images: {}; frames read through {}\n", report.images, report.method);
    }
    for (const std::string& event : report.events) fmt::print("host_renderer: {}\n", event);
    const double damaged_share =
        report.shown_pixels == 0 ? 0.0 : static_cast<double>(report.damaged_pixels) / static_cast<double>(report.shown_pixels);
    if (options.rate_hz != 0) {
        fmt::print("host_renderer: paced at {} Hz: {} begin_frames sent; begin_frame -> presented over {} frames: "
                   "p50 {:.2f} ms, p99 {:.2f} ms; damage covered {:.1f} % of the pixels shown\n",
                   options.rate_hz, report.begin_frames, report.latencies_ns.size(),
                   static_cast<double>(percentile(report.latencies_ns, 50)) / 1e6,
                   static_cast<double>(percentile(report.latencies_ns, 99)) / 1e6, 100 * damaged_share);
    }
    if (png_ok) {
        fmt::print("host_renderer: wrote {} ({}x{}, frame {} of renderer {})\n", options.output,
                   report.screen_size.width, report.screen_size.height, report.screen_frame,
                   report.renderers);
    }
    const auto lost = static_cast<std::int64_t>(report.presented - report.received - report.skipped);
    // After a failed session the other checks would only list its consequences.
    std::vector<std::string> failed{"the session failed (see above)"};
    if (session) failed = check(options, report, lost, fds_after && after == fds_before->size());
    if (session && !png_ok) failed.push_back("no PNG written");
    for (const std::string& reason : failed) fmt::print(stderr, "host_renderer: FAILED: {}\n", reason);
    // One line, key=value, for scripts (the ctest checks it again).
    fmt::print(
        "summary: frames={} presented={} received={} skipped={} shown={} verified={} acquire_fences={} "
        "released={} lost={} in_flight_at_kill={} images_added={} images_retired={} images_reclaimed={} "
        "mismatched_pixels={} "
        "renderers={} rate_hz={} begin_frames={} latency_samples={} latency_p50_us={} latency_p99_us={} "
        "feedback_presented={} feedback_discarded={} damaged_share={:.3f} fds_before={} fds_after={} result={}\n",
        options.frames, report.presented, report.received, report.skipped, report.shown, report.verified,
        report.acquire_fences, report.released, lost, report.in_flight_at_kill, report.images_added,
        report.images_retired, report.images_reclaimed, report.mismatched_pixels, report.renderers,
        options.rate_hz, report.begin_frames, report.latencies_ns.size(), percentile(report.latencies_ns, 50) / 1000,
        percentile(report.latencies_ns, 99) / 1000, report.feedback_presented, report.feedback_discarded,
        damaged_share, fds_before->size(), fds_after ? fmt::format("{}", after) : "unknown", failed.empty() ? "ok" : "fail");
    return failed.empty() ? 0 : 1;
}

}  // namespace host_renderer
