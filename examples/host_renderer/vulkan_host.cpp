// Host mode with --api=vulkan: the renderer allocates (vulkan::Exporter) and shares its
// images once; the host imports each into Vulkan when it arrives (vulkan::ImportListener on its
// FrameReceiver), and for every frame it shows waits on the acquire fence (as a semaphore),
// takes the image from the renderer, copies it into a host-visible buffer, gives it back and
// releases it with the fence of that copy; every pixel is compared with the pattern
// (tests/support/vulkan_pattern.hpp). No resize or kill here: the images are the renderer's.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <span>

#include <fmt/format.h>

#include "modes.hpp"
#include "open_fds.hpp"
#include "png_writer.hpp"
#include "support/vulkan_pattern.hpp"
#include "tally.hpp"
#include "texshare/child_process.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/vulkan/exporter.hpp"
#include "texshare/vulkan/import_listener.hpp"
#include "vulkan_app.hpp"
#include "vulkan_sync.hpp"

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;
namespace vk = texshare::vulkan;

struct VulkanReport {
    std::string images;  // what the renderer shared, as the host received it
    std::string method;  // how the host read the frames
    std::uint64_t presented = 0;
    std::uint64_t released = 0;
    std::uint64_t received = 0;
    std::uint64_t skipped = 0;
    std::uint64_t shown = 0;
    std::uint64_t verified = 0;
    std::uint64_t mismatched_pixels = 0;
    std::uint64_t acquire_fences = 0;
    std::uint64_t imported = 0;  // the most images the listener held imported at once
    std::string renderer_end;
    bool renderer_ok = false;
    std::vector<std::uint8_t> screen;
    Size screen_size;
    std::uint64_t screen_frame = 0;
};

// What the host reads frames with: its device, the import cache and the copy's buffer.
struct Reader {
    const VulkanApp* app;
    vk::Fences fences;
    vk::Importer importer;
    vk::ImportListener listener;
    VulkanApp::HostBuffer buffer;
    VkCommandBuffer commands = VK_NULL_HANDLE;

    Reader(const VulkanApp& a, vk::Fences f, vk::Importer i, VulkanApp::HostBuffer b, VkCommandBuffer c)
        : app(&a), fences(std::move(f)), importer(std::move(i)), listener(importer), buffer(b), commands(c) {}
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    ~Reader() {
        vkDeviceWaitIdle(app->device());
        app->free_commands(commands);
        app->destroy(buffer);
    }
};

// The renderer's first image, made here too and sent once across a local frame channel into
// a receiver with its own Importer: every check a renderer's image meets (receipt: what the
// fd really is; import into this device) runs before any renderer is spawned, so a driver
// whose export cannot travel is named here (Errc::unsupported) instead of failing the session.
Result<void> try_sharing(const vk::Device& device, vk::Exporter::Exported exported, const vk::Fences& fences) {
    auto importer = vk::Importer::create(device, {.usage = shared_image_usage});
    if (!importer) return std::move(importer).error();
    vk::ImportListener listener(*importer);
    auto pair = texshare::FrameChannel::create_pair();
    if (!pair) return std::move(pair).error();
    auto sender = texshare::FrameSender::create(std::move(pair->first), sender_options(fences));
    auto receiver = sender ? texshare::FrameReceiver::create(std::move(pair->second), receiver_options(fences))
                           : Result<texshare::FrameReceiver>(sender.error());
    if (!receiver) return std::move(receiver).error();
    receiver->set_listener(&listener);
    const std::string what = fmt::format("{} {}", texshare::to_string(exported.image.backing()),
                                         texshare::format_name(exported.image.fourcc()));
    auto id = sender->add_image(std::move(exported.image));
    auto handled = id ? receiver->dispatch() : Result<std::size_t>(id.error());
    const bool imported = id && listener.image(*id) != nullptr;
    receiver->set_listener(nullptr);
    if (!handled) {
        return make_error(Errc::unsupported, "an exported image ({}) does not pass the receiver: {}", what,
                          handled.error().message);
    }
    if (!imported) return make_error(Errc::unsupported, "an exported image ({}) was received but not imported", what);
    return {};
}

// The host's import side and a check that this driver can also export, so that a machine
// without what --api=vulkan needs is told so here, naming what is missing, before a renderer
// is spawned. The only place the host makes a vulkan::Device, Importer or Exporter.
Result<std::unique_ptr<Reader>> open_reader(const VulkanApp& app, const Options& options) {
    const Size size = options.size;
    auto exporter = vk::Exporter::create(app.handles(), {.usage = shared_image_usage});
    // The renderer's first allocation, tried here (and shared with this process, try_sharing).
    auto trial = exporter ? exporter->allocate(size.width, size.height, shared_image_fourcc)
                          : Result<vk::Exporter::Exported>(exporter.error());
    if (!trial && trial.error().code == Errc::unsupported) {
        return make_error(Errc::unsupported, "the renderer could not export images: {}", trial.error().message);
    }
    if (!trial) return std::move(trial).error();
    auto device = vk::Device::create(app.handles());
    if (!device) return make_error(Errc::unsupported, "the host could not import images: {}", device.error().message);
    auto fences = make_fences(app, options.vulkan_cpu_wait);
    if (!fences) return std::move(fences).error();
    if (auto shared = try_sharing(*device, std::move(*trial), *fences); !shared) return shared.error();
    auto importer = vk::Importer::create(*device, {.usage = shared_image_usage});
    if (!importer) return std::move(importer).error();
    auto buffer = app.make_host_buffer(VkDeviceSize{size.width} * size.height * 4);
    if (!buffer) return std::move(buffer).error();
    auto commands = app.allocate_commands();
    if (!commands) {
        app.destroy(*buffer);
        return std::move(commands).error();
    }
    return std::make_unique<Reader>(app, std::move(*fences), std::move(*importer), *buffer, *commands);
}

void image_barrier(VkCommandBuffer c, VkImage image, VkImageLayout from, VkImageLayout to, std::uint32_t src_family,
                   std::uint32_t dst_family, VkAccessFlags src_access, VkAccessFlags dst_access) {
    const VkImageMemoryBarrier b{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER,
                                 nullptr,
                                 src_access,
                                 dst_access,
                                 from,
                                 to,
                                 src_family,
                                 dst_family,
                                 image,
                                 {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
    vkCmdPipelineBarrier(c, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 0, nullptr, 0,
                         nullptr, 1, &b);
}

// Copies the frame's image into the host buffer after its acquire fence, releases it with
// the copy's fence, and checks every pixel.
Result<void> show(Reader& reader, texshare::FrameReceiver& receiver, const texshare::FrameReceiver::Frame& frame,
                  VulkanReport& report) {
    const VulkanApp& app = *reader.app;
    const vk::ImportedImage* imported = reader.listener.image(frame.image_id);
    if (imported == nullptr) return make_error(Errc::invalid_argument, "image {:#x} was not imported", frame.image_id);
    const VkExtent2D e = imported->extent;
    const VkDeviceSize bytes = VkDeviceSize{e.width} * e.height * 4;
    if (bytes > reader.buffer.size) {
        return make_error(Errc::invalid_argument, "image {:#x} is {}x{}, more than the {}-byte buffer holds",
                          frame.image_id, e.width, e.height, reader.buffer.size);
    }
    bool had_fence = false;
    auto wait = wait_for_renderer(reader.fences, receiver, had_fence);
    report.acquire_fences += had_fence ? 1 : 0;
    if (!wait) return std::move(wait).error();
    auto signal = reader.fences.signal_semaphore();
    if (!signal) return std::move(signal).error();
    VkCommandBuffer c = reader.commands;
    vkResetCommandBuffer(c, 0);
    const VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, nullptr,
                                         VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, nullptr};
    vkBeginCommandBuffer(c, &begin);
    const std::uint32_t ours = app.queue_family();
    const std::uint32_t peer = app.peer_queue_family(frame.image->backing());
    // From the renderer (queue family ownership transfer, GENERAL keeps the contents), copied,
    // and handed back to it.
    image_barrier(c, imported->image, VK_IMAGE_LAYOUT_GENERAL, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, peer, ours, 0,
                  VK_ACCESS_TRANSFER_READ_BIT);
    const VkBufferImageCopy region{0, 0, 0, {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1}, {0, 0, 0}, {e.width, e.height, 1}};
    vkCmdCopyImageToBuffer(c, imported->image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, reader.buffer.buffer, 1, &region);
    image_barrier(c, imported->image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, VK_IMAGE_LAYOUT_GENERAL, ours, peer,
                  VK_ACCESS_TRANSFER_READ_BIT, 0);
    const VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER, nullptr, VK_ACCESS_TRANSFER_WRITE_BIT,
                                  VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(c, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0, nullptr, 0,
                         nullptr);
    if (VkResult r = vkEndCommandBuffer(c); r != VK_SUCCESS) return vk_error("vkEndCommandBuffer", r);
    const VkPipelineStageFlags stage = VK_PIPELINE_STAGE_ALL_COMMANDS_BIT;
    const VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO, nullptr, wait->count(), wait->data(), &stage, 1, &c,
                              signal->count(), signal->data()};
    if (VkResult r = vkQueueSubmit(app.queue(), 1, &submit, VK_NULL_HANDLE); r != VK_SUCCESS) {
        return vk_error("vkQueueSubmit", r);
    }
    // The renderer may draw into the image again once the copy is done: the release carries
    // the copy's fence. A dead renderer's kept frame has nobody to release to.
    Result<void> released;
    if (!frame.producer_gone) released = release_after(receiver, frame.image_id, reader.fences, app.queue(), *signal);
    // The CPU reads the buffer now, so this process waits for its own copy either way.
    if (VkResult r = vkQueueWaitIdle(app.queue()); r != VK_SUCCESS) return vk_error("vkQueueWaitIdle", r);
    if (!released && released.error().code != Errc::peer_closed) return released;
    const std::span<const std::uint8_t> pixels(reader.buffer.mapped, bytes);
    const std::uint64_t mismatches = texshare::testing::count_pattern_mismatches(
        pixels, e.width, e.height, std::size_t{e.width} * 4, static_cast<std::uint32_t>(frame.frame_number));
    ++report.shown;
    report.verified += mismatches == 0 ? 1 : 0;
    report.mismatched_pixels += mismatches;
    report.screen.assign(pixels.begin(), pixels.end());
    report.screen_size = {e.width, e.height};
    report.screen_frame = frame.frame_number;
    return {};
}

std::string describe_images(const texshare::FrameReceiver& receiver, std::uint64_t id, std::size_t count) {
    const texshare::DmaBufImage* image = receiver.image(id);
    if (image == nullptr) return "none";
    return fmt::format("{} exported by the renderer with Vulkan: {}, {}, {}, {}x{}", count,
                       texshare::to_string(image->backing()), texshare::format_name(image->fourcc()),
                       texshare::modifier_name(image->layout().modifier), image->width(), image->height());
}

Result<void> serve(const Options& options, const std::string& program, const VulkanApp& app, Reader& reader,
                   VulkanReport& report) {
    auto pair = texshare::FrameChannel::create_pair();
    if (!pair) return std::move(pair).error();
    auto receiver = texshare::FrameReceiver::create(std::move(pair->first), receiver_options(reader.fences));
    if (!receiver) return std::move(receiver).error();
    receiver->set_listener(&reader.listener);
    auto tally = Tally::create();
    if (!tally) return std::move(tally).error();
    auto tally_copy = tally->dup();
    if (!tally_copy) return std::move(tally_copy).error();
    std::vector<texshare::UniqueFd> inherited;
    inherited.push_back(pair->second.take_socket());
    inherited.push_back(std::move(*tally_copy));
    auto child = texshare::ChildProcess::spawn("/proc/self/exe", renderer_arguments(options), inherited,
                                               {.argv0 = program});
    if (!child) return std::move(child).error();
    // Which of the two applies shows in the images line (dma_buf or opaque_fd).
    report.method = fmt::format("Vulkan import ({}; DMA-BUFs {}, opaque_fd images as OPAQUE_FD memory) + a copy "
                                "to a buffer; fences {}",
                                app.name(),
                                app.enabled(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME)
                                    ? "with their explicit DRM modifier"
                                    : "LINEAR only, stride checked (no VK_EXT_image_drm_format_modifier)",
                                describe(reader.fences));
    std::uint64_t shown_frame = 0;
    Result<void> served;
    while (served) {
        auto ready = child->wait_for_event(receiver->native_handle(), vulkan_patience);
        if (!ready) {
            served = std::move(ready).error();
            break;
        }
        auto handled = receiver->dispatch();
        const bool closed = !handled && handled.error().code == Errc::peer_closed;
        if (!handled && !closed) {
            served = std::move(handled).error();
            break;
        }
        const bool gone = closed || ready->exited;
        if (gone && !closed) receiver->close();
        report.imported = std::max<std::uint64_t>(report.imported, reader.importer.size());
        if (report.images.empty() && receiver->image_count() > 0) {
            auto frame = receiver->current();
            if (frame) report.images = describe_images(*receiver, frame->image_id, receiver->image_count());
        }
        auto frame = receiver->current();
        if (frame && frame->frame_number > shown_frame && (gone || !frame->producer_gone)) {
            served = show(reader, *receiver, *frame, report);
            shown_frame = frame->frame_number;
        }
        if (gone) break;
    }
    const pid_t pid = child->pid();
    if (!served) (void)child->signal(SIGKILL);  // a broken session: the renderer would wait for releases
    auto status = child->wait(vulkan_patience);  // on error ~ChildProcess kills and reaps it
    const TallyCounts counts = tally->read();
    report.presented = counts.presented;
    report.released = counts.released;
    report.received = receiver->received_count();
    report.skipped = receiver->skipped_count();
    report.renderer_ok = status && status->ok();
    report.renderer_end = fmt::format("renderer (pid {}): {}, {} frames presented, {} released", pid,
                                      status ? status->describe() : status.error().message, counts.presented,
                                      counts.released);
    receiver->set_listener(nullptr);  // the imports go with the Reader, after the device is idle
    return served;
}

}  // namespace

int run_vulkan_host(const Options& options, const std::string& program) {
    auto fds_before = list_open_fds();
    if (!fds_before) {
        fmt::print(stderr, "host_renderer: {}\n", fds_before.error());
        return 1;
    }
    VulkanReport report;
    Result<void> session;
    {
        auto app = VulkanApp::create();
        auto reader = app ? open_reader(*app, options) : Result<std::unique_ptr<Reader>>(app.error());
        if (!reader && reader.error().code == Errc::unsupported) {
            fmt::print(stderr,
                       "host_renderer: --api=vulkan needs a Vulkan driver that exports and imports images "
                       "(VK_KHR_external_memory_fd with DMA-BUF or OPAQUE_FD memory); this machine's {}: {}\n",
                       app ? app->name() : "Vulkan", reader.error().message);
            return unsupported_exit_code;
        }
        session = reader ? serve(options, program, *app, **reader, report) : Result<void>(reader.error());
    }
    if (!session) fmt::print(stderr, "host_renderer: {}\n", session.error());
    bool png_ok = false;
    if (!report.screen.empty()) {
        auto png = write_png_rgba(options.output, report.screen_size.width, report.screen_size.height, report.screen);
        if (!png) fmt::print(stderr, "host_renderer: {}\n", png.error());
        png_ok = png.has_value();
    }
    auto fds_after = list_open_fds();
    const std::size_t after = fds_after ? fds_after->size() : 0;
    fmt::print("host_renderer: images: {}; frames read through {}\n", report.images.empty() ? "none" : report.images,
               report.method.empty() ? "nothing" : report.method);
    if (!report.renderer_end.empty()) fmt::print("host_renderer: {}\n", report.renderer_end);
    if (png_ok) {
        fmt::print("host_renderer: wrote {} ({}x{}, frame {})\n", options.output, report.screen_size.width,
                   report.screen_size.height, report.screen_frame);
    }
    const auto lost = static_cast<std::int64_t>(report.presented - report.received - report.skipped);
    std::vector<std::string> failed;
    const auto expect = [&failed](bool ok, std::string what) {
        if (!ok) failed.push_back(std::move(what));
    };
    expect(session.has_value(), "the session failed (see above)");
    expect(report.presented == options.frames, "the renderer presented another number of frames than --frames");
    expect(lost == 0, "presents were lost");
    expect(report.shown > 0, "no frame was shown");
    expect(report.verified == report.shown && report.mismatched_pixels == 0, "shown frames had wrong pixels");
    expect(report.renderer_ok, "the renderer did not exit 0");
    expect(png_ok, "no PNG written");
    expect(fds_after && after == fds_before->size(), "the host leaked fds");
    for (const std::string& reason : failed) fmt::print(stderr, "host_renderer: FAILED: {}\n", reason);
    fmt::print(
        "summary: api=vulkan frames={} presented={} received={} skipped={} shown={} verified={} acquire_fences={} "
        "released={} lost={} images_imported={} mismatched_pixels={} renderers=1 fds_before={} fds_after={} "
        "result={}\n",
        options.frames, report.presented, report.received, report.skipped, report.shown, report.verified,
        report.acquire_fences, report.released, lost, report.imported, report.mismatched_pixels, fds_before->size(),
        fds_after ? fmt::format("{}", after) : "unknown", failed.empty() ? "ok" : "fail");
    return failed.empty() ? 0 : 1;
}

}  // namespace host_renderer
