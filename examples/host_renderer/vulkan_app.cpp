#include "vulkan_app.hpp"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include <fmt/format.h>

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;

// What the example enables where the device offers it. texshare::vulkan names what it
// needs of these when it is missing (Device, Exporter and Fences create()).
constexpr const char* wanted_extensions[] = {
    VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,          // any fd export/import
    VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME,     // DMA-BUF images (Mesa)
    VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME,   // explicit layouts
    VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME,        // handing images to another driver
    VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME,       // fences as semaphores
};

std::vector<std::string> offered_extensions(VkPhysicalDevice physical) {
    std::uint32_t count = 0;
    vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, nullptr);
    std::vector<VkExtensionProperties> properties(count);
    vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, properties.data());
    std::vector<std::string> names;
    for (const auto& p : properties) names.emplace_back(p.extensionName);
    return names;
}

}  // namespace

texshare::Error vk_error(std::string_view call, VkResult result) {
    return make_error(Errc::library, "{} failed: {}", call, texshare::vulkan::result_name(result));
}

Result<VulkanApp> VulkanApp::create() {
    std::uint32_t loader_version = VK_API_VERSION_1_0;
    if (vkEnumerateInstanceVersion(&loader_version) != VK_SUCCESS || loader_version < VK_API_VERSION_1_2) {
        return make_error(Errc::unsupported, "the Vulkan loader is version {}.{}; the example needs 1.2",
                          VK_API_VERSION_MAJOR(loader_version), VK_API_VERSION_MINOR(loader_version));
    }
    VulkanApp app;  // its destructor destroys what was made if a step fails
    const VkApplicationInfo info{VK_STRUCTURE_TYPE_APPLICATION_INFO, nullptr, "texshare_host_renderer", 1, "texshare",
                                 1, VK_API_VERSION_1_2};
    const VkInstanceCreateInfo instance_info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, nullptr, 0, &info, 0, nullptr, 0,
                                             nullptr};
    if (VkResult r = vkCreateInstance(&instance_info, nullptr, &app.instance_); r != VK_SUCCESS) {
        app.instance_ = VK_NULL_HANDLE;
        if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
            const char* icds = std::getenv("VK_ICD_FILENAMES");
            return make_error(Errc::unsupported, "no Vulkan driver (vkCreateInstance: {}; VK_ICD_FILENAMES={})",
                              texshare::vulkan::result_name(r), icds != nullptr ? icds : "unset");
        }
        return vk_error("vkCreateInstance", r);
    }
    std::uint32_t count = 0;
    vkEnumeratePhysicalDevices(app.instance_, &count, nullptr);
    std::vector<VkPhysicalDevice> devices(count);
    vkEnumeratePhysicalDevices(app.instance_, &count, devices.data());
    // A GPU before a CPU implementation (lavapipe), where a machine has both: the order
    // vkEnumeratePhysicalDevices gives is the loader's, not a preference.
    std::ranges::stable_sort(devices, {}, [](VkPhysicalDevice d) {
        VkPhysicalDeviceProperties p{};
        vkGetPhysicalDeviceProperties(d, &p);
        return p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ? 1 : 0;
    });
    std::string seen;
    for (VkPhysicalDevice candidate : devices) {
        VkPhysicalDeviceProperties properties{};
        vkGetPhysicalDeviceProperties(candidate, &properties);
        vkGetPhysicalDeviceQueueFamilyProperties(candidate, &count, nullptr);
        std::vector<VkQueueFamilyProperties> families(count);
        vkGetPhysicalDeviceQueueFamilyProperties(candidate, &count, families.data());
        const auto family = std::ranges::find_if(
            families, [](const VkQueueFamilyProperties& f) { return (f.queueFlags & VK_QUEUE_COMPUTE_BIT) != 0; });
        seen += fmt::format("{}{} (Vulkan {}.{}{})", seen.empty() ? "" : ", ", properties.deviceName,
                            VK_API_VERSION_MAJOR(properties.apiVersion), VK_API_VERSION_MINOR(properties.apiVersion),
                            family == families.end() ? ", no compute queue" : "");
        if (properties.apiVersion < VK_API_VERSION_1_2 || family == families.end()) continue;
        app.physical_ = candidate;
        app.family_ = static_cast<std::uint32_t>(family - families.begin());
        app.name_ = properties.deviceName;
        break;
    }
    if (app.physical_ == VK_NULL_HANDLE) {
        return make_error(Errc::unsupported, "no Vulkan 1.2 device with a compute queue; devices: {}",
                          seen.empty() ? "none" : seen);
    }
    const auto offered = offered_extensions(app.physical_);
    for (const char* name : wanted_extensions) {
        if (std::ranges::find(offered, name) != offered.end()) app.extensions_.emplace_back(name);
    }
    for (const auto& name : app.extensions_) app.names_.push_back(name.c_str());
    const float priority = 1.0F;
    const VkDeviceQueueCreateInfo queue_info{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, nullptr, 0, app.family_, 1,
                                             &priority};
    const VkDeviceCreateInfo device_info{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                                         nullptr,
                                         0,
                                         1,
                                         &queue_info,
                                         0,
                                         nullptr,
                                         static_cast<std::uint32_t>(app.names_.size()),
                                         app.names_.data(),
                                         nullptr};
    if (VkResult r = vkCreateDevice(app.physical_, &device_info, nullptr, &app.device_); r != VK_SUCCESS) {
        app.device_ = VK_NULL_HANDLE;
        return vk_error("vkCreateDevice", r);
    }
    vkGetDeviceQueue(app.device_, app.family_, 0, &app.queue_);
    const VkCommandPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, nullptr,
                                            VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, app.family_};
    if (VkResult r = vkCreateCommandPool(app.device_, &pool_info, nullptr, &app.pool_); r != VK_SUCCESS) {
        app.pool_ = VK_NULL_HANDLE;
        return vk_error("vkCreateCommandPool", r);
    }
    return app;
}

VulkanApp& VulkanApp::operator=(VulkanApp&& other) noexcept {
    if (this != &other) {
        reset();
        instance_ = std::exchange(other.instance_, VK_NULL_HANDLE);
        physical_ = std::exchange(other.physical_, VK_NULL_HANDLE);
        device_ = std::exchange(other.device_, VK_NULL_HANDLE);
        queue_ = std::exchange(other.queue_, VK_NULL_HANDLE);
        pool_ = std::exchange(other.pool_, VK_NULL_HANDLE);
        family_ = other.family_;
        name_ = std::move(other.name_);
        extensions_ = std::move(other.extensions_);
        names_.clear();
        for (const auto& name : extensions_) names_.push_back(name.c_str());
        other.names_.clear();
    }
    return *this;
}

VulkanApp::~VulkanApp() { reset(); }

void VulkanApp::reset() noexcept {
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

texshare::vulkan::DeviceHandles VulkanApp::handles() const noexcept {
    return {instance_, physical_, device_, VK_API_VERSION_1_2, names_};
}

bool VulkanApp::enabled(std::string_view extension) const noexcept {
    return std::ranges::find(extensions_, extension) != extensions_.end();
}

std::uint32_t VulkanApp::peer_queue_family(texshare::Backing backing) const noexcept {
    return backing == texshare::Backing::dma_buf && enabled(VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME)
               ? VK_QUEUE_FAMILY_FOREIGN_EXT
               : VK_QUEUE_FAMILY_EXTERNAL;
}

Result<VkCommandBuffer> VulkanApp::allocate_commands() const {
    const VkCommandBufferAllocateInfo info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, nullptr, pool_,
                                           VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
    VkCommandBuffer commands = VK_NULL_HANDLE;
    if (VkResult r = vkAllocateCommandBuffers(device_, &info, &commands); r != VK_SUCCESS) {
        return vk_error("vkAllocateCommandBuffers", r);
    }
    return commands;
}

void VulkanApp::free_commands(VkCommandBuffer commands) const noexcept {
    if (commands != VK_NULL_HANDLE) vkFreeCommandBuffers(device_, pool_, 1, &commands);
}

Result<VulkanApp::HostBuffer> VulkanApp::make_host_buffer(VkDeviceSize bytes) const {
    HostBuffer out;
    const VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, nullptr, 0, bytes,
                                  VK_BUFFER_USAGE_TRANSFER_DST_BIT, VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
    if (VkResult r = vkCreateBuffer(device_, &info, nullptr, &out.buffer); r != VK_SUCCESS) {
        return vk_error("vkCreateBuffer", r);
    }
    VkMemoryRequirements needs{};
    vkGetBufferMemoryRequirements(device_, out.buffer, &needs);
    VkPhysicalDeviceMemoryProperties types{};
    vkGetPhysicalDeviceMemoryProperties(physical_, &types);
    constexpr VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    std::uint32_t type = 0;
    while (type < types.memoryTypeCount &&
           ((needs.memoryTypeBits & (1U << type)) == 0 || (types.memoryTypes[type].propertyFlags & host) != host)) {
        ++type;
    }
    if (type == types.memoryTypeCount) {
        destroy(out);
        return make_error(Errc::unsupported, "{}: no host-visible, coherent memory type for a buffer", name_);
    }
    const VkMemoryAllocateInfo allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, needs.size, type};
    void* mapped = nullptr;
    VkResult r = vkAllocateMemory(device_, &allocate, nullptr, &out.memory);
    if (r != VK_SUCCESS) out.memory = VK_NULL_HANDLE;
    const char* call = "vkAllocateMemory";
    if (r == VK_SUCCESS) {
        r = vkBindBufferMemory(device_, out.buffer, out.memory, 0);
        call = "vkBindBufferMemory";
    }
    if (r == VK_SUCCESS) {
        r = vkMapMemory(device_, out.memory, 0, bytes, 0, &mapped);
        call = "vkMapMemory";
    }
    if (r != VK_SUCCESS) {
        destroy(out);
        return vk_error(call, r);
    }
    out.mapped = static_cast<const std::uint8_t*>(mapped);
    out.size = bytes;
    return out;
}

void VulkanApp::destroy(HostBuffer& buffer) const noexcept {
    if (buffer.buffer != VK_NULL_HANDLE) vkDestroyBuffer(device_, buffer.buffer, nullptr);
    if (buffer.memory != VK_NULL_HANDLE) vkFreeMemory(device_, buffer.memory, nullptr);  // unmaps it too
    buffer = HostBuffer{};
}

}  // namespace host_renderer
