// Renderer mode with --api=vulkan: the child draws with Vulkan into images it exports itself
// (texshare::vulkan::Exporter), shares them once on the FrameChannel (fd 3) and presents each
// frame with the fence of the submit that drew it. Each frame: take the image the host
// released longest ago, wait on its release fence (as a semaphore), acquire it back from the
// host, run the pattern's compute shader (tests/support/vulkan_pattern.hpp), hand it to the
// host again, present.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "modes.hpp"
#include "open_fds.hpp"
#include "support/vulkan_pattern.hpp"
#include "tally.hpp"
#include "texshare/child_process.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/vulkan/exporter.hpp"
#include "vulkan_app.hpp"
#include "vulkan_sync.hpp"

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;
namespace vk = texshare::vulkan;

constexpr int channel_fd = texshare::first_inherited_fd;
constexpr int tally_fd = texshare::first_inherited_fd + 1;
constexpr std::size_t image_count = 3;

// The renderer's images, made exportable by texshare (which picks the handle type the driver
// can export). The only place the renderer uses vulkan::Exporter.
Result<std::vector<vk::Exporter::Exported>> export_images(const VulkanApp& app, Size size) {
    auto exporter = vk::Exporter::create(app.handles(), {.usage = shared_image_usage});
    if (!exporter) return std::move(exporter).error();
    std::vector<vk::Exporter::Exported> images;
    for (std::size_t i = 0; i < image_count; ++i) {
        auto exported = exporter->allocate(size.width, size.height, shared_image_fourcc);
        if (!exported) return std::move(exported).error();
        images.push_back(std::move(*exported));
    }
    return images;
}

// One shared image and what its last frame's submit uses, kept until that submit is done.
struct Slot {
    std::uint64_t id = 0;
    vk::ExportedImage image;
    std::uint32_t peer_family = VK_QUEUE_FAMILY_EXTERNAL;  // VulkanApp::peer_queue_family of its backing
    bool drawn_before = false;  // false: contents undefined, nothing to take back from the host
    VkCommandBuffer commands = VK_NULL_HANDLE;
    VkFence done = VK_NULL_HANDLE;  // signalled when the last submit for this image finished
    vk::Semaphore wait;
    vk::Semaphore signal;
};

// Everything the renderer made on its device, destroyed in order before the VulkanApp.
struct Frames {
    const VulkanApp* app = nullptr;
    std::vector<Slot> slots;
    std::optional<texshare::testing::PatternRenderer> pattern;

    ~Frames() {
        if (app == nullptr) return;
        vkDeviceWaitIdle(app->device());
        for (Slot& slot : slots) {
            if (pattern) pattern->forget(slot.image.image());
            if (slot.done != VK_NULL_HANDLE) vkDestroyFence(app->device(), slot.done, nullptr);
            app->free_commands(slot.commands);
        }
    }
};

void barrier(VkCommandBuffer c, VkImage image, VkImageLayout from, std::uint32_t src_family, std::uint32_t dst_family,
             VkAccessFlags src_access, VkAccessFlags dst_access) {
    const VkImageMemoryBarrier b{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER,
                                 nullptr,
                                 src_access,
                                 dst_access,
                                 from,
                                 VK_IMAGE_LAYOUT_GENERAL,
                                 src_family,
                                 dst_family,
                                 image,
                                 {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
    vkCmdPipelineBarrier(c, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 0, nullptr, 0,
                         nullptr, 1, &b);
}

// Draws frame `frame` into the slot's image after the host's release fence, and submits.
Result<void> draw(const VulkanApp& app, const vk::Fences& fences, texshare::testing::PatternRenderer& pattern,
                  Slot& slot, texshare::FrameSender::FreeImage& free_image, std::uint64_t frame) {
    const VkDevice device = app.device();
    const auto timeout_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(vulkan_patience).count());
    if (VkResult r = vkWaitForFences(device, 1, &slot.done, VK_TRUE, timeout_ns); r != VK_SUCCESS) {
        return vk_error("vkWaitForFences (the image's previous frame)", r);
    }
    vkResetFences(device, 1, &slot.done);
    auto wait = wait_for_host(fences, free_image);
    if (!wait) return std::move(wait).error();
    auto signal = fences.signal_semaphore();
    if (!signal) return std::move(signal).error();
    slot.wait = std::move(*wait);  // the previous frame's are done (slot.done): destroyed here
    slot.signal = std::move(*signal);
    VkCommandBuffer c = slot.commands;
    vkResetCommandBuffer(c, 0);
    const VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, nullptr,
                                         VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, nullptr};
    vkBeginCommandBuffer(c, &begin);
    const VkImage image = slot.image.image();
    const std::uint32_t ours = app.queue_family();
    const std::uint32_t peer = slot.peer_family;
    // Back from the host (a queue family ownership transfer), or out of UNDEFINED the first time.
    if (slot.drawn_before) {
        barrier(c, image, VK_IMAGE_LAYOUT_GENERAL, peer, ours, 0, VK_ACCESS_SHADER_WRITE_BIT);
    } else {
        barrier(c, image, VK_IMAGE_LAYOUT_UNDEFINED, VK_QUEUE_FAMILY_IGNORED, VK_QUEUE_FAMILY_IGNORED, 0,
                VK_ACCESS_SHADER_WRITE_BIT);
    }
    auto recorded = pattern.record(c, image, slot.image.format(), slot.image.extent(), static_cast<std::uint32_t>(frame));
    barrier(c, image, VK_IMAGE_LAYOUT_GENERAL, ours, peer, VK_ACCESS_SHADER_WRITE_BIT, 0);  // to the host
    if (VkResult r = vkEndCommandBuffer(c); r != VK_SUCCESS) return vk_error("vkEndCommandBuffer", r);
    if (!recorded) return recorded;
    const VkPipelineStageFlags stage = VK_PIPELINE_STAGE_ALL_COMMANDS_BIT;
    const VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO, nullptr, slot.wait.count(), slot.wait.data(), &stage,
                              1, &c, slot.signal.count(), slot.signal.data()};
    if (VkResult r = vkQueueSubmit(app.queue(), 1, &submit, slot.done); r != VK_SUCCESS) {
        return vk_error("vkQueueSubmit", r);
    }
    slot.drawn_before = true;
    return {};
}

Result<void> render(const VulkanApp& app, const vk::Fences& fences, texshare::FrameSender& sender, Tally& tally,
                    const Options& options) {
    auto exported = export_images(app, options.size);
    if (!exported) return std::move(exported).error();
    Frames frames;
    frames.app = &app;
    auto pattern = texshare::testing::PatternRenderer::create(app.device(), image_count);
    if (!pattern) return std::move(pattern).error();
    frames.pattern.emplace(std::move(*pattern));
    const texshare::DmaBufImage& first = (*exported)[0].image;
    fmt::print("host_renderer (renderer {}): Vulkan on {}: {} images exported as {}, {}, {}; fences {}\n", ::getpid(),
               app.name(), image_count, texshare::to_string(first.backing()), texshare::format_name(first.fourcc()),
               texshare::modifier_name(first.layout().modifier), describe(fences));
    std::fflush(stdout);
    for (auto& image : *exported) {
        Slot slot;
        slot.image = std::move(image.vulkan);
        slot.peer_family = app.peer_queue_family(image.image.backing());
        auto commands = app.allocate_commands();
        if (!commands) return std::move(commands).error();
        slot.commands = *commands;
        const VkFenceCreateInfo signalled{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO, nullptr, VK_FENCE_CREATE_SIGNALED_BIT};
        if (VkResult r = vkCreateFence(app.device(), &signalled, nullptr, &slot.done); r != VK_SUCCESS) {
            slot.done = VK_NULL_HANDLE;
            app.free_commands(slot.commands);
            return vk_error("vkCreateFence", r);
        }
        frames.slots.push_back(std::move(slot));
        auto id = sender.add_image(std::move(image.image));  // shared once; the host imports it now
        if (!id) return std::move(id).error();
        frames.slots.back().id = *id;
    }
    while (sender.presented_count() < options.frames) {
        auto free_image = sender.wait_for_free_image(vulkan_patience);
        tally.set_released(sender.released_count());
        if (!free_image) return std::move(free_image).error();
        Slot* slot = nullptr;
        for (Slot& s : frames.slots) slot = s.id == free_image->id ? &s : slot;
        if (slot == nullptr) return make_error(Errc::protocol, "image {:#x} is not one of ours", free_image->id);
        const std::uint64_t frame = sender.next_frame_number();
        if (auto drawn = draw(app, fences, *frames.pattern, *slot, *free_image, frame);
            !drawn) {
            return make_error(drawn.error().code, "frame {} into image {:#x}: {}", frame, slot->id,
                              drawn.error().message);
        }
        tally.set_presented(sender.presented_count() + 1);
        auto presented = present_after(sender, slot->id, fences, app.queue(), slot->signal);
        if (!presented) return std::move(presented).error();
    }
    return {};
}

}  // namespace

int run_vulkan_renderer(const Options& options) {
    std::string unexpected;
    if (auto fds = list_open_fds(); fds) {
        for (const int fd : *fds) {
            if (fd > tally_fd) unexpected += fmt::format(" {}", fd);
        }
    }
    auto socket = texshare::take_inherited_fd(channel_fd);
    auto tally = Tally::adopt(tally_fd);
    // The device first: the fences it can make decide what the sender accepts.
    auto app = VulkanApp::create();
    auto fences = app ? make_fences(*app, options.vulkan_cpu_wait) : Result<vk::Fences>(app.error());
    if (!fences) {
        fmt::print(stderr, "host_renderer (renderer {}): {}\n", ::getpid(), fences.error());
        return 1;  // the host sees the channel close
    }
    auto channel = socket ? texshare::FrameChannel::adopt(std::move(*socket))
                          : Result<texshare::FrameChannel>(socket.error());
    auto sender = channel ? texshare::FrameSender::create(std::move(*channel), sender_options(*fences))
                          : Result<texshare::FrameSender>(channel.error());
    if (!sender || !tally) {
        fmt::print(stderr, "host_renderer (renderer): {}\n", sender ? tally.error() : sender.error());
        return 2;
    }
    const auto rendered = render(*app, *fences, *sender, *tally, options);
    if (!rendered) fmt::print(stderr, "host_renderer (renderer {}): {}\n", ::getpid(), rendered.error());
    sender->close();  // bye: the host keeps showing the last frame
    if (!unexpected.empty())
        fmt::print(stderr, "host_renderer (renderer): inherited unexpected fds:{}\n", unexpected);
    return rendered && unexpected.empty() ? 0 : 1;
}

}  // namespace host_renderer
