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
// - opaque_fd: where the driver has no SYNC_FD semaphores but binary semaphores that import
//   and export VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_OPAQUE_FD_BIT (NVIDIA), and only when the
//   application allows it (Options::allow_opaque_fd): an OPAQUE_FD payload means something
//   only to the same driver on the same device (Vulkan spec, "External Semaphore Handle
//   Types": deviceUUID and driverUUID must match), which the application knows from
//   negotiation, not texshare from the fd. The fence travels as a second fence kind
//   (FenceKind::vulkan_opaque_semaphore: the receiving endpoint must accept it, see
//   accepted_fence_kinds()). fence_for_peer() exports the signalled semaphore's payload
//   (vkGetSemaphoreFdKHR, OPAQUE_FD: reference transference, so the fd refers to the
//   payload itself, which the peer's wait then unsignals); wait_semaphore() imports a
//   received one temporarily into a new semaphore (VK_SEMAPHORE_IMPORT_TEMPORARY_BIT: the
//   import lasts until the one wait that consumes it, then the semaphore's own payload is
//   back; spec, "Importing Semaphore Payloads"). A sync_file arriving in this mode is waited
//   on by the CPU (poll), as in cpu_wait.
// - cpu_wait: the fallback, named as such, where neither mode can be used (Debian 12's
//   lavapipe; Mesa 25's lavapipe without a DRM device; NVIDIA unless OPAQUE_FD is allowed). A
//   received sync_file is waited on by the CPU (poll, with the caller's timeout) before the
//   submit, and fence_for_peer() waits for the queue to go idle (vkQueueWaitIdle) and sends
//   no fence: the work is done when present() or release() is called, like egl's `finish`
//   mode. Slower, never torn.
// In cpu_wait mode wait_semaphore() and signal_semaphore() give empty Semaphores, whose
// count() is 0: put count()/data() in VkSubmitInfo, pass fence_for_peer()'s PeerFence to
// present()/release() with its kind, and the same code serves every mode.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <vulkan/vulkan.h>

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "texshare/frame/fence_kind.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"
#include "texshare/vulkan/device.hpp"

namespace texshare::vulkan {

enum class SyncMode { sync_fd, opaque_fd, cpu_wait };

constexpr std::string_view to_string(SyncMode mode) noexcept {
    switch (mode) {
        case SyncMode::sync_fd:
            return "sync_fd";
        case SyncMode::opaque_fd:
            return "opaque_fd";
        case SyncMode::cpu_wait:
            return "cpu_wait";
    }
    return "unknown";
}

// What the driver offers for binary semaphores of one external handle type
// (vkGetPhysicalDeviceExternalSemaphoreProperties), and why one cannot be used ("" if it can).
struct SemaphoreSupport {
    std::string sync_fd_refusal;  // "" when SYNC_FD semaphores import and export
    std::string opaque_fd_refusal;  // "" when OPAQUE_FD semaphores import and export
};

struct FencesOptions {
    // false: no sync_fd even where the driver has SYNC_FD semaphores (to test the others).
    bool allow_sync_fd = true;
    // true: opaque_fd where the driver has no SYNC_FD (or it is not allowed) but OPAQUE_FD
    // binary semaphores. Set it only where the peer is on the same device and driver
    // (negotiation's deviceUUID and driverUUID): no other can import the fence.
    bool allow_opaque_fd = false;
};

// The mode Fences::create picks from what the driver supports and what the application
// allows, with the reason for anything but sync_fd (empty under sync_fd). Pure: the rule
// alone, for tests and for an application that wants to know before creating Fences.
struct ModeChoice {
    SyncMode mode = SyncMode::cpu_wait;
    std::string reason;
};
ModeChoice choose_mode(const SemaphoreSupport& support, const FencesOptions& options);

// A fence to send to the peer, or one received from it: the fd and what it is. Give fd and
// kind to FrameSender::present / FrameReceiver::release; build one from what
// FrameReceiver::take_acquire_fence / acquire_fence_kind (or FrameSender::FreeImage) gave.
struct PeerFence {
    UniqueFd fd;
    FenceKind kind = FenceKind::none;

    bool valid() const noexcept { return fd.valid(); }
    BorrowedFd borrow() const noexcept { return fd.borrow(); }
};

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
    using Options = FencesOptions;

    // Chooses the mode once from the application's handles and options (choose_mode(): what
    // is missing for sync_fd, and for opaque_fd where allowed, is kept in reason()) and loads
    // vkImportSemaphoreFdKHR and vkGetSemaphoreFdKHR for it.
    // Errc::invalid_argument for a null handle; Errc::library where the loader does not give
    // an entry point of VK_KHR_external_semaphore_fd that the device has enabled.
    static Result<Fences> create(const DeviceHandles& handles, Options options);
    static Result<Fences> create(const DeviceHandles& handles) { return create(handles, Options{}); }

    SyncMode mode() const noexcept { return mode_; }
    // Why sync_fd was not chosen ("VK_KHR_external_semaphore_fd is not enabled", "SYNC_FD
    // semaphores: externalSemaphoreFeatures 0x0", ...), and under cpu_wait why opaque_fd was
    // not either; empty under sync_fd.
    const std::string& reason() const noexcept { return reason_; }
    // The fence kinds wait_semaphore() can wait on in this mode: sync_file always (as a
    // semaphore under sync_fd, by the CPU otherwise), and vulkan_opaque_semaphore under
    // opaque_fd. Put it in the endpoint's Options::accepted_fence_kinds.
    FenceKindSet accepted_fence_kinds() const noexcept {
        return mode_ == SyncMode::opaque_fd ? FenceKind::sync_file | FenceKind::vulkan_opaque_semaphore
                                            : FenceKindSet(FenceKind::sync_file);
    }

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
    // opaque_fd: a fence of kind vulkan_opaque_semaphore is checked to be of a kind a driver
    // exports (a character device or the anonymous inode: detail/fence_probe.hpp; a pipe,
    // socket, memfd, regular file or DMA-BUF is Errc::invalid_argument, closed here) and
    // imported temporarily as OPAQUE_FD into a new semaphore (Vulkan owns the fd on success;
    // a refused import, Errc::invalid_argument naming the VkResult, closes it here). The
    // import's rules (spec, VkImportSemaphoreFdInfoKHR): the fd must obey the "external
    // semaphore handle types compatibility" table, which for OPAQUE_FD asks the same
    // driverUUID and deviceUUID (VUID-VkImportSemaphoreFdInfoKHR-fd-01544), and the new
    // semaphore's flags and type must match the exported one's, binary with no flags
    // (handleType-03263, -03264); OPAQUE_FD may be imported temporarily or permanently
    // (table "Handle Types Supported by VkImportSemaphoreFdInfoKHR": reference transference).
    // The caller's negotiation is what makes the first rule true. A sync_file in this mode is waited
    // on by the CPU. A vulkan_opaque_semaphore in any other mode is Errc::invalid_argument
    // (closed): the endpoint should not have accepted it (accepted_fence_kinds()).
    Result<Semaphore> wait_semaphore(PeerFence fence, std::chrono::milliseconds cpu_timeout) const;
    // The same for a sync_file (FrameReceiver::take_acquire_fence with the default accepted kinds).
    Result<Semaphore> wait_semaphore(UniqueFd fence, std::chrono::milliseconds cpu_timeout) const {
        const FenceKind kind = fence.valid() ? FenceKind::sync_file : FenceKind::none;
        return wait_semaphore(PeerFence{std::move(fence), kind}, cpu_timeout);
    }

    // The semaphore the application's submit signals when it is done with an image, for
    // fence_for_peer(): exportable as SYNC_FD under sync_fd, as OPAQUE_FD under opaque_fd
    // (a new one per frame: the exported payload is shared with the peer until its wait);
    // empty under cpu_wait.
    // Errc::library naming the VkResult if vkCreateSemaphore fails.
    Result<Semaphore> signal_semaphore() const;

    // After the submit that signals `signalled` (from signal_semaphore()) on `queue`: the
    // fence to send, with its kind. sync_fd: a sync_file from vkGetSemaphoreFdKHR (a new fd
    // the caller owns; the semaphore is unsignalled again and can be signalled by the next
    // submit). opaque_fd: an OPAQUE_FD fd of the semaphore's payload (kind
    // vulkan_opaque_semaphore; a new fd the caller owns). The export needs OPAQUE_FD in the
    // semaphore's VkExportSemaphoreCreateInfo::handleTypes (VUID-VkSemaphoreGetFdInfoKHR-
    // handleType-01132: signal_semaphore() puts it there); the rules that it be signalled or
    // have a signal pending, and no queue wait on it (handleType-01134, -01135), are for copy
    // transference (SYNC_FD) only. OPAQUE_FD exports by reference, with no side effect on
    // the semaphore: its payload is the peer's too, so `signalled` must not be signalled
    // again while the peer may wait on it, and must outlive the submit that signals it
    // (take a new one per frame). Both: Errc::invalid_argument for an empty semaphore. cpu_wait:
    // vkQueueWaitIdle(queue), and an empty fence (kind none): nothing to send. Errc::library
    // naming the call and VkResult otherwise.
    Result<PeerFence> fence_for_peer(VkQueue queue, const Semaphore& signalled) const;

private:
    Fences() = default;
    Result<Semaphore> import_opaque(UniqueFd fence) const;
    Result<Semaphore> import_temporarily(UniqueFd& fence, VkExternalSemaphoreHandleTypeFlagBits type) const;

    VkDevice device_ = VK_NULL_HANDLE;
    SyncMode mode_ = SyncMode::cpu_wait;
    std::string reason_;
    PFN_vkImportSemaphoreFdKHR import_fd_ = nullptr;
    PFN_vkGetSemaphoreFdKHR get_fd_ = nullptr;
};

}  // namespace texshare::vulkan
