#include "vulkan_gpu.hpp"

#include <cstring>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace bench {

using texshare::Errc;
using texshare::make_error;

void vk_check(VkResult result, const char* call) {
    if (result != VK_SUCCESS) fail(fmt::format("{} failed: VkResult {}", call, static_cast<int>(result)));
}

namespace {
bool has_extension(const std::vector<VkExtensionProperties>& extensions, const char* name) {
    for (const auto& extension : extensions) {
        if (std::strcmp(extension.extensionName, name) == 0) return true;
    }
    return false;
}
}  // namespace

texshare::Result<VulkanGpu> VulkanGpu::open() {
    VulkanGpu gpu;
    const VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO, nullptr, "texshare_bench", 1, nullptr, 0,
                                VK_API_VERSION_1_1};
    const VkInstanceCreateInfo instance_info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, nullptr, 0, &app, 0, nullptr, 0,
                                             nullptr};
    if (const VkResult r = vkCreateInstance(&instance_info, nullptr, &gpu.instance_); r != VK_SUCCESS) {
        return make_error(Errc::unsupported, "vkCreateInstance gave VkResult {} (no Vulkan driver: VK_ICD_FILENAMES?)",
                          static_cast<int>(r));
    }
    std::uint32_t count = 0;
    vkEnumeratePhysicalDevices(gpu.instance_, &count, nullptr);
    std::vector<VkPhysicalDevice> physicals(count);
    vkEnumeratePhysicalDevices(gpu.instance_, &count, physicals.data());
    std::string seen;
    for (VkPhysicalDevice physical : physicals) {
        VkPhysicalDeviceProperties properties{};
        vkGetPhysicalDeviceProperties(physical, &properties);
        std::uint32_t n = 0;
        vkEnumerateDeviceExtensionProperties(physical, nullptr, &n, nullptr);
        std::vector<VkExtensionProperties> extensions(n);
        vkEnumerateDeviceExtensionProperties(physical, nullptr, &n, extensions.data());
        if (properties.apiVersion < VK_API_VERSION_1_1 ||
            !has_extension(extensions, VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME) ||
            !has_extension(extensions, VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME)) {
            seen += fmt::format("{}{}", seen.empty() ? "" : ", ", properties.deviceName);
            continue;
        }
        vkGetPhysicalDeviceQueueFamilyProperties(physical, &n, nullptr);
        std::vector<VkQueueFamilyProperties> families(n);
        vkGetPhysicalDeviceQueueFamilyProperties(physical, &n, families.data());
        std::uint32_t family = n;
        // Graphics and compute queues do transfer work too (the spec lets them not say so).
        for (std::uint32_t i = 0; i < n && family == n; ++i) {
            if (families[i].queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT | VK_QUEUE_TRANSFER_BIT)) family = i;
        }
        if (family == n) continue;
        std::vector<const char*> enabled{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                         VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME};
        if (has_extension(extensions, VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME)) {
            enabled.push_back(VK_EXT_QUEUE_FAMILY_FOREIGN_EXTENSION_NAME);
            gpu.foreign_family_ = VK_QUEUE_FAMILY_FOREIGN_EXT;
        }
        const float priority = 1;
        const VkDeviceQueueCreateInfo queue_info{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, nullptr, 0, family, 1,
                                                 &priority};
        const VkDeviceCreateInfo device_info{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                                             nullptr,
                                             0,
                                             1,
                                             &queue_info,
                                             0,
                                             nullptr,
                                             static_cast<std::uint32_t>(enabled.size()),
                                             enabled.data(),
                                             nullptr};
        vk_check(vkCreateDevice(physical, &device_info, nullptr, &gpu.device_), "vkCreateDevice");
        gpu.physical_ = physical;
        gpu.family_ = family;
        vkGetDeviceQueue(gpu.device_, family, 0, &gpu.queue_);
        vkGetPhysicalDeviceMemoryProperties(physical, &gpu.memory_);
        gpu.get_memory_fd_properties_ = reinterpret_cast<PFN_vkGetMemoryFdPropertiesKHR>(
            vkGetDeviceProcAddr(gpu.device_, "vkGetMemoryFdPropertiesKHR"));
        if (gpu.get_memory_fd_properties_ == nullptr) fail("vkGetDeviceProcAddr(vkGetMemoryFdPropertiesKHR) gave none");
        const VkCommandPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, nullptr, 0, family};
        vk_check(vkCreateCommandPool(gpu.device_, &pool_info, nullptr, &gpu.pool_), "vkCreateCommandPool");
        gpu.name_ = fmt::format("{}, Vulkan {}.{}", properties.deviceName, VK_API_VERSION_MAJOR(properties.apiVersion),
                                VK_API_VERSION_MINOR(properties.apiVersion));
        return gpu;
    }
    return make_error(Errc::unsupported, "no Vulkan device with {} and {} (devices: {})",
                      VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME, VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                      seen.empty() ? "none" : seen);
}

VulkanGpu::VulkanGpu(VulkanGpu&& other) noexcept
    : instance_(std::exchange(other.instance_, VK_NULL_HANDLE)),
      physical_(other.physical_),
      device_(std::exchange(other.device_, VK_NULL_HANDLE)),
      queue_(other.queue_),
      family_(other.family_),
      foreign_family_(other.foreign_family_),
      pool_(std::exchange(other.pool_, VK_NULL_HANDLE)),
      memory_(other.memory_),
      get_memory_fd_properties_(other.get_memory_fd_properties_),
      name_(std::move(other.name_)) {}

VulkanGpu::~VulkanGpu() {
    if (device_ != VK_NULL_HANDLE) {
        vkDeviceWaitIdle(device_);
        if (pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(device_, pool_, nullptr);
        vkDestroyDevice(device_, nullptr);
    }
    if (instance_ != VK_NULL_HANDLE) vkDestroyInstance(instance_, nullptr);
}

std::uint32_t VulkanGpu::memory_type(std::uint32_t allowed, VkMemoryPropertyFlags wanted) const {
    for (std::uint32_t i = 0; i < memory_.memoryTypeCount; ++i) {
        if ((allowed & (1u << i)) && (memory_.memoryTypes[i].propertyFlags & wanted) == wanted) return i;
    }
    fail(fmt::format("no Vulkan memory type among bits {:#x} with properties {:#x}", allowed, wanted));
}

std::uint32_t VulkanGpu::dma_buf_memory_types(int fd) const {
    VkMemoryFdPropertiesKHR properties{VK_STRUCTURE_TYPE_MEMORY_FD_PROPERTIES_KHR, nullptr, 0};
    vk_check(get_memory_fd_properties_(device_, VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT, fd, &properties),
             "vkGetMemoryFdPropertiesKHR(DMA_BUF)");
    return properties.memoryTypeBits;
}

HostBuffer::HostBuffer(const VulkanGpu& gpu, VkDeviceSize size_, VkBufferUsageFlags usage)
    : device(gpu.device()), size(size_) {
    const VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, nullptr, 0, size, usage,
                                  VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
    vk_check(vkCreateBuffer(device, &info, nullptr, &buffer), "vkCreateBuffer");
    VkMemoryRequirements requirements{};
    vkGetBufferMemoryRequirements(device, buffer, &requirements);
    const VkMemoryAllocateInfo allocate{
        VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, nullptr, requirements.size,
        gpu.memory_type(requirements.memoryTypeBits,
                        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)};
    vk_check(vkAllocateMemory(device, &allocate, nullptr, &memory), "vkAllocateMemory (host buffer)");
    vk_check(vkBindBufferMemory(device, buffer, memory, 0), "vkBindBufferMemory");
    void* mapped = nullptr;
    vk_check(vkMapMemory(device, memory, 0, VK_WHOLE_SIZE, 0, &mapped), "vkMapMemory");
    data = static_cast<std::byte*>(mapped);
}

HostBuffer::~HostBuffer() {
    vkDestroyBuffer(device, buffer, nullptr);
    vkFreeMemory(device, memory, nullptr);  // unmaps it too
}

namespace {
VkImageCreateInfo image_info(std::uint32_t width, std::uint32_t height, VkFormat format, VkImageTiling tiling,
                             VkImageUsageFlags usage, const void* next) {
    return {VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
            next,
            0,
            VK_IMAGE_TYPE_2D,
            format,
            {width, height, 1},
            1,
            1,
            VK_SAMPLE_COUNT_1_BIT,
            tiling,
            usage,
            VK_SHARING_MODE_EXCLUSIVE,
            0,
            nullptr,
            // PREINITIALIZED for the import: its first transition then keeps the bytes already there.
            tiling == VK_IMAGE_TILING_LINEAR ? VK_IMAGE_LAYOUT_PREINITIALIZED : VK_IMAGE_LAYOUT_UNDEFINED};
}
}  // namespace

Image::Image(const VulkanGpu& gpu, std::uint32_t width, std::uint32_t height, VkFormat format, VkImageUsageFlags usage)
    : device(gpu.device()) {
    const VkImageCreateInfo info = image_info(width, height, format, VK_IMAGE_TILING_OPTIMAL, usage, nullptr);
    vk_check(vkCreateImage(device, &info, nullptr, &image), "vkCreateImage (OPTIMAL)");
    VkMemoryRequirements requirements{};
    vkGetImageMemoryRequirements(device, image, &requirements);
    const VkMemoryDedicatedAllocateInfo dedicated{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO, nullptr, image,
                                                  VK_NULL_HANDLE};
    const VkMemoryAllocateInfo allocate{
        VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, &dedicated, requirements.size,
        gpu.memory_type(requirements.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)};
    vk_check(vkAllocateMemory(device, &allocate, nullptr, &memory), "vkAllocateMemory (image)");
    vk_check(vkBindImageMemory(device, image, memory, 0), "vkBindImageMemory");
}

Image::Image(const VulkanGpu& gpu, std::uint32_t width, std::uint32_t height, VkFormat format, VkImageUsageFlags usage,
             texshare::BorrowedFd dma_buf, std::uint32_t stride)
    : device(gpu.device()) {
    const VkExternalMemoryImageCreateInfo external{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO, nullptr,
                                                   VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
    const VkImageCreateInfo info = image_info(width, height, format, VK_IMAGE_TILING_LINEAR, usage, &external);
    vk_check(vkCreateImage(device, &info, nullptr, &image), "vkCreateImage (LINEAR, DMA_BUF)");
    // A LINEAR image's layout is the driver's choice; the import is only right if it is the
    // DMA-BUF's own (VK_EXT_image_drm_format_modifier would let us say it; lavapipe's LINEAR
    // pitch for 1920 ARGB8888 pixels is the packed 7680 B, which MemfdAllocator also gives).
    const VkImageSubresource colour{VK_IMAGE_ASPECT_COLOR_BIT, 0, 0};
    VkSubresourceLayout layout{};
    vkGetImageSubresourceLayout(device, image, &colour, &layout);
    if (layout.rowPitch != stride || layout.offset != 0) {
        fail(fmt::format("the driver lays out a LINEAR {}x{} image with row pitch {} at offset {}; the DMA-BUF has "
                         "stride {} at offset 0",
                         width, height, layout.rowPitch, layout.offset, stride));
    }
    VkMemoryRequirements requirements{};
    vkGetImageMemoryRequirements(device, image, &requirements);
    auto fd = texshare::UniqueFd::dup(dma_buf);
    if (!fd) fail(fmt::format("dup of the DMA-BUF: {}", fd.error().message));
    const std::uint32_t types = requirements.memoryTypeBits & gpu.dma_buf_memory_types(dma_buf.get());
    const VkMemoryDedicatedAllocateInfo dedicated{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO, nullptr, image,
                                                  VK_NULL_HANDLE};
    const VkImportMemoryFdInfoKHR import{VK_STRUCTURE_TYPE_IMPORT_MEMORY_FD_INFO_KHR, &dedicated,
                                         VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT, fd->get()};
    const VkMemoryAllocateInfo allocate{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, &import, requirements.size,
                                        gpu.memory_type(types, 0)};
    vk_check(vkAllocateMemory(device, &allocate, nullptr, &memory), "vkAllocateMemory (DMA-BUF import)");
    (void)fd->release();  // a successful import owns the fd (VK_KHR_external_memory_fd)
    vk_check(vkBindImageMemory(device, image, memory, 0), "vkBindImageMemory (DMA-BUF)");
}

Image::~Image() {
    vkDestroyImage(device, image, nullptr);
    vkFreeMemory(device, memory, nullptr);
}

Submission::Submission(const VulkanGpu& gpu) : gpu_(&gpu) {
    const VkCommandBufferAllocateInfo allocate{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, nullptr,
                                               gpu.command_pool(), VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
    vk_check(vkAllocateCommandBuffers(gpu.device(), &allocate, &commands_), "vkAllocateCommandBuffers");
    const VkFenceCreateInfo fence{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO, nullptr, 0};
    vk_check(vkCreateFence(gpu.device(), &fence, nullptr, &fence_), "vkCreateFence");
}

Submission::~Submission() {
    vkDestroyFence(gpu_->device(), fence_, nullptr);
    vkFreeCommandBuffers(gpu_->device(), gpu_->command_pool(), 1, &commands_);
}

VkCommandBuffer Submission::begin() {
    const VkCommandBufferBeginInfo info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, nullptr, 0, nullptr};
    vk_check(vkBeginCommandBuffer(commands_, &info), "vkBeginCommandBuffer");
    return commands_;
}

void Submission::end() { vk_check(vkEndCommandBuffer(commands_), "vkEndCommandBuffer"); }

void Submission::submit_and_wait() {
    const VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO, nullptr, 0, nullptr, nullptr, 1, &commands_, 0, nullptr};
    vk_check(vkQueueSubmit(gpu_->queue(), 1, &submit, fence_), "vkQueueSubmit");
    vk_check(vkWaitForFences(gpu_->device(), 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
    vk_check(vkResetFences(gpu_->device(), 1, &fence_), "vkResetFences");
}

void image_barrier(VkCommandBuffer commands, VkImage image, VkImageLayout from, VkImageLayout to,
                   VkAccessFlags src_access, VkAccessFlags dst_access, VkPipelineStageFlags src_stage,
                   VkPipelineStageFlags dst_stage, std::uint32_t src_family, std::uint32_t dst_family) {
    const VkImageMemoryBarrier barrier{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER,
                                       nullptr,
                                       src_access,
                                       dst_access,
                                       from,
                                       to,
                                       src_family,
                                       dst_family,
                                       image,
                                       {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
    vkCmdPipelineBarrier(commands, src_stage, dst_stage, 0, 0, nullptr, 0, nullptr, 1, &barrier);
}

}  // namespace bench
