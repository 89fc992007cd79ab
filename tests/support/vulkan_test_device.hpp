// Test support: an application's Vulkan instance and device, made the way an application
// would (texshare::vulkan never owns them), with the device extensions a test chooses, and
// a copy of an imported image into a host-visible buffer to read every byte back.
//
// Use TestVulkan::create() inside the process that imports (a forked child in the VM lane).
// `wanted` extensions are enabled where the device offers them, so a test can leave
// VK_EXT_image_drm_format_modifier out to exercise the path without it.
//
// Where Khronos' validation layer is installed (Debian: vulkan-validationlayers, one of
// scripts/common.sh's GPU packages) it is on, and each warning or error it reports fails the
// running test with the layer's message: texshare's Vulkan use is checked against the spec's
// valid-usage rules in every test that uses this.
#pragma once

#include <gtest/gtest.h>
#include <vulkan/vulkan.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "support/lane_skip.hpp"
#include "texshare/result.hpp"
#include "texshare/vulkan/device.hpp"
#include "texshare/vulkan/importer.hpp"

namespace texshare::testing {

class TestVulkan {
public:
    static constexpr std::uint32_t api_version = VK_API_VERSION_1_2;

    // The first physical device of Vulkan 1.2 or newer, preferring one that offers every
    // `wanted` extension; Errc::unsupported where there is no Vulkan driver or device.
    // `validate` false: no validation layer even where installed (benchmarks: the layer's
    // checks cost more than the calls they check).
    static Result<TestVulkan> create(const std::vector<std::string>& wanted, bool validate = true) {
        TestVulkan vk;
        const VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO, nullptr, "texshare tests", 1, "texshare", 1,
                                    api_version};
        vk.validated_ = validate && has_validation_layer();
        const char* const layer = validation_layer;
        const char* const debug_utils = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        const VkDebugUtilsMessengerCreateInfoEXT messenger_info{
            VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT, nullptr, 0,
            VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
            VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
            &fail_on_message, nullptr};
        const VkInstanceCreateInfo instance_info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                                 vk.validated_ ? &messenger_info : nullptr,
                                                 0,
                                                 &app,
                                                 vk.validated_ ? 1U : 0U,
                                                 &layer,
                                                 vk.validated_ ? 1U : 0U,
                                                 &debug_utils};
        if (VkResult r = vkCreateInstance(&instance_info, nullptr, &vk.instance_); r != VK_SUCCESS) {
            vk.instance_ = VK_NULL_HANDLE;
            return make_error(Errc::unsupported, "vkCreateInstance: {}", vulkan::result_name(r));
        }
        if (vk.validated_) {
            auto create_messenger = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
                vkGetInstanceProcAddr(vk.instance_, "vkCreateDebugUtilsMessengerEXT"));
            if (create_messenger == nullptr ||
                create_messenger(vk.instance_, &messenger_info, nullptr, &vk.messenger_) != VK_SUCCESS) {
                return make_error(Errc::library, "vkCreateDebugUtilsMessengerEXT failed");
            }
        }
        std::uint32_t count = 0;
        vkEnumeratePhysicalDevices(vk.instance_, &count, nullptr);
        std::vector<VkPhysicalDevice> devices(count);
        vkEnumeratePhysicalDevices(vk.instance_, &count, devices.data());
        std::size_t best_score = 0;
        for (VkPhysicalDevice candidate : devices) {
            VkPhysicalDeviceProperties properties{};
            vkGetPhysicalDeviceProperties(candidate, &properties);
            if (properties.apiVersion < api_version) continue;
            const auto offered = offered_extensions(candidate);
            const std::size_t score =
                1 + static_cast<std::size_t>(std::ranges::count_if(wanted, [&](const std::string& name) {
                    return std::ranges::find(offered, name) != offered.end();
                }));
            if (score <= best_score) continue;
            best_score = score;
            vk.physical_ = candidate;
            vk.extensions_.clear();
            for (const auto& name : wanted) {
                if (std::ranges::find(offered, name) != offered.end()) vk.extensions_.push_back(name);
            }
        }
        if (vk.physical_ == VK_NULL_HANDLE) return make_error(Errc::unsupported, "no Vulkan 1.2 device");
        vkGetPhysicalDeviceQueueFamilyProperties(vk.physical_, &count, nullptr);
        std::vector<VkQueueFamilyProperties> families(count);
        vkGetPhysicalDeviceQueueFamilyProperties(vk.physical_, &count, families.data());
        const auto family = std::ranges::find_if(families, [](const VkQueueFamilyProperties& f) {
            return (f.queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) != 0;
        });
        if (family == families.end()) return make_error(Errc::unsupported, "no queue family that copies");
        vk.family_ = static_cast<std::uint32_t>(family - families.begin());
        const float priority = 1.0F;
        const VkDeviceQueueCreateInfo queue_info{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, nullptr, 0, vk.family_, 1,
                                                 &priority};
        for (const auto& name : vk.extensions_) vk.names_.push_back(name.c_str());
        const VkDeviceCreateInfo device_info{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                                             nullptr,
                                             0,
                                             1,
                                             &queue_info,
                                             0,
                                             nullptr,
                                             static_cast<std::uint32_t>(vk.names_.size()),
                                             vk.names_.data(),
                                             nullptr};
        if (VkResult r = vkCreateDevice(vk.physical_, &device_info, nullptr, &vk.device_); r != VK_SUCCESS) {
            vk.device_ = VK_NULL_HANDLE;
            return make_error(Errc::library, "vkCreateDevice: {}", vulkan::result_name(r));
        }
        vkGetDeviceQueue(vk.device_, vk.family_, 0, &vk.queue_);
        const VkCommandPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, nullptr, 0, vk.family_};
        if (VkResult r = vkCreateCommandPool(vk.device_, &pool_info, nullptr, &vk.pool_); r != VK_SUCCESS) {
            vk.pool_ = VK_NULL_HANDLE;
            return make_error(Errc::library, "vkCreateCommandPool: {}", vulkan::result_name(r));
        }
        return vk;
    }

    TestVulkan(TestVulkan&& other) noexcept { *this = std::move(other); }
    TestVulkan& operator=(TestVulkan&& other) noexcept {
        if (this != &other) {
            destroy();
            instance_ = std::exchange(other.instance_, VK_NULL_HANDLE);
            messenger_ = std::exchange(other.messenger_, VK_NULL_HANDLE);
            validated_ = other.validated_;
            physical_ = std::exchange(other.physical_, VK_NULL_HANDLE);
            device_ = std::exchange(other.device_, VK_NULL_HANDLE);
            queue_ = std::exchange(other.queue_, VK_NULL_HANDLE);
            pool_ = std::exchange(other.pool_, VK_NULL_HANDLE);
            family_ = other.family_;
            extensions_ = std::move(other.extensions_);
            names_.clear();
            for (const auto& name : extensions_) names_.push_back(name.c_str());
            other.names_.clear();
        }
        return *this;
    }
    ~TestVulkan() { destroy(); }

    // Whether Khronos' validation layer checks this instance (see the top of this file).
    bool validated() const noexcept { return validated_; }
    bool has(std::string_view extension) const { return std::ranges::find(extensions_, extension) != extensions_.end(); }
    const std::vector<const char*>& enabled() const noexcept { return names_; }
    // What vulkan::Device::create() takes, telling it the extensions enabled here.
    vulkan::DeviceHandles handles() const { return {instance_, physical_, device_, api_version, names_}; }
    static std::vector<std::string> offered_extensions(VkPhysicalDevice physical) {
        std::uint32_t count = 0;
        vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, nullptr);
        std::vector<VkExtensionProperties> properties(count);
        vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, properties.data());
        std::vector<std::string> names;
        for (const auto& p : properties) names.emplace_back(p.extensionName);
        return names;
    }
    VkPhysicalDevice physical_device() const noexcept { return physical_; }

    // Every byte of a single-plane imported image of `bytes_per_pixel`, rows packed, copied by
    // the device now. The image is acquired from the producer (FOREIGN with
    // VK_EXT_queue_family_foreign, else EXTERNAL) and given back after the copy.
    Result<std::vector<std::uint8_t>> read_back(const vulkan::ImportedImage& imported,
                                                std::uint32_t bytes_per_pixel) const {
        const VkExtent2D e = imported.extent;
        const VkDeviceSize bytes = VkDeviceSize{e.width} * e.height * bytes_per_pixel;
        VkBuffer buffer = VK_NULL_HANDLE;
        VkDeviceMemory memory = VK_NULL_HANDLE;
        VkCommandBuffer commands = VK_NULL_HANDLE;
        struct Cleanup {
            const TestVulkan& vk;
            VkBuffer& buffer;
            VkDeviceMemory& memory;
            VkCommandBuffer& commands;
            ~Cleanup() {
                if (commands != VK_NULL_HANDLE) vkFreeCommandBuffers(vk.device_, vk.pool_, 1, &commands);
                if (buffer != VK_NULL_HANDLE) vkDestroyBuffer(vk.device_, buffer, nullptr);
                if (memory != VK_NULL_HANDLE) vkFreeMemory(vk.device_, memory, nullptr);
            }
        } cleanup{*this, buffer, memory, commands};
        const VkBufferCreateInfo buffer_info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, nullptr, 0, bytes,
                                             VK_BUFFER_USAGE_TRANSFER_DST_BIT, VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
        if (VkResult r = vkCreateBuffer(device_, &buffer_info, nullptr, &buffer); r != VK_SUCCESS) {
            buffer = VK_NULL_HANDLE;
            return make_error(Errc::library, "vkCreateBuffer: {}", vulkan::result_name(r));
        }
        VkMemoryRequirements needs{};
        vkGetBufferMemoryRequirements(device_, buffer, &needs);
        VkPhysicalDeviceMemoryProperties types{};
        vkGetPhysicalDeviceMemoryProperties(physical_, &types);
        constexpr VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        std::uint32_t type = 0;
        while (type < types.memoryTypeCount &&
               ((needs.memoryTypeBits & (1U << type)) == 0 || (types.memoryTypes[type].propertyFlags & host) != host)) {
            ++type;
        }
        if (type == types.memoryTypeCount) return make_error(Errc::unsupported, "no host-visible memory type");
        const VkMemoryAllocateInfo allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, needs.size, type};
        if (VkResult r = vkAllocateMemory(device_, &allocate, nullptr, &memory); r != VK_SUCCESS) {
            memory = VK_NULL_HANDLE;
            return make_error(Errc::library, "vkAllocateMemory: {}", vulkan::result_name(r));
        }
        vkBindBufferMemory(device_, buffer, memory, 0);
        const VkCommandBufferAllocateInfo command_info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, nullptr, pool_,
                                                       VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
        if (VkResult r = vkAllocateCommandBuffers(device_, &command_info, &commands); r != VK_SUCCESS) {
            commands = VK_NULL_HANDLE;
            return make_error(Errc::library, "vkAllocateCommandBuffers: {}", vulkan::result_name(r));
        }
        const VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, nullptr,
                                             VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, nullptr};
        vkBeginCommandBuffer(commands, &begin);
        const std::uint32_t producer =
            has(VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME) ? VK_QUEUE_FAMILY_FOREIGN_EXT : VK_QUEUE_FAMILY_EXTERNAL;
        const VkImageSubresourceRange color{VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1};
        const VkImageMemoryBarrier acquire{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, nullptr, 0,
                                           VK_ACCESS_TRANSFER_READ_BIT, VK_IMAGE_LAYOUT_GENERAL,
                                           VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, producer, family_, imported.image,
                                           color};
        vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 0,
                             nullptr, 0, nullptr, 1, &acquire);
        const VkBufferImageCopy region{0, 0, 0, {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1}, {0, 0, 0}, {e.width, e.height, 1}};
        vkCmdCopyImageToBuffer(commands, imported.image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, buffer, 1, &region);
        const VkImageMemoryBarrier release{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, nullptr,
                                           VK_ACCESS_TRANSFER_READ_BIT, 0, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
                                           VK_IMAGE_LAYOUT_GENERAL, family_, producer, imported.image, color};
        const VkBufferMemoryBarrier to_host{VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER, nullptr,
                                            VK_ACCESS_TRANSFER_WRITE_BIT, VK_ACCESS_HOST_READ_BIT,
                                            VK_QUEUE_FAMILY_IGNORED, VK_QUEUE_FAMILY_IGNORED, buffer, 0, bytes};
        vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_TRANSFER_BIT,
                             VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 0, nullptr, 1,
                             &to_host, 1, &release);
        vkEndCommandBuffer(commands);
        const VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO, nullptr, 0, nullptr, nullptr, 1, &commands, 0, nullptr};
        if (VkResult r = vkQueueSubmit(queue_, 1, &submit, VK_NULL_HANDLE); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkQueueSubmit: {}", vulkan::result_name(r));
        }
        if (VkResult r = vkQueueWaitIdle(queue_); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkQueueWaitIdle: {}", vulkan::result_name(r));
        }
        void* mapped = nullptr;
        if (VkResult r = vkMapMemory(device_, memory, 0, bytes, 0, &mapped); r != VK_SUCCESS) {
            return make_error(Errc::library, "vkMapMemory: {}", vulkan::result_name(r));
        }
        std::vector<std::uint8_t> pixels(bytes);
        std::memcpy(pixels.data(), mapped, bytes);
        vkUnmapMemory(device_, memory);
        return pixels;
    }

private:
    static constexpr const char* validation_layer = "VK_LAYER_KHRONOS_validation";

    TestVulkan() = default;
    static bool has_validation_layer() {
        std::uint32_t count = 0;
        vkEnumerateInstanceLayerProperties(&count, nullptr);
        std::vector<VkLayerProperties> layers(count);
        vkEnumerateInstanceLayerProperties(&count, layers.data());
        return std::ranges::any_of(layers, [](const VkLayerProperties& p) {
            return std::string_view(p.layerName) == validation_layer;
        });
    }
    static VKAPI_ATTR VkBool32 VKAPI_CALL fail_on_message(VkDebugUtilsMessageSeverityFlagBitsEXT,
                                                          VkDebugUtilsMessageTypeFlagsEXT,
                                                          const VkDebugUtilsMessengerCallbackDataEXT* data, void*) {
        if (data != nullptr && is_known_layer_misreading(*data)) return VK_FALSE;
        ADD_FAILURE() << "Vulkan validation: " << (data != nullptr && data->pMessage != nullptr ? data->pMessage : "?");
        return VK_FALSE;
    }
    // Debian 12's layer (1.3.239) reads no format features at all ("VkFormatFeatureFlags
    // (0x0)") for a DRM-modifier-tiled image on Mesa 25's lavapipe, which lists 0xdd83 for
    // R8G8B8A8_UNORM with the LINEAR modifier in VkDrmFormatModifierPropertiesEXT, TRANSFER_SRC
    // included (measured in the backports guest; vkGetPhysicalDeviceImageFormatProperties2
    // accepts the usage too). Only that exact misreading of a copy's source (an import) or
    // destination (an export, vulkan_export_vm_test) is let through.
    static bool is_known_layer_misreading(const VkDebugUtilsMessengerCallbackDataEXT& data) {
        const std::string_view id = data.pMessageIdName != nullptr ? data.pMessageIdName : "";
        const std::string_view message = data.pMessage != nullptr ? data.pMessage : "";
        return (id == "VUID-vkCmdCopyImageToBuffer-srcImage-01998" || id == "VUID-vkCmdCopyBufferToImage-dstImage-01997") &&
               message.find("VkFormatFeatureFlags (0x0)") != std::string_view::npos &&
               message.find("VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT") != std::string_view::npos;
    }
    void destroy() noexcept {
        if (device_ != VK_NULL_HANDLE) {
            vkDeviceWaitIdle(device_);
            if (pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(device_, pool_, nullptr);
            vkDestroyDevice(device_, nullptr);
        }
        if (messenger_ != VK_NULL_HANDLE) {
            auto destroy_messenger = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
                vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
            if (destroy_messenger != nullptr) destroy_messenger(instance_, messenger_, nullptr);
        }
        if (instance_ != VK_NULL_HANDLE) vkDestroyInstance(instance_, nullptr);
        instance_ = VK_NULL_HANDLE;
        messenger_ = VK_NULL_HANDLE;
        device_ = VK_NULL_HANDLE;
        pool_ = VK_NULL_HANDLE;
    }

    VkInstance instance_ = VK_NULL_HANDLE;
    VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
    bool validated_ = false;
    VkPhysicalDevice physical_ = VK_NULL_HANDLE;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    std::uint32_t family_ = 0;
    std::vector<std::string> extensions_;
    std::vector<const char*> names_;
};

}  // namespace texshare::testing
