#include "vulkan_sync.hpp"

#include <fmt/format.h>

namespace host_renderer {

using texshare::Result;
using texshare::vulkan::Fences;
using texshare::vulkan::PeerFence;
using texshare::vulkan::Semaphore;

// OPAQUE_FD semaphores (NVIDIA, which has no SYNC_FD) only work between processes on one
// device and driver: both processes pick theirs by the same rule (VulkanApp), and the
// renderer's images, checked on import against this device's UUIDs, prove it before any
// fence is waited on.
Result<Fences> make_fences(const VulkanApp& app, bool cpu_wait) {
    return Fences::create(app.handles(), {.allow_sync_fd = !cpu_wait, .allow_opaque_fd = !cpu_wait});
}

std::string describe(const Fences& fences) {
    if (fences.reason().empty()) return std::string(to_string(fences.mode()));
    return fmt::format("{} ({})", to_string(fences.mode()), fences.reason());
}

texshare::FrameReceiverOptions receiver_options(const Fences& fences) {
    return {.keep_last_frame = true, .accepted_fence_kinds = fences.accepted_fence_kinds()};
}
texshare::FrameSenderOptions sender_options(const Fences& fences) {
    return {.accepted_fence_kinds = fences.accepted_fence_kinds()};
}

Result<Semaphore> wait_for_renderer(const Fences& fences, texshare::FrameReceiver& receiver, bool& had_fence) {
    const texshare::FenceKind kind = receiver.acquire_fence_kind();  // asked before the fence is taken
    texshare::UniqueFd fence = receiver.take_acquire_fence();
    had_fence = fence.valid();
    return fences.wait_semaphore(PeerFence{std::move(fence), kind}, vulkan_patience);
}

Result<Semaphore> wait_for_host(const Fences& fences, texshare::FrameSender::FreeImage& free_image) {
    return fences.wait_semaphore(PeerFence{std::move(free_image.release_fence), free_image.release_fence_kind},
                                 vulkan_patience);
}

Result<std::uint64_t> present_after(texshare::FrameSender& sender, std::uint64_t id, const Fences& fences,
                                    VkQueue queue, const Semaphore& signalled) {
    auto fence = fences.fence_for_peer(queue, signalled);
    if (!fence) return std::move(fence).error();
    if (!fence->valid()) return sender.present(id);  // cpu_wait: nothing to send
    return sender.present(id, fence->borrow(), fence->kind);
}

Result<void> release_after(texshare::FrameReceiver& receiver, std::uint64_t id, const Fences& fences, VkQueue queue,
                           const Semaphore& signalled) {
    auto fence = fences.fence_for_peer(queue, signalled);
    if (!fence) return std::move(fence).error();
    if (!fence->valid()) return receiver.release(id);
    return receiver.release(id, fence->borrow(), fence->kind);
}

}  // namespace host_renderer
