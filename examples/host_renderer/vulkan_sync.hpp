// The example's fences under --api=vulkan, all in one place: which fences each frame
// endpoint accepts, how a fence from the peer becomes a semaphore to wait on, and how the
// semaphore a submit signals becomes the fence sent with present (renderer) or release
// (host). texshare::vulkan::Fences picks the mode once per process (fence.hpp): sync_file
// fences as SYNC_FD semaphores where the driver has them, else the CPU waits (cpu_wait) and
// no fence is sent. A new fence kind (OPAQUE_FD semaphores) changes this file only.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <string>

#include "texshare/frame/protocol.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"
#include "texshare/vulkan/fence.hpp"
#include "vulkan_app.hpp"

namespace host_renderer {

// cpu_wait: the fallback even where the driver has SYNC_FD semaphores (--fences=cpu_wait).
texshare::Result<texshare::vulkan::Fences> make_fences(const VulkanApp& app, bool cpu_wait);

// "sync_fd" or "cpu_wait (why)", for the log.
std::string describe(const texshare::vulkan::Fences& fences);

// The endpoints' options for the fences `fences` sends and waits on.
texshare::FrameReceiverOptions receiver_options(const texshare::vulkan::Fences& fences);
texshare::FrameSenderOptions sender_options(const texshare::vulkan::Fences& fences);

// Host: the current frame's acquire fence (taken from the receiver) as the semaphore the copy
// waits on; empty under cpu_wait, after the CPU waited up to vulkan_patience. `had_fence`
// says whether the frame came with one.
texshare::Result<texshare::vulkan::Semaphore> wait_for_renderer(const texshare::vulkan::Fences& fences,
                                                               texshare::FrameReceiver& receiver, bool& had_fence);

// Renderer: a free image's release fence (taken from it) as the semaphore the next draw into
// it waits on.
texshare::Result<texshare::vulkan::Semaphore> wait_for_host(const texshare::vulkan::Fences& fences,
                                                           texshare::FrameSender::FreeImage& free_image);

// After the submit on `queue` that signals `signalled`: presents image `id` with the fence of
// that submit (renderer). Returns the frame number.
texshare::Result<std::uint64_t> present_after(texshare::FrameSender& sender, std::uint64_t id,
                                              const texshare::vulkan::Fences& fences, VkQueue queue,
                                              const texshare::vulkan::Semaphore& signalled);

// The same for the host's release of the image it read.
texshare::Result<void> release_after(texshare::FrameReceiver& receiver, std::uint64_t id,
                                     const texshare::vulkan::Fences& fences, VkQueue queue,
                                     const texshare::vulkan::Semaphore& signalled);

}  // namespace host_renderer
