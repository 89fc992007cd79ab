// texshare::vulkan::Fences: sync_files as semaphores (SYNC_FD), OPAQUE_FD semaphores as the
// frame protocol's second fence kind, or the CPU-wait fallback.
#include "texshare/vulkan/fence.hpp"

#include <linux/sync_file.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "texshare/detail/fence_probe.hpp"
#include "texshare/sync_file.hpp"

namespace texshare::vulkan {

namespace {

constexpr VkExternalSemaphoreHandleTypeFlagBits sync_fd_type = VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_SYNC_FD_BIT;
constexpr VkExternalSemaphoreHandleTypeFlagBits opaque_fd_type = VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_OPAQUE_FD_BIT;

constexpr std::string_view handle_type_name(VkExternalSemaphoreHandleTypeFlagBits type) {
    return type == sync_fd_type ? "SYNC_FD" : "OPAQUE_FD";
}

bool enabled(const DeviceHandles& handles, std::string_view name) {
    return std::ranges::any_of(handles.enabled_extensions,
                               [&](const char* e) { return e != nullptr && name == e; });
}

// Why binary semaphores of `type` cannot be imported and exported; "" if they can (Vulkan
// spec, "External Semaphore Handle Types": import and export are separate features,
// reported per handle type by vkGetPhysicalDeviceExternalSemaphoreProperties for a binary
// semaphore when no VkSemaphoreTypeCreateInfo is chained).
std::string semaphore_refusal(const DeviceHandles& handles, VkExternalSemaphoreHandleTypeFlagBits type) {
    if (handles.api_version < VK_API_VERSION_1_1) {
        return "the instance is below Vulkan 1.1 (vkGetPhysicalDeviceExternalSemaphoreProperties)";
    }
    VkPhysicalDeviceProperties properties{};
    vkGetPhysicalDeviceProperties(handles.physical_device, &properties);
    if (properties.apiVersion < VK_API_VERSION_1_1) return "the device is below Vulkan 1.1";
    if (!enabled(handles, VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME)) {
        std::uint32_t count = 0;
        vkEnumerateDeviceExtensionProperties(handles.physical_device, nullptr, &count, nullptr);
        std::vector<VkExtensionProperties> offered(count);
        vkEnumerateDeviceExtensionProperties(handles.physical_device, nullptr, &count, offered.data());
        const bool offers = std::ranges::any_of(offered, [](const VkExtensionProperties& p) {
            return std::string_view(p.extensionName) == VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME;
        });
        return fmt::format("{} is not enabled ({})", VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME,
                           offers ? "the device offers it" : "the device does not offer it");
    }
    const VkPhysicalDeviceExternalSemaphoreInfo info{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_SEMAPHORE_INFO, nullptr,
                                                     type};
    VkExternalSemaphoreProperties external{VK_STRUCTURE_TYPE_EXTERNAL_SEMAPHORE_PROPERTIES, nullptr, 0, 0, 0};
    vkGetPhysicalDeviceExternalSemaphoreProperties(handles.physical_device, &info, &external);
    constexpr VkExternalSemaphoreFeatureFlags both =
        VK_EXTERNAL_SEMAPHORE_FEATURE_IMPORTABLE_BIT | VK_EXTERNAL_SEMAPHORE_FEATURE_EXPORTABLE_BIT;
    if ((external.externalSemaphoreFeatures & both) != both) {
        return fmt::format("{} semaphores: externalSemaphoreFeatures {:#x}, import and export need {:#x}",
                           handle_type_name(type), external.externalSemaphoreFeatures, both);
    }
    return "";
}

}  // namespace

ModeChoice choose_mode(const SemaphoreSupport& support, const FencesOptions& options) {
    const std::string no_sync_fd = options.allow_sync_fd ? support.sync_fd_refusal : "SYNC_FD not allowed (Options)";
    if (no_sync_fd.empty()) return {SyncMode::sync_fd, ""};
    if (!options.allow_opaque_fd) {
        return {SyncMode::cpu_wait, no_sync_fd + "; OPAQUE_FD not allowed (Options::allow_opaque_fd: only for a peer "
                                                 "on the same device and driver)"};
    }
    if (support.opaque_fd_refusal.empty()) return {SyncMode::opaque_fd, no_sync_fd};
    return {SyncMode::cpu_wait, no_sync_fd + "; " + support.opaque_fd_refusal};
}

Result<Fences> Fences::create(const DeviceHandles& handles, Options options) {
    if (handles.instance == VK_NULL_HANDLE || handles.physical_device == VK_NULL_HANDLE ||
        handles.device == VK_NULL_HANDLE) {
        return make_error(Errc::invalid_argument, "Fences: a null instance, physical device or device");
    }
    Fences fences;
    fences.device_ = handles.device;
    SemaphoreSupport support;
    if (options.allow_sync_fd) support.sync_fd_refusal = semaphore_refusal(handles, sync_fd_type);
    if (options.allow_opaque_fd) support.opaque_fd_refusal = semaphore_refusal(handles, opaque_fd_type);
    ModeChoice choice = choose_mode(support, options);
    fences.reason_ = std::move(choice.reason);
    if (choice.mode == SyncMode::cpu_wait) return fences;
    fences.import_fd_ = reinterpret_cast<PFN_vkImportSemaphoreFdKHR>(
        vkGetDeviceProcAddr(handles.device, "vkImportSemaphoreFdKHR"));
    fences.get_fd_ = reinterpret_cast<PFN_vkGetSemaphoreFdKHR>(vkGetDeviceProcAddr(handles.device, "vkGetSemaphoreFdKHR"));
    if (fences.import_fd_ == nullptr || fences.get_fd_ == nullptr) {
        return make_error(Errc::library, "vkGetDeviceProcAddr gives no {}",
                          fences.import_fd_ == nullptr ? "vkImportSemaphoreFdKHR" : "vkGetSemaphoreFdKHR");
    }
    fences.mode_ = choice.mode;
    return fences;
}

Result<Semaphore> Fences::wait_semaphore(PeerFence peer, std::chrono::milliseconds cpu_timeout) const {
    UniqueFd fence = std::move(peer.fd);
    if (!fence.valid()) return Semaphore();
    if (peer.kind == FenceKind::vulkan_opaque_semaphore) return import_opaque(std::move(fence));
    if (peer.kind != FenceKind::sync_file) {
        return make_error(Errc::invalid_argument, "wait_semaphore: fence fd {} of kind {} ({}): not a fence kind",
                          fence.get(), static_cast<unsigned>(peer.kind), to_string(peer.kind));
    }
    if (mode_ != SyncMode::sync_fd) {  // cpu_wait, and a sync_file under opaque_fd
        if (auto waited = wait_fence(fence.borrow(), cpu_timeout); !waited) return std::move(waited).error();
        return Semaphore();
    }
    // Importing anything but a sync_file as SYNC_FD breaks a valid-usage rule
    // (VUID-VkImportSemaphoreFdInfoKHR-fd-01544: the fd must be what its handle type says),
    // and drivers do not all check: Mesa 25's lavapipe accepts an eventfd (measured). SYNC_IOC_FILE_INFO answers only
    // for sync_files (linux/sync_file.h; ENOTTY otherwise).
    sync_file_info file_info{};
    if (::ioctl(fence.get(), SYNC_IOC_FILE_INFO, &file_info) != 0) {
        const int err = errno;
        return make_error(Errc::invalid_argument, "fence fd {} is not a sync_file (SYNC_IOC_FILE_INFO: {})",
                          fence.get(), std::strerror(err));
    }
    return import_temporarily(fence, sync_fd_type);  // a refused sync_file is closed on return
}

Result<Semaphore> Fences::import_opaque(UniqueFd fence) const {
    if (mode_ != SyncMode::opaque_fd) {
        return make_error(Errc::invalid_argument,
                          "wait_semaphore: fence fd {} is an OPAQUE_FD semaphore, which only opaque_fd mode imports "
                          "(this is {}: accept only accepted_fence_kinds() at the endpoint)",
                          fence.get(), to_string(mode_));
    }
    // Drivers need not check what they import (a valid-usage rule is the application's to
    // keep), so what can be checked of the fd is checked first: never hand a pipe, socket,
    // memfd, regular file or DMA-BUF to the driver as a semaphore.
    if (auto kind = detail::require_opaque_semaphore_kind(fence.borrow()); !kind) {
        Error error = make_error(Errc::invalid_argument, "wait_semaphore: {}", kind.error().message);
        detail::close_peer_fd(fence);  // of unproven kind: its close may block (fd_closer.hpp)
        return error;
    }
    auto imported = import_temporarily(fence, opaque_fd_type);
    if (!imported) detail::close_peer_fd(fence);  // refused: still ours, of unproven kind
    return imported;
}

// A new binary semaphore (no flags, as the exporter made its own: the OPAQUE_FD import rule,
// VUID-VkImportSemaphoreFdInfoKHR-handleType-03263/03264) holding `fence` by temporary
// import. On success Vulkan owns the fd (released from `fence`); on failure it stays in
// `fence` for the caller to close (the spec: a failed import leaves the fd with the application).
Result<Semaphore> Fences::import_temporarily(UniqueFd& fence, VkExternalSemaphoreHandleTypeFlagBits type) const {
    const VkSemaphoreCreateInfo info{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, nullptr, 0};
    VkSemaphore raw = VK_NULL_HANDLE;
    if (VkResult r = vkCreateSemaphore(device_, &info, nullptr, &raw); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkCreateSemaphore: {}", result_name(r));
    }
    Semaphore semaphore(device_, raw);
    const VkImportSemaphoreFdInfoKHR import{VK_STRUCTURE_TYPE_IMPORT_SEMAPHORE_FD_INFO_KHR, nullptr, raw,
                                            VK_SEMAPHORE_IMPORT_TEMPORARY_BIT, type, fence.get()};
    if (VkResult r = import_fd_(device_, &import); r != VK_SUCCESS) {
        return make_error(Errc::invalid_argument, "vkImportSemaphoreFdKHR ({}, temporary) of fd {}: {}",
                          handle_type_name(type), fence.get(), result_name(r));
    }
    (void)fence.release();  // Vulkan owns it now (spec, "Importing Semaphore Payloads")
    return semaphore;
}

Result<Semaphore> Fences::signal_semaphore() const {
    if (mode_ == SyncMode::cpu_wait) return Semaphore();
    const VkExternalSemaphoreHandleTypeFlagBits type = mode_ == SyncMode::sync_fd ? sync_fd_type : opaque_fd_type;
    const VkExportSemaphoreCreateInfo exportable{VK_STRUCTURE_TYPE_EXPORT_SEMAPHORE_CREATE_INFO, nullptr,
                                                 static_cast<VkExternalSemaphoreHandleTypeFlags>(type)};
    const VkSemaphoreCreateInfo info{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, &exportable, 0};
    VkSemaphore raw = VK_NULL_HANDLE;
    if (VkResult r = vkCreateSemaphore(device_, &info, nullptr, &raw); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkCreateSemaphore (exportable as {}): {}", handle_type_name(type),
                          result_name(r));
    }
    return Semaphore(device_, raw);
}

Result<PeerFence> Fences::fence_for_peer(VkQueue queue, const Semaphore& signalled) const {
    if (mode_ == SyncMode::cpu_wait) {
        if (queue == VK_NULL_HANDLE) return make_error(Errc::invalid_argument, "fence_for_peer: a null queue");
        if (VkResult r = vkQueueWaitIdle(queue); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkQueueWaitIdle: {}", result_name(r));
        }
        return PeerFence{};
    }
    if (!signalled) {
        return make_error(Errc::invalid_argument, "fence_for_peer: no semaphore ({} mode exports the one the "
                                                  "submit signalled, from signal_semaphore())",
                          to_string(mode_));
    }
    const VkExternalSemaphoreHandleTypeFlagBits type = mode_ == SyncMode::sync_fd ? sync_fd_type : opaque_fd_type;
    const VkSemaphoreGetFdInfoKHR info{VK_STRUCTURE_TYPE_SEMAPHORE_GET_FD_INFO_KHR, nullptr, signalled.get(), type};
    int fd = -1;
    if (VkResult r = get_fd_(device_, &info, &fd); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkGetSemaphoreFdKHR ({}): {}", handle_type_name(type), result_name(r));
    }
    // fd -1 is a valid SYNC_FD export (an already signalled payload; spec): no fence to send.
    // OPAQUE_FD always gives an fd (a reference to the payload).
    if (fd < 0) return PeerFence{};
    return PeerFence{UniqueFd(fd), type == sync_fd_type ? FenceKind::sync_file : FenceKind::vulkan_opaque_semaphore};
}

}  // namespace texshare::vulkan
