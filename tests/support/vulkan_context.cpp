#include "support/vulkan_context.hpp"

#include "texshare/vulkan/device.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <utility>

namespace texshare::testing {
namespace {

Error vk_error(std::string_view call, VkResult result) {
    return make_error(Errc::library, "{} failed: {}", call, vk_result_name(result));
}

std::vector<std::string> device_extensions(VkPhysicalDevice device) {
    std::uint32_t count = 0;
    vkEnumerateDeviceExtensionProperties(device, nullptr, &count, nullptr);
    std::vector<VkExtensionProperties> properties(count);
    vkEnumerateDeviceExtensionProperties(device, nullptr, &count, properties.data());
    std::vector<std::string> names;
    for (const auto& property : properties) names.emplace_back(property.extensionName);
    return names;
}

bool has(const std::vector<std::string>& names, std::string_view name) {
    return std::ranges::find(names, name) != names.end();
}

}  // namespace

// One name table, the library's (texshare/vulkan/device.hpp).
std::string vk_result_name(VkResult result) { return texshare::vulkan::result_name(result); }

Result<VulkanContext> VulkanContext::create() {
    std::uint32_t instance_version = VK_API_VERSION_1_0;
    if (vkEnumerateInstanceVersion(&instance_version) != VK_SUCCESS || instance_version < VK_API_VERSION_1_2) {
        return make_error(Errc::unsupported, "the Vulkan instance is version {}.{}, texshare's readback needs 1.2",
                          VK_API_VERSION_MAJOR(instance_version), VK_API_VERSION_MINOR(instance_version));
    }
    VulkanContext context;
    const VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO, nullptr, "texshare tests", 1, "texshare", 1,
                                VK_API_VERSION_1_2};
    const VkInstanceCreateInfo instance_info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, nullptr, 0, &app, 0, nullptr,
                                             0, nullptr};
    if (VkResult r = vkCreateInstance(&instance_info, nullptr, &context.instance_); r != VK_SUCCESS) {
        context.instance_ = VK_NULL_HANDLE;
        if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
            return make_error(Errc::unsupported, "no Vulkan driver (vkCreateInstance: {}; VK_ICD_FILENAMES={})",
                              vk_result_name(r), std::getenv("VK_ICD_FILENAMES") ? std::getenv("VK_ICD_FILENAMES") : "unset");
        }
        return vk_error("vkCreateInstance", r);
    }
    std::uint32_t count = 0;
    vkEnumeratePhysicalDevices(context.instance_, &count, nullptr);
    std::vector<VkPhysicalDevice> devices(count);
    vkEnumeratePhysicalDevices(context.instance_, &count, devices.data());
    std::string seen;
    for (VkPhysicalDevice candidate : devices) {
        VkPhysicalDeviceProperties properties{};
        vkGetPhysicalDeviceProperties(candidate, &properties);
        const auto names = device_extensions(candidate);
        const bool importer = has(names, VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME) &&
                              has(names, VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME);
        seen += fmt::format("{}{} (Vulkan {}.{}{})", seen.empty() ? "" : ", ", properties.deviceName,
                            VK_API_VERSION_MAJOR(properties.apiVersion), VK_API_VERSION_MINOR(properties.apiVersion),
                            importer ? "" : ", no VK_EXT_external_memory_dma_buf");
        if (!importer || properties.apiVersion < VK_API_VERSION_1_2 || context.physical_ != VK_NULL_HANDLE) continue;
        context.physical_ = candidate;
        context.device_name_ = properties.deviceName;
        for (const char* name : {VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME, VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME,
                                 VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME,
                                 VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME}) {
            if (has(names, name)) context.extensions_.emplace_back(name);
        }
    }
    if (context.physical_ == VK_NULL_HANDLE) {
        return make_error(Errc::unsupported, "no Vulkan 1.2 device imports DMA-BUFs; devices: {}",
                          seen.empty() ? "none" : seen);
    }
    vkGetPhysicalDeviceQueueFamilyProperties(context.physical_, &count, nullptr);
    std::vector<VkQueueFamilyProperties> families(count);
    vkGetPhysicalDeviceQueueFamilyProperties(context.physical_, &count, families.data());
    const auto family = std::ranges::find_if(families, [](const VkQueueFamilyProperties& f) {
        return (f.queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT | VK_QUEUE_TRANSFER_BIT)) != 0;
    });
    if (family == families.end()) return make_error(Errc::unsupported, "{} has no queue that copies", context.device_name_);
    context.queue_family_ = static_cast<std::uint32_t>(family - families.begin());
    const float priority = 1.0F;
    const VkDeviceQueueCreateInfo queue_info{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, nullptr, 0,
                                             context.queue_family_, 1, &priority};
    std::vector<const char*> enabled;
    for (const auto& name : context.extensions_) enabled.push_back(name.c_str());
    const VkDeviceCreateInfo device_info{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, nullptr, 0, 1, &queue_info, 0, nullptr,
                                         static_cast<std::uint32_t>(enabled.size()), enabled.data(), nullptr};
    if (VkResult r = vkCreateDevice(context.physical_, &device_info, nullptr, &context.device_); r != VK_SUCCESS) {
        context.device_ = VK_NULL_HANDLE;
        return vk_error("vkCreateDevice", r);
    }
    vkGetDeviceQueue(context.device_, context.queue_family_, 0, &context.queue_);
    const VkCommandPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, nullptr,
                                            VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, context.queue_family_};
    if (VkResult r = vkCreateCommandPool(context.device_, &pool_info, nullptr, &context.pool_); r != VK_SUCCESS) {
        context.pool_ = VK_NULL_HANDLE;
        return vk_error("vkCreateCommandPool", r);
    }
    context.get_memory_fd_properties = reinterpret_cast<PFN_vkGetMemoryFdPropertiesKHR>(
        vkGetDeviceProcAddr(context.device_, "vkGetMemoryFdPropertiesKHR"));
    if (context.has_drm_format_modifiers()) {
        context.get_image_drm_format_modifier_properties = reinterpret_cast<PFN_vkGetImageDrmFormatModifierPropertiesEXT>(
            vkGetDeviceProcAddr(context.device_, "vkGetImageDrmFormatModifierPropertiesEXT"));
    }
    if (context.get_memory_fd_properties == nullptr) {
        return make_error(Errc::unsupported, "{} lists VK_KHR_external_memory_fd but has no vkGetMemoryFdPropertiesKHR",
                          context.device_name_);
    }
    return context;
}

VulkanContext::VulkanContext(VulkanContext&& other) noexcept { *this = std::move(other); }

VulkanContext& VulkanContext::operator=(VulkanContext&& other) noexcept {
    if (this != &other) {
        destroy();
        instance_ = std::exchange(other.instance_, VK_NULL_HANDLE);
        physical_ = std::exchange(other.physical_, VK_NULL_HANDLE);
        device_ = std::exchange(other.device_, VK_NULL_HANDLE);
        queue_ = std::exchange(other.queue_, VK_NULL_HANDLE);
        pool_ = std::exchange(other.pool_, VK_NULL_HANDLE);
        queue_family_ = other.queue_family_;
        device_name_ = std::move(other.device_name_);
        extensions_ = std::move(other.extensions_);
        get_memory_fd_properties = std::exchange(other.get_memory_fd_properties, nullptr);
        get_image_drm_format_modifier_properties = std::exchange(other.get_image_drm_format_modifier_properties, nullptr);
    }
    return *this;
}

VulkanContext::~VulkanContext() { destroy(); }

void VulkanContext::destroy() noexcept {
    if (device_ != VK_NULL_HANDLE) {
        vkDeviceWaitIdle(device_);
        if (pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(device_, pool_, nullptr);
        vkDestroyDevice(device_, nullptr);
    }
    if (instance_ != VK_NULL_HANDLE) vkDestroyInstance(instance_, nullptr);
    instance_ = VK_NULL_HANDLE;
    device_ = VK_NULL_HANDLE;
    pool_ = VK_NULL_HANDLE;
}

bool VulkanContext::enabled(std::string_view extension) const noexcept { return has(extensions_, extension); }

std::uint32_t VulkanContext::producer_queue_family() const noexcept {
    return enabled(VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME) ? VK_QUEUE_FAMILY_FOREIGN_EXT : VK_QUEUE_FAMILY_EXTERNAL;
}

Result<std::uint32_t> VulkanContext::memory_type(std::uint32_t type_bits, VkMemoryPropertyFlags properties) const {
    VkPhysicalDeviceMemoryProperties memory{};
    vkGetPhysicalDeviceMemoryProperties(physical_, &memory);
    for (std::uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
        if ((type_bits & (1U << i)) != 0 && (memory.memoryTypes[i].propertyFlags & properties) == properties) return i;
    }
    return make_error(Errc::unsupported, "{}: no memory type among bits 0x{:x} has properties 0x{:x}", device_name_,
                      type_bits, properties);
}

Result<void> VulkanContext::submit_and_wait(const std::function<void(VkCommandBuffer)>& record) const {
    const VkCommandBufferAllocateInfo allocate{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, nullptr, pool_,
                                               VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
    VkCommandBuffer commands = VK_NULL_HANDLE;
    if (VkResult r = vkAllocateCommandBuffers(device_, &allocate, &commands); r != VK_SUCCESS) {
        return vk_error("vkAllocateCommandBuffers", r);
    }
    VkFence fence = VK_NULL_HANDLE;
    const auto cleanup = [&] {
        if (fence != VK_NULL_HANDLE) vkDestroyFence(device_, fence, nullptr);
        vkFreeCommandBuffers(device_, pool_, 1, &commands);
    };
    const VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, nullptr,
                                         VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, nullptr};
    vkBeginCommandBuffer(commands, &begin);
    record(commands);
    if (VkResult r = vkEndCommandBuffer(commands); r != VK_SUCCESS) {
        cleanup();
        return vk_error("vkEndCommandBuffer", r);
    }
    const VkFenceCreateInfo fence_info{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO, nullptr, 0};
    if (VkResult r = vkCreateFence(device_, &fence_info, nullptr, &fence); r != VK_SUCCESS) {
        fence = VK_NULL_HANDLE;
        cleanup();
        return vk_error("vkCreateFence", r);
    }
    const VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO, nullptr, 0, nullptr, nullptr, 1, &commands, 0, nullptr};
    if (VkResult r = vkQueueSubmit(queue_, 1, &submit, fence); r != VK_SUCCESS) {
        cleanup();
        return vk_error("vkQueueSubmit", r);
    }
    const VkResult waited = vkWaitForFences(device_, 1, &fence, VK_TRUE, 10'000'000'000ULL);
    if (waited == VK_TIMEOUT) vkDeviceWaitIdle(device_);  // the command buffer must be idle to free
    cleanup();
    if (waited == VK_TIMEOUT) return make_error(Errc::timed_out, "{}: a copy did not finish in 10 s", device_name_);
    if (waited != VK_SUCCESS) return vk_error("vkWaitForFences", waited);
    return {};
}

}  // namespace texshare::testing
