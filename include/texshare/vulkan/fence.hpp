// Fences for the frame protocol, made and waited on with Vulkan.
//
// Use a Fences object around the application's queue submits on shared images: before the
// submit that reads (or renders into) an image the peer used, wait_semaphore() turns the
// fence that came with it into a semaphore to wait on; after the submit that rendered (or
// read), fence_for_peer() gives the fence to send with present (or release). How depends
// on the driver, chosen once by Fences::create() (like egl::choose_sync_mode):
// - sync_fd: VK_KHR_external_semaphore_fd enabled and binary semaphores that import and
//   export VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_SYNC_FD_BIT
//   (vkGetPhysicalDeviceExternalSemaphoreProperties). A received sync_file is imported
//   temporarily (VK_SEMAPHORE_IMPORT_TEMPORARY_BIT: the spec allows only temporary SYNC_FD
//   imports) into a new semaphore the submit waits on: the GPU waits, not the CPU. The
//   application signals a semaphore from signal_semaphore() in its submit, and
//   vkGetSemaphoreFdKHR exports that signal as a sync_file (which also unsignals it, so it
//   may be reused frame after frame; Debian 12's validation layer, 1.3.239, misses that and
//   reports QueueForwardProgress, so texshare's tests take a new one per frame).
// - cpu_wait: the fallback where the driver has no SYNC_FD semaphores (Debian 12's lavapipe;
//   NVIDIA, whose OPAQUE_FD semaphores are a later step). A received fence is waited on by
//   the CPU (poll, with the caller's timeout) before the submit, and fence_for_peer() waits
//   for the queue to go idle (vkQueueWaitIdle) and sends no fence: the work is done when
//   present() or release() is called, like egl's `finish` mode. Slower, never torn.
// In cpu_wait mode wait_semaphore() and signal_semaphore() give empty Semaphores, whose
// count() is 0: put count()/data() in VkSubmitInfo and the same code serves both modes.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <vulkan/vulkan.h>

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"
#include "texshare/vulkan/device.hpp"

namespace texshare::vulkan {

enum class SyncMode { sync_fd, cpu_wait };

constexpr std::string_view to_string(SyncMode mode) noexcept {
    return mode == SyncMode::sync_fd ? "sync_fd" : "cpu_wait";
}

// A VkSemaphore texshare made, destroyed with this object (after every submit that uses it
// has completed: the spec forbids destroying a semaphore a pending batch waits on or
// signals). Empty (count() 0) where there is nothing to wait on or signal.
class Semaphore {
public:
    Semaphore() = default;
    Semaphore(VkDevice device, VkSemaphore semaphore) noexcept : device_(device), semaphore_(semaphore) {}
    Semaphore(Semaphore&& other) noexcept { *this = std::move(other); }
    Semaphore& operator=(Semaphore&& other) noexcept {
        if (this != &other) {
            reset();
            device_ = std::exchange(other.device_, VK_NULL_HANDLE);
            semaphore_ = std::exchange(other.semaphore_, VK_NULL_HANDLE);
        }
        return *this;
    }
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;
    ~Semaphore() { reset(); }
    void reset() noexcept {
        if (semaphore_ != VK_NULL_HANDLE) vkDestroySemaphore(device_, semaphore_, nullptr);
        semaphore_ = VK_NULL_HANDLE;
    }

    VkSemaphore get() const noexcept { return semaphore_; }
    explicit operator bool() const noexcept { return semaphore_ != VK_NULL_HANDLE; }
    // For VkSubmitInfo's wait or signal arrays: 0 or 1 semaphores.
    std::uint32_t count() const noexcept { return semaphore_ != VK_NULL_HANDLE ? 1U : 0U; }
    const VkSemaphore* data() const noexcept { return semaphore_ != VK_NULL_HANDLE ? &semaphore_ : nullptr; }

private:
    VkDevice device_ = VK_NULL_HANDLE;
    VkSemaphore semaphore_ = VK_NULL_HANDLE;
};

class Fences {
public:
    struct Options {
        // false: cpu_wait even where the driver has SYNC_FD semaphores (to test the fallback).
        bool allow_sync_fd = true;
    };

    // Chooses the mode once from the application's handles (what is missing for sync_fd is
    // kept in reason()) and loads vkImportSemaphoreFdKHR and vkGetSemaphoreFdKHR for it.
    // Errc::invalid_argument for a null handle; Errc::library where the loader does not give
    // an entry point of VK_KHR_external_semaphore_fd that the device has enabled.
    static Result<Fences> create(const DeviceHandles& handles, Options options);
    static Result<Fences> create(const DeviceHandles& handles) { return create(handles, Options{}); }

    SyncMode mode() const noexcept { return mode_; }
    // Why cpu_wait was chosen ("VK_KHR_external_semaphore_fd is not enabled", "SYNC_FD
    // semaphores: externalSemaphoreFeatures 0x0", ...); empty under sync_fd.
    const std::string& reason() const noexcept { return reason_; }

    // Before the submit that uses an image the peer used: `fence` (a sync_file from the
    // peer, or empty for none) as a semaphore the submit waits on. sync_fd: a new
    // semaphore holding the fence by temporary import; Vulkan takes the fd on success, and on
    // failure it is closed here: Errc::invalid_argument for an fd that is not a sync_file
    // (SYNC_IOC_FILE_INFO refuses it; checked first, since some drivers import anything) or
    // that the driver refuses (naming the VkResult). cpu_wait: waits on the CPU until the fence signals
    // (Errc::timed_out after cpu_timeout, the fd closed either way) and gives an empty
    // Semaphore. An empty fence gives an empty Semaphore in both modes. Under sync_fd no
    // timeout applies: a peer's fence that never signals holds the submit (and the queue
    // behind it) until the peer's driver signals or errors it; where a peer is not trusted
    // to signal, wait_fence() (sync_file.hpp) with a timeout first.
    Result<Semaphore> wait_semaphore(UniqueFd fence, std::chrono::milliseconds cpu_timeout) const;

    // The semaphore the application's submit signals when it is done with an image, for
    // fence_for_peer(): exportable as SYNC_FD under sync_fd; empty under cpu_wait.
    // Errc::library naming the VkResult if vkCreateSemaphore fails.
    Result<Semaphore> signal_semaphore() const;

    // After the submit that signals `signalled` (from signal_semaphore()) on `queue`: the
    // fence to send. sync_fd: a sync_file from vkGetSemaphoreFdKHR (a new fd the caller
    // owns; the semaphore is unsignalled again and can be signalled by the next submit;
    // Errc::invalid_argument for an empty semaphore). cpu_wait: vkQueueWaitIdle(queue), and
    // an empty fd: nothing to send. Errc::library naming the call and VkResult otherwise.
    Result<UniqueFd> fence_for_peer(VkQueue queue, const Semaphore& signalled) const;

private:
    Fences() = default;

    VkDevice device_ = VK_NULL_HANDLE;
    SyncMode mode_ = SyncMode::cpu_wait;
    std::string reason_;
    PFN_vkImportSemaphoreFdKHR import_fd_ = nullptr;
    PFN_vkGetSemaphoreFdKHR get_fd_ = nullptr;
};

}  // namespace texshare::vulkan
