// texshare::vulkan::Fences: sync_files as semaphores (SYNC_FD), or the CPU-wait fallback.
#include "texshare/vulkan/fence.hpp"

#include <linux/sync_file.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "texshare/sync_file.hpp"

namespace texshare::vulkan {

namespace {

constexpr VkExternalSemaphoreHandleTypeFlagBits sync_fd_type = VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_SYNC_FD_BIT;

bool enabled(const DeviceHandles& handles, std::string_view name) {
    return std::ranges::any_of(handles.enabled_extensions,
                               [&](const char* e) { return e != nullptr && name == e; });
}

// Why SYNC_FD semaphores cannot be used; "" if they can (Vulkan spec, "External Semaphore
// Handle Types": SYNC_FD is for binary semaphores; import and export are separate features).
std::string sync_fd_refusal(const DeviceHandles& handles) {
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
                                                     sync_fd_type};
    VkExternalSemaphoreProperties external{VK_STRUCTURE_TYPE_EXTERNAL_SEMAPHORE_PROPERTIES, nullptr, 0, 0, 0};
    vkGetPhysicalDeviceExternalSemaphoreProperties(handles.physical_device, &info, &external);
    constexpr VkExternalSemaphoreFeatureFlags both =
        VK_EXTERNAL_SEMAPHORE_FEATURE_IMPORTABLE_BIT | VK_EXTERNAL_SEMAPHORE_FEATURE_EXPORTABLE_BIT;
    if ((external.externalSemaphoreFeatures & both) != both) {
        return fmt::format("SYNC_FD semaphores: externalSemaphoreFeatures {:#x}, import and export need {:#x}",
                           external.externalSemaphoreFeatures, both);
    }
    return "";
}

}  // namespace

Result<Fences> Fences::create(const DeviceHandles& handles, Options options) {
    if (handles.instance == VK_NULL_HANDLE || handles.physical_device == VK_NULL_HANDLE ||
        handles.device == VK_NULL_HANDLE) {
        return make_error(Errc::invalid_argument, "Fences: a null instance, physical device or device");
    }
    Fences fences;
    fences.device_ = handles.device;
    fences.reason_ = options.allow_sync_fd ? sync_fd_refusal(handles) : "SYNC_FD not allowed (Options)";
    if (!fences.reason_.empty()) return fences;
    fences.import_fd_ = reinterpret_cast<PFN_vkImportSemaphoreFdKHR>(
        vkGetDeviceProcAddr(handles.device, "vkImportSemaphoreFdKHR"));
    fences.get_fd_ = reinterpret_cast<PFN_vkGetSemaphoreFdKHR>(vkGetDeviceProcAddr(handles.device, "vkGetSemaphoreFdKHR"));
    if (fences.import_fd_ == nullptr || fences.get_fd_ == nullptr) {
        return make_error(Errc::library, "vkGetDeviceProcAddr gives no {}",
                          fences.import_fd_ == nullptr ? "vkImportSemaphoreFdKHR" : "vkGetSemaphoreFdKHR");
    }
    fences.mode_ = SyncMode::sync_fd;
    return fences;
}

Result<Semaphore> Fences::wait_semaphore(UniqueFd fence, std::chrono::milliseconds cpu_timeout) const {
    if (!fence.valid()) return Semaphore();
    if (mode_ == SyncMode::cpu_wait) {
        if (auto waited = wait_fence(fence.borrow(), cpu_timeout); !waited) return std::move(waited).error();
        return Semaphore();
    }
    // Importing anything but a sync_file as SYNC_FD breaks a valid-usage rule
    // (VUID-VkImportSemaphoreFdInfoKHR-handleType-01143), and drivers do not all check:
    // Mesa 25's lavapipe accepts an eventfd (measured). SYNC_IOC_FILE_INFO answers only
    // for sync_files (linux/sync_file.h; ENOTTY otherwise).
    sync_file_info file_info{};
    if (::ioctl(fence.get(), SYNC_IOC_FILE_INFO, &file_info) != 0) {
        const int err = errno;
        return make_error(Errc::invalid_argument, "fence fd {} is not a sync_file (SYNC_IOC_FILE_INFO: {})",
                          fence.get(), std::strerror(err));
    }
    const VkSemaphoreCreateInfo info{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, nullptr, 0};
    VkSemaphore raw = VK_NULL_HANDLE;
    if (VkResult r = vkCreateSemaphore(device_, &info, nullptr, &raw); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkCreateSemaphore: {}", result_name(r));
    }
    Semaphore semaphore(device_, raw);
    const VkImportSemaphoreFdInfoKHR import{VK_STRUCTURE_TYPE_IMPORT_SEMAPHORE_FD_INFO_KHR, nullptr, raw,
                                            VK_SEMAPHORE_IMPORT_TEMPORARY_BIT, sync_fd_type, fence.get()};
    if (VkResult r = import_fd_(device_, &import); r != VK_SUCCESS) {
        // The spec: a failed import leaves the fd with the application, which closes it.
        return make_error(Errc::invalid_argument, "vkImportSemaphoreFdKHR (SYNC_FD, temporary) of fd {}: {}",
                          fence.get(), result_name(r));
    }
    (void)fence.release();  // Vulkan owns it now (spec, "Importing Semaphore Payloads")
    return semaphore;
}

Result<Semaphore> Fences::signal_semaphore() const {
    if (mode_ == SyncMode::cpu_wait) return Semaphore();
    const VkExportSemaphoreCreateInfo exportable{VK_STRUCTURE_TYPE_EXPORT_SEMAPHORE_CREATE_INFO, nullptr, sync_fd_type};
    const VkSemaphoreCreateInfo info{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, &exportable, 0};
    VkSemaphore raw = VK_NULL_HANDLE;
    if (VkResult r = vkCreateSemaphore(device_, &info, nullptr, &raw); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkCreateSemaphore (exportable as SYNC_FD): {}", result_name(r));
    }
    return Semaphore(device_, raw);
}

Result<UniqueFd> Fences::fence_for_peer(VkQueue queue, const Semaphore& signalled) const {
    if (mode_ == SyncMode::cpu_wait) {
        if (queue == VK_NULL_HANDLE) return make_error(Errc::invalid_argument, "fence_for_peer: a null queue");
        if (VkResult r = vkQueueWaitIdle(queue); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkQueueWaitIdle: {}", result_name(r));
        }
        return UniqueFd();
    }
    if (!signalled) {
        return make_error(Errc::invalid_argument, "fence_for_peer: no semaphore (sync_fd mode exports the one the "
                                                  "submit signalled, from signal_semaphore())");
    }
    const VkSemaphoreGetFdInfoKHR info{VK_STRUCTURE_TYPE_SEMAPHORE_GET_FD_INFO_KHR, nullptr, signalled.get(),
                                       sync_fd_type};
    int fd = -1;
    if (VkResult r = get_fd_(device_, &info, &fd); r != VK_SUCCESS) {
        return make_error(Errc::library, "vkGetSemaphoreFdKHR (SYNC_FD): {}", result_name(r));
    }
    // fd -1 is a valid SYNC_FD export (an already signalled payload; spec): no fence to send.
    return UniqueFd(fd);
}

}  // namespace texshare::vulkan
