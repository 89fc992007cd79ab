// vulkan/format_table.hpp: the table a Vulkan consumer advertises agrees with what its
// Importer imports, both ways, and names the device. The identity parts run on any Vulkan
// driver (the host's lavapipe too); what needs a vulkan::Device (DMA-BUF import) skips on the
// host, saying so, and runs in the VM lane's backports guest (Mesa 25's lavapipe), where the
// DMA-BUFs come from the system DMA-BUF heap.
#include "texshare/vulkan/format_table.hpp"

#include <sys/sysmacros.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <tuple>

#include "support/fd_count.hpp"
#include "support/vulkan_test_device.hpp"
#include "texshare/dma_heap_allocator.hpp"
#include "texshare/negotiation.hpp"
#include "texshare/vulkan/format.hpp"
#include "texshare/vulkan/importer.hpp"

namespace texshare::vulkan {
namespace {

using testing::TestVulkan;

std::optional<TestVulkan> open(const std::vector<std::string>& wanted) {
    auto vk = TestVulkan::create(wanted);
    if (!vk) {
        ADD_FAILURE() << "no Vulkan driver (Debian: mesa-vulkan-drivers, for lavapipe): " << vk.error().message;
        return std::nullopt;
    }
    return std::move(*vk);
}

// Vulkan 1.1 gives every device both UUIDs; lavapipe's are not zero, and the same device
// gives the same ones to another instance (what a second process would see).
TEST(VulkanFormatTableTest, UuidsAreKnownAndStable) {
    auto first = open({});
    ASSERT_TRUE(first);
    const DeviceUuids uuids = device_uuids(first->physical_device());
    EXPECT_TRUE(uuids.known()) << uuid_name(uuids.device) << " / " << uuid_name(uuids.driver);
    auto second = open({});
    ASSERT_TRUE(second);
    EXPECT_EQ(device_uuids(second->physical_device()), uuids);
    VkPhysicalDeviceIDProperties id{};
    id.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES;
    VkPhysicalDeviceProperties2 properties{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &id, {}};
    vkGetPhysicalDeviceProperties2(first->physical_device(), &properties);
    EXPECT_EQ(std::memcmp(id.deviceUUID, uuids.device.data(), 16), 0);
    EXPECT_EQ(std::memcmp(id.driverUUID, uuids.driver.data(), 16), 0) << "device and driver not swapped";
}

// lavapipe offers no VK_EXT_physical_device_drm (it has no DRM node): no device number.
// Where a driver offers it, the render node comes first, then the primary node, and 0 where
// it has neither (NVIDIA's driver without nvidia-drm loaded lists the extension and no node).
TEST(VulkanFormatTableTest, TheDrmNodeComesFromPhysicalDeviceDrmOnly) {
    auto vk = open({});
    ASSERT_TRUE(vk);
    auto node = drm_device_number(vk->physical_device());
    ASSERT_TRUE(node) << node.error().message;
    const auto offered = TestVulkan::offered_extensions(vk->physical_device());
    const bool has_drm = std::ranges::find(offered, VK_EXT_PHYSICAL_DEVICE_DRM_EXTENSION_NAME) != offered.end();
    if (!has_drm) {
        EXPECT_EQ(*node, 0U);
        return;
    }
    VkPhysicalDeviceDrmPropertiesEXT drm{};
    drm.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRM_PROPERTIES_EXT;
    VkPhysicalDeviceProperties2 properties{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &drm, {}};
    vkGetPhysicalDeviceProperties2(vk->physical_device(), &properties);
    auto number = [](std::int64_t major_number, std::int64_t minor_number) -> std::uint64_t {
        return makedev(static_cast<unsigned>(major_number), static_cast<unsigned>(minor_number));
    };
    const std::uint64_t want = drm.hasRender == VK_TRUE    ? number(drm.renderMajor, drm.renderMinor)
                               : drm.hasPrimary == VK_TRUE ? number(drm.primaryMajor, drm.primaryMinor)
                                                           : 0;
    EXPECT_EQ(*node, want) << "render node first, then primary, else 0";
}

// A consumer with its import device, with or without VK_EXT_image_drm_format_modifier.
struct Consumer {
    TestVulkan vk;
    Device device;
};
std::optional<Consumer> open_consumer(bool modifiers) {
    std::vector<std::string> wanted{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                    VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME};
    if (modifiers) wanted.emplace_back(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME);
    auto vk = TestVulkan::create(wanted);
    if (!vk) {
        ADD_FAILURE() << vk.error().message;
        return std::nullopt;
    }
    if (vk->enabled().size() != wanted.size()) return std::nullopt;
    auto device = Device::create(vk->handles());
    if (!device) {
        ADD_FAILURE() << device.error().message;
        return std::nullopt;
    }
    return Consumer{std::move(*vk), std::move(*device)};
}

#define OPEN_CONSUMER_OR_SKIP(name, modifiers)                                                           \
    auto name = open_consumer(modifiers);                                                                \
    if (HasFailure()) return;                                                                            \
    if (!name) {                                                                                         \
        TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("the Vulkan driver lacks VK_EXT_external_memory_dma_buf" \
                                              << ((modifiers) ? " or VK_EXT_image_drm_format_modifier" : "")  \
                                              << " (the host's lavapipe); the backports guest runs this");       \
    }

TEST(VulkanFormatTableTest, AUsageOfZeroIsRefused) {
    OPEN_CONSUMER_OR_SKIP(consumer, false);
    auto table = format_table(consumer->device, FormatTableOptions{0, false, true});
    ASSERT_FALSE(table);
    EXPECT_EQ(table.error().code, Errc::invalid_argument);
}

// The table names the device, fits the wire (and comes back equal), and claims opaque
// memory only where the driver imports OPAQUE_FD images (lavapipe does: measured in the guest).
TEST(VulkanFormatTableTest, TheTableNamesTheDeviceAndTravels) {
    OPEN_CONSUMER_OR_SKIP(consumer, false);
    auto table = format_table(consumer->device);
    ASSERT_TRUE(table) << table.error().message;
    EXPECT_EQ(table->uuids, device_uuids(consumer->vk.physical_device()));
    EXPECT_TRUE(table->contains(DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR)) << "lavapipe imports RGBA8 LINEAR";
    EXPECT_EQ(table->capabilities & consumer_converts_shared_memory, 0) << "not asked for";
    EXPECT_NE(table->capabilities & consumer_imports_opaque_memory, 0)
        << "Mesa 25's lavapipe imports OPAQUE_FD optimal images";
    auto fd = encode_format_table(*table);
    ASSERT_TRUE(fd) << fd.error().message;
    auto decoded = decode_format_table(fd->borrow());
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, *table);

    auto plain = format_table(consumer->device, FormatTableOptions{VK_IMAGE_USAGE_SAMPLED_BIT, true, false});
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_EQ(plain->capabilities, consumer_converts_shared_memory) << "opaque memory not claimed when not wanted";

    // A producer on this device and driver is offered opaque memory; one that says another
    // driver is not.
    ProducerCapabilities producer{0, {}, table->uuids};
    const std::uint32_t abgr[] = {DRM_FORMAT_ABGR8888};
    auto same = negotiate(*decoded, producer, abgr);
    ASSERT_TRUE(same);
    EXPECT_EQ(same->path, SharingPath::opaque_fd) << same->reason;
    producer.uuids.driver[0] ^= 0xff;
    auto other = negotiate(*decoded, producer, abgr);
    ASSERT_TRUE(other);
    EXPECT_NE(other->path, SharingPath::opaque_fd) << other->reason;
}

// Without VK_EXT_image_drm_format_modifier the Importer takes single-plane LINEAR images
// only, and the table lists nothing else.
TEST(VulkanFormatTableTest, WithoutTheModifierExtensionOnlySinglePlaneLinear) {
    OPEN_CONSUMER_OR_SKIP(consumer, false);
    auto table = format_table(consumer->device);
    ASSERT_TRUE(table) << table.error().message;
    EXPECT_GT(table->formats.pair_count(), 0U);
    for (const DrmFormat& format : table->formats) {
        EXPECT_EQ(find_format(format.fourcc)->plane_count, 1) << format_name(format.fourcc);
        for (const FormatModifier& m : format.modifiers) {
            EXPECT_EQ(m.modifier, DRM_FORMAT_MOD_LINEAR) << format_name(format.fourcc);
        }
    }
}

// What the table says is what the Importer does: every mapped single-plane format, allocated
// LINEAR from the DMA-BUF heap, imports exactly where the table lists format/LINEAR, and is
// refused where it does not. Both ways, with and without the modifier extension. (Measured
// in the backports guest: lavapipe lists LINEAR alone, for 14 of the 15 single-plane formats;
// RGB888 as B8G8R8_UNORM it does not import.)
class VulkanFormatTableAgreement : public testing::FdLeakTest, public ::testing::WithParamInterface<bool> {};

TEST_P(VulkanFormatTableAgreement, EveryListedPairImportsAndNoOtherDoes) {
    OPEN_CONSUMER_OR_SKIP(consumer, GetParam());
    // Rows packed to 64 bytes: lavapipe's own LINEAR row pitch for these 64-pixel rows, so the
    // import without the modifier extension (which needs the driver's pitch) can take them.
    auto heap = DmaHeapAllocator::open(DmaHeapOptions{"system", "/dev/dma_heap", 64});
    if (!heap) {
        TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("no DMA-BUF heap: " << heap.error().message);
    }
    auto table = format_table(consumer->device);
    ASSERT_TRUE(table) << table.error().message;
    auto importer = Importer::create(consumer->device);
    ASSERT_TRUE(importer) << importer.error().message;
    std::uint64_t id = 0;
    std::size_t listed = 0;
    for (const FormatMapping& mapping : format_mappings()) {
        if (find_format(mapping.fourcc)->plane_count != 1) continue;
        auto image = heap->allocate(64, 64, mapping.fourcc);
        ASSERT_TRUE(image) << format_name(mapping.fourcc) << ": " << image.error().message;
        auto imported = importer->import(++id, *image);
        const bool in_table = table->contains(mapping.fourcc, DRM_FORMAT_MOD_LINEAR);
        listed += in_table ? 1 : 0;
        EXPECT_EQ(imported.has_value(), in_table)
            << format_name(mapping.fourcc) << (in_table ? " is listed but refused: " : " imports but is not listed")
            << (imported ? "" : imported.error().message);
        if (imported) {
            ASSERT_TRUE(importer->release(id));
        }
    }
    EXPECT_GE(listed, 4U) << "lavapipe imports at least the four 8-bit RGB orders";
    std::cout << "[ measured ] " << consumer->device.name() << (GetParam() ? " with" : " without")
              << " VK_EXT_image_drm_format_modifier lists " << table->formats.pair_count() << " pairs:";
    for (const DrmFormat& format : table->formats) {
        for (const FormatModifier& m : format.modifiers) {
            std::cout << ' ' << format_name(format.fourcc) << '/' << modifier_name(m.modifier);
        }
    }
    std::cout << '\n';
}

INSTANTIATE_TEST_SUITE_P(ModifierExtension, VulkanFormatTableAgreement, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                             return param.param ? std::string("WithModifiers") : std::string("LinearOnly");
                         });

// Issue 15 item 4, multi-plane: what the driver says of each multi-plane format texshare
// maps (measured, printed), that the table lists a multi-plane pair only where the driver
// lists the modifier with its planes and imports it, and what a disjoint NV12 (Y and CbCr in
// two DMA-BUFs, the layout of a video decoder) gets: imported where listed, else refused
// naming the driver's answer, nothing kept, no fd leaked.
class VulkanMultiPlaneTest : public testing::FdLeakTest {};

TEST_F(VulkanMultiPlaneTest, DisjointNv12ImportsWhereListedAndIsRefusedByNameElsewhere) {
    OPEN_CONSUMER_OR_SKIP(consumer, true);
    auto heap = DmaHeapAllocator::open();
    if (!heap) {
        TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("no DMA-BUF heap: " << heap.error().message);
    }
    auto table = format_table(consumer->device);
    ASSERT_TRUE(table) << table.error().message;
    const VkPhysicalDevice physical = consumer->vk.physical_device();
    for (const FormatMapping& mapping : format_mappings()) {
        if (find_format(mapping.fourcc)->plane_count == 1) continue;
        VkDrmFormatModifierPropertiesListEXT list{VK_STRUCTURE_TYPE_DRM_FORMAT_MODIFIER_PROPERTIES_LIST_EXT, nullptr, 0,
                                                  nullptr};
        VkFormatProperties2 properties{VK_STRUCTURE_TYPE_FORMAT_PROPERTIES_2, &list, {}};
        vkGetPhysicalDeviceFormatProperties2(physical, mapping.format, &properties);
        std::vector<VkDrmFormatModifierPropertiesEXT> modifiers(list.drmFormatModifierCount);
        list.pDrmFormatModifierProperties = modifiers.data();
        vkGetPhysicalDeviceFormatProperties2(physical, mapping.format, &properties);
        std::cout << "[ measured ] " << format_name(mapping.fourcc) << " (VkFormat " << mapping.format
                  << "): optimal features 0x" << std::hex << properties.formatProperties.optimalTilingFeatures
                  << ", linear 0x" << properties.formatProperties.linearTilingFeatures << std::dec << ", "
                  << list.drmFormatModifierCount << " modifiers";
        for (std::uint32_t i = 0; i < list.drmFormatModifierCount; ++i) {
            std::cout << ' ' << modifier_name(modifiers[i].drmFormatModifier) << " ("
                      << modifiers[i].drmFormatModifierPlaneCount << " planes, features 0x" << std::hex
                      << modifiers[i].drmFormatModifierTilingFeatures << std::dec << ')';
        }
        std::cout << "; table lists " << (table->formats.find(mapping.fourcc) != nullptr ? "it" : "none") << '\n';
        // Which part of an import the driver refuses: the modifier tiling alone, with DISJOINT,
        // with the DMA_BUF handle type (what the Importer asks), with a sampled-only usage.
        for (const auto& [flags, external, usage] :
             {std::tuple<VkImageCreateFlags, bool, VkImageUsageFlags>{0, false, VK_IMAGE_USAGE_SAMPLED_BIT},
              {VK_IMAGE_CREATE_DISJOINT_BIT, false, VK_IMAGE_USAGE_SAMPLED_BIT},
              {0, true, VK_IMAGE_USAGE_SAMPLED_BIT},
              {VK_IMAGE_CREATE_DISJOINT_BIT, true, VK_IMAGE_USAGE_SAMPLED_BIT},
              {VK_IMAGE_CREATE_DISJOINT_BIT, true, VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT}}) {
            VkPhysicalDeviceImageDrmFormatModifierInfoEXT modifier_info{
                VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_DRM_FORMAT_MODIFIER_INFO_EXT, nullptr, DRM_FORMAT_MOD_LINEAR,
                VK_SHARING_MODE_EXCLUSIVE, 0, nullptr};
            VkPhysicalDeviceExternalImageFormatInfo external_info{
                VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_IMAGE_FORMAT_INFO, &modifier_info,
                VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
            const VkPhysicalDeviceImageFormatInfo2 info{
                VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_IMAGE_FORMAT_INFO_2,
                external ? static_cast<const void*>(&external_info) : &modifier_info, mapping.format, VK_IMAGE_TYPE_2D,
                VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT, usage, flags};
            VkExternalImageFormatProperties out_external{VK_STRUCTURE_TYPE_EXTERNAL_IMAGE_FORMAT_PROPERTIES, nullptr,
                                                         {}};
            VkImageFormatProperties2 out{VK_STRUCTURE_TYPE_IMAGE_FORMAT_PROPERTIES_2, &out_external, {}};
            const VkResult r = vkGetPhysicalDeviceImageFormatProperties2(physical, &info, &out);
            std::cout << "[ measured ]   LINEAR" << (flags != 0 ? " DISJOINT" : "") << (external ? " DMA_BUF" : "")
                      << " usage 0x" << std::hex << usage << std::dec << ": " << result_name(r)
                      << (r == VK_SUCCESS && (out_external.externalMemoryProperties.externalMemoryFeatures &
                                              VK_EXTERNAL_MEMORY_FEATURE_IMPORTABLE_BIT) != 0
                              ? " importable"
                              : "")
                      << '\n';
        }
        if (const DrmFormat* listed = table->formats.find(mapping.fourcc)) {
            for (const FormatModifier& m : listed->modifiers) {
                EXPECT_TRUE(std::ranges::any_of(modifiers, [&](const VkDrmFormatModifierPropertiesEXT& entry) {
                    return entry.drmFormatModifier == m.modifier;
                })) << format_name(mapping.fourcc) << " " << modifier_name(m.modifier)
                    << " is listed, not by the driver";
            }
        }
    }

    // NV12 as a decoder hands it out: Y (64x64 bytes) in one DMA-BUF, CbCr (32x32 pairs) in another.
    auto luma = heap->allocate(64, 64, DRM_FORMAT_R8);
    auto chroma = heap->allocate(32, 32, DRM_FORMAT_GR88);
    ASSERT_TRUE(luma && chroma);
    ImageLayout layout{64, 64, DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR, 2,
                       {{{0, luma->layout().planes[0].stride}, {0, chroma->layout().planes[0].stride}}}};
    PlaneFds fds;
    auto y = UniqueFd::dup(luma->plane_fd(0));
    auto uv = UniqueFd::dup(chroma->plane_fd(0));
    ASSERT_TRUE(y && uv);
    fds[0] = std::move(*y);
    fds[1] = std::move(*uv);
    auto nv12 = DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds));
    ASSERT_TRUE(nv12) << nv12.error().message;
    auto importer = Importer::create(consumer->device);
    ASSERT_TRUE(importer);
    const int open_fds = testing::open_fd_count();
    auto imported = importer->import(1, *nv12);
    if (table->contains(DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR)) {
        ASSERT_TRUE(imported) << imported.error().message;
        EXPECT_TRUE(imported->disjoint);
        EXPECT_EQ(imported->memory_count, 2U);
        ASSERT_TRUE(importer->release(1));
    } else {
        // Mesa 25's lavapipe: G8_B8R8_2PLANE_420_UNORM has no DRM modifier at all.
        ASSERT_FALSE(imported) << "the table does not list NV12/LINEAR, yet it imported";
        EXPECT_EQ(imported.error().code, Errc::unsupported);
        EXPECT_NE(imported.error().message.find("image 1: "), std::string::npos) << imported.error().message;
        // lavapipe lists NV12/LINEAR (2 planes, DISJOINT among its features) but answers
        // VK_ERROR_FORMAT_NOT_SUPPORTED for its DMA-BUF import: that answer is in the error.
        EXPECT_NE(imported.error().message.find("NV12 (NV12) with modifier LINEAR"), std::string::npos)
            << imported.error().message;
        EXPECT_NE(imported.error().message.find("no DMA-BUF import (vkGetPhysicalDeviceImageFormatProperties2: "
                                                "VK_ERROR_FORMAT_NOT_SUPPORTED"),
                  std::string::npos)
            << imported.error().message;
        std::cout << "[ measured ] disjoint NV12 refused: " << imported.error().message << '\n';
    }
    EXPECT_EQ(importer->size(), 0U);
    EXPECT_EQ(testing::open_fd_count(), open_fds);
}

}  // namespace
}  // namespace texshare::vulkan
