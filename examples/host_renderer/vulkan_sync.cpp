#include "vulkan_sync.hpp"

#include <fmt/format.h>

namespace host_renderer {

using texshare::Result;
using texshare::vulkan::Fences;
using texshare::vulkan::Semaphore;

Result<Fences> make_fences(const VulkanApp& app, bool cpu_wait) {
    return Fences::create(app.handles(), {.allow_sync_fd = !cpu_wait});
}

std::string describe(const Fences& fences) {
    if (fences.reason().empty()) return std::string(to_string(fences.mode()));
    return fmt::format("{} ({})", to_string(fences.mode()), fences.reason());
}

// Both modes send sync_files or nothing: the endpoints' defaults.
texshare::FrameReceiverOptions receiver_options(const Fences&) { return {.keep_last_frame = true}; }
texshare::FrameSenderOptions sender_options(const Fences&) { return {}; }

Result<Semaphore> wait_for_renderer(const Fences& fences, texshare::FrameReceiver& receiver, bool& had_fence) {
    texshare::UniqueFd fence = receiver.take_acquire_fence();
    had_fence = fence.valid();
    return fences.wait_semaphore(std::move(fence), vulkan_patience);
}

Result<Semaphore> wait_for_host(const Fences& fences, texshare::FrameSender::FreeImage& free_image) {
    return fences.wait_semaphore(std::move(free_image.release_fence), vulkan_patience);
}

Result<std::uint64_t> present_after(texshare::FrameSender& sender, std::uint64_t id, const Fences& fences,
                                    VkQueue queue, const Semaphore& signalled) {
    auto fence = fences.fence_for_peer(queue, signalled);
    if (!fence) return std::move(fence).error();
    return sender.present(id, fence->borrow());
}

Result<void> release_after(texshare::FrameReceiver& receiver, std::uint64_t id, const Fences& fences, VkQueue queue,
                           const Semaphore& signalled) {
    auto fence = fences.fence_for_peer(queue, signalled);
    if (!fence) return std::move(fence).error();
    return receiver.release(id, fence->borrow());
}

}  // namespace host_renderer
