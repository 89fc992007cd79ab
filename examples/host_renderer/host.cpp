// Host mode: spawns the renderer, takes its swapchain once, then for every frame reads the
// image it names (through EGL or a CPU mapping, see frame_reader.hpp), checks every pixel
// and hands the image back.
#include "modes.hpp"

#include <array>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "frame_reader.hpp"
#include "pattern.hpp"
#include "png_writer.hpp"
#include "process.hpp"
#include "protocol.hpp"
#include "texshare/image_wire.hpp"

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;

struct HostReport {
    std::string path = "no image";  // "memfd path", "dma_buf path (gbm on /dev/dri/card0, vgem)"
    std::string format;             // "ARGB8888 LINEAR"
    std::string method = "nothing read";
    std::size_t images = 0;
    std::size_t fds_received = 0;
    std::uint64_t presented = 0;
    std::uint64_t verified = 0;  // frames whose every pixel matched
    std::uint64_t mismatched_pixels = 0;
    std::string renderer = "renderer not started";
    bool renderer_ok = false;
    std::vector<std::uint8_t> last_frame_rgba;
};

// A channel error alone says "peer_closed"; which frame we were on says how far we got.
texshare::Error with_context(texshare::Error error, std::string_view doing, std::uint64_t frame) {
    error.message = fmt::format("{} {}: {}", doing, frame, error.message);
    return error;
}

// The renderer is a separate program as far as trust goes: every image must be one we can
// read as the frames we asked for, under an id we have not seen yet, and all alike.
Result<SwapchainImages> receive_swapchain(texshare::ImageChannel& channel, const Options& options,
                                          HostReport& report) {
    SwapchainImages images;
    for (std::size_t i = 0; i < swapchain_length; ++i) {
        auto received = texshare::receive_image(channel);
        if (!received) return with_context(std::move(received).error(), "waiting for image", i + 1);
        const std::uint64_t id = received->id;
        const texshare::DmaBufImage& image = received->image;
        if (id < 1 || id > swapchain_length || !images[id - 1].empty()) {
            return make_error(Errc::protocol, "image id {} is out of 1..{} or sent twice", id,
                              swapchain_length);
        }
        const texshare::DmaBufImage& first = images[0].empty() ? image : images[0];
        if (image.width() != options.width || image.height() != options.height ||
            !byte_order(image.fourcc()) || image.backing() == texshare::Backing::cpu_only ||
            image.backing() != first.backing() || image.layout().modifier != first.layout().modifier) {
            return make_error(Errc::rejected,
                              "image {}: {}x{} {} {} {}, expected {}x{} ARGB8888 or ABGR8888 with fds, "
                              "like the others",
                              id, image.width(), image.height(), texshare::format_name(image.fourcc()),
                              texshare::modifier_name(image.layout().modifier),
                              texshare::to_string(image.backing()), options.width, options.height);
        }
        for (const texshare::BorrowedFd fd : image.plane_fds()) report.fds_received += fd.valid() ? 1 : 0;
        report.format = fmt::format("{} {}", texshare::format_name(image.fourcc()),
                                    texshare::modifier_name(image.layout().modifier));
        ++report.images;
        images[id - 1] = std::move(received->image);
    }
    return images;
}

// The renderer's one `source` message: the DRM device of dma_buf images, 0 for memfds.
Result<std::uint64_t> receive_source(FrameChannel& channel, const SwapchainImages& images) {
    auto received = channel.receive();
    if (!received) return with_context(std::move(received).error(), "waiting for the source before frame", 0);
    const FrameMessage& message = received->message;
    const bool dma_buf = images[0].backing() == texshare::Backing::dma_buf;
    if (message.kind != static_cast<std::uint32_t>(FrameKind::source) || message.reserved != 0 ||
        message.image_id != 0 || message.frame_number != 0 || (message.device != 0) != dma_buf) {
        return make_error(Errc::protocol, "expected the source of {} images, got kind {} device {}",
                          dma_buf ? "dma_buf" : "memfd", message.kind, message.device);
    }
    return message.device;
}

Result<void> present_frame(FrameReader& reader, const SwapchainImages& images, std::uint64_t id,
                           std::uint64_t frame, const Options& options, HostReport& report) {
    auto rgba = reader.read_rgba(id, images);
    if (!rgba) return std::move(rgba).error();
    const Pattern pattern(frame, options.width, options.height);
    constexpr ByteOrder packed_rgba{0, 1, 2, 3};
    const std::uint64_t mismatches =
        pattern.count_mismatches(std::as_bytes(std::span(*rgba)), options.width * 4, packed_rgba);
    ++report.presented;
    report.verified += mismatches == 0 ? 1 : 0;
    report.mismatched_pixels += mismatches;
    if (frame + 1 == options.frames) report.last_frame_rgba = std::move(*rgba);
    return {};
}

Result<void> present_frames(FrameChannel& channel, FrameReader& reader, const SwapchainImages& images,
                            const Options& options, HostReport& report) {
    for (std::uint64_t frame = 0; frame < options.frames; ++frame) {
        auto received = channel.receive();
        if (!received) return with_context(std::move(received).error(), "waiting for frame", frame);
        const FrameMessage& message = received->message;
        if (message.kind != static_cast<std::uint32_t>(FrameKind::frame_ready) || message.reserved != 0 ||
            message.device != 0 || message.frame_number != frame || message.image_id < 1 ||
            message.image_id > swapchain_length) {
            return make_error(Errc::protocol,
                              "expected frame {} ready in image 1..{}, got kind {} image {} "
                              "frame {} reserved {} device {}",
                              frame, swapchain_length, message.kind, message.image_id, message.frame_number,
                              message.reserved, message.device);
        }
        if (auto presented = present_frame(reader, images, message.image_id, frame, options, report);
            !presented) {
            return with_context(std::move(presented).error(), "presenting frame", frame);
        }
        const FrameMessage release = make_message(FrameKind::release, message.image_id, frame);
        if (auto sent = channel.send(release); !sent) return sent;
    }
    auto bye = channel.receive();
    if (!bye) return with_context(std::move(bye).error(), "waiting for bye after frame", options.frames - 1);
    if (bye->message.kind != static_cast<std::uint32_t>(FrameKind::bye)) {
        return make_error(Errc::protocol, "expected bye after {} frames, got kind {}", options.frames,
                          bye->message.kind);
    }
    return {};
}

// Receives the images and their source, then reads every frame the way FrameReader chose.
Result<void> share_and_present(texshare::ImageChannel& image_channel, FrameChannel& frame_channel,
                               const Options& options, HostReport& report) {
    auto images = receive_swapchain(image_channel, options, report);
    if (!images) return std::move(images).error();
    image_channel.close();
    auto device = receive_source(frame_channel, *images);
    if (!device) return std::move(device).error();
    FrameReader reader = FrameReader::create(*images, *device);
    report.path = reader.device().empty() ? "memfd path" : fmt::format("dma_buf path ({})", reader.device());
    report.method = reader.method();
    return present_frames(frame_channel, reader, *images, options, report);
}

// Everything that holds an fd lives in here, so it is all closed when the caller counts fds.
Result<void> run_session(const Options& options, const std::string& program, HostReport& report) {
    auto image_pair = texshare::ImageChannel::create_pair();
    if (!image_pair) return std::move(image_pair).error();
    auto frame_pair = FrameChannel::create_pair();
    if (!frame_pair) return std::move(frame_pair).error();
    auto& [image_channel, image_child_end] = *image_pair;
    auto& [frame_channel, frame_child_end] = *frame_pair;

    auto pid = spawn_renderer(options, program, image_child_end.take_socket(), frame_child_end.take_socket());
    if (!pid) return std::move(pid).error();

    Result<void> outcome = share_and_present(image_channel, frame_channel, options, report);
    // Closing our ends first turns any wait of the renderer's into peer_closed, so the
    // waitpid below cannot hang on a renderer blocked on us after an error here.
    image_channel.close();
    frame_channel.close();
    auto status = wait_for_child(*pid);
    if (!status) {
        if (!outcome) return outcome;  // the first failure is the one worth reporting
        return std::move(status).error();
    }
    report.renderer = "renderer " + status->describe();
    report.renderer_ok = status->ok();
    return outcome;
}

}  // namespace

int run_host(const Options& options, const std::string& program) {
    auto fds_before = count_open_fds();
    if (!fds_before) {
        fmt::print(stderr, "host_renderer: {}\n", fds_before.error());
        return 1;
    }
    HostReport report;
    auto session = run_session(options, program, report);
    if (!session) fmt::print(stderr, "host_renderer: {}\n", session.error());

    std::string wrote = "no PNG written";
    bool png_ok = false;
    if (session && report.last_frame_rgba.size() == std::size_t{options.width} * options.height * 4) {
        auto png = write_png_rgba(options.output, options.width, options.height, report.last_frame_rgba);
        if (png) {
            wrote = "wrote " + options.output;
            png_ok = true;
        } else {
            fmt::print(stderr, "host_renderer: {}\n", png.error());
        }
    }
    auto fds_after = count_open_fds();
    if (!fds_after) fmt::print(stderr, "host_renderer: {}\n", fds_after.error());
    const bool fds_equal = fds_after && *fds_after == *fds_before;

    if (report.images == swapchain_length) {
        fmt::print("host_renderer: {}, {}, frames read through {}\n", report.path, report.format,
                   report.method);
    }
    fmt::print(
        "host_renderer: {} images shared once ({} fds received), {} frames presented, {} verified, "
        "{} mismatched pixels, {}, {}\n",
        report.images, report.fds_received, report.presented, report.verified, report.mismatched_pixels,
        report.renderer, wrote);
    fmt::print("host_renderer: open fds before {}, after {}{}\n", *fds_before,
               fds_after ? fmt::format("{}", *fds_after) : "unknown", fds_equal ? "" : " (LEAK)");
    const bool ok = session && report.verified == options.frames && report.mismatched_pixels == 0 &&
                    report.renderer_ok && png_ok && fds_equal;
    return ok ? 0 : 1;
}

}  // namespace host_renderer
