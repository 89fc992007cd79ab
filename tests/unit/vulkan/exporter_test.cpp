// vulkan/exporter.hpp: exportable images, and every refusal named. On the host (Debian 12's
// lavapipe, no VK_EXT_external_memory_dma_buf) OPAQUE_FD export, the fallback of a driver
// without DMA-BUF export, is what runs, and the tests that need an Exporter skip saying so; in the VM lane's backports
// guest (Mesa 25's lavapipe) every test runs, with and without
// VK_EXT_image_drm_format_modifier.
#include "texshare/vulkan/exporter.hpp"
#include "texshare/vulkan/format.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <fstream>

#include "support/fd_count.hpp"
#include "support/vulkan_queue.hpp"
#include "support/vulkan_test_device.hpp"

namespace texshare::vulkan {
namespace {

using testing::TestVulkan;

const std::vector<std::string> export_extensions{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                                 VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME};

std::optional<TestVulkan> open(const std::vector<std::string>& wanted) {
    auto vk = TestVulkan::create(wanted);
    if (!vk) {
        ADD_FAILURE() << "no Vulkan driver (Debian: mesa-vulkan-drivers, for lavapipe): " << vk.error().message;
        return std::nullopt;
    }
    return std::move(*vk);
}

TEST(VulkanExporterTest, NullHandlesAndAZeroUsageAreRefused) {
    auto none = Exporter::create(DeviceHandles{});
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, Errc::invalid_argument) << none.error().message;
    auto vk = open(export_extensions);
    ASSERT_TRUE(vk);
    auto no_usage = Exporter::create(vk->handles(), {0});
    ASSERT_FALSE(no_usage);
    EXPECT_EQ(no_usage.error().code, Errc::invalid_argument);
    EXPECT_NE(no_usage.error().message.find("usage of 0"), std::string::npos) << no_usage.error().message;
}

// Without VK_EXT_external_memory_dma_buf (not enabled here; Debian 12's lavapipe and NVIDIA
// do not even offer it) DMA-BUF export is refused naming the extension, and the automatic
// choice exports OPAQUE_FD memory: an opaque_fd image with the device's identity.
TEST(VulkanExporterTest, WithoutDmaBufExportTheImageIsOpaqueFdMemory) {
    auto vk = open({VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME});
    ASSERT_TRUE(vk);
    Exporter::Options dma_buf_only;
    dma_buf_only.handle = ExportHandle::dma_buf;
    auto refused = Exporter::create(vk->handles(), dma_buf_only);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unsupported);
    EXPECT_NE(refused.error().message.find(VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME), std::string::npos)
        << refused.error().message;

    auto exporter = Exporter::create(vk->handles());
    ASSERT_TRUE(exporter) << exporter.error().message;
    EXPECT_FALSE(exporter->device().has_dma_buf());
    const int fds = testing::open_fd_count();
    {
        auto exported = exporter->allocate(64, 48, DRM_FORMAT_ABGR8888);
        ASSERT_TRUE(exported) << exported.error().message;
        const DmaBufImage& image = exported->image;
        EXPECT_EQ(image.backing(), Backing::opaque_fd);
        EXPECT_EQ(image.layout(), opaque_layout(64, 48, DRM_FORMAT_ABGR8888));
        EXPECT_EQ(exported->vulkan.tiling(), VK_IMAGE_TILING_OPTIMAL);
        EXPECT_EQ(exported->vulkan.handle_type(), VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT);
        EXPECT_EQ(exported->vulkan.modifier(), DRM_FORMAT_MOD_INVALID);
        const OpaqueMemory& memory = image.opaque_memory();
        EXPECT_EQ(memory.device_uuid, exporter->device().device_uuid());
        EXPECT_EQ(memory.driver_uuid, exporter->device().driver_uuid());
        EXPECT_GE(memory.allocation_size, 64U * 48 * 4);
        EXPECT_LT(memory.memory_type_index, 32U);
        EXPECT_EQ(memory.image_usage,
                  Exporter::Options{}.usage | VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT)
            << "what an Importer asks for by default is added";
        EXPECT_TRUE(check_opaque_memory(memory));
        // What lavapipe's OPAQUE_FD fd is (measured, docs/vm-lane-facts.md): a sealed memfd,
        // which receive validation refuses as opaque_fd (image_wire.hpp).
        struct stat info {};
        ASSERT_EQ(::fstat(image.plane_fd(0).get(), &info), 0);
        char link[256] = {};
        const auto length = ::readlink(("/proc/self/fd/" + std::to_string(image.plane_fd(0).get())).c_str(), link,
                                       sizeof link - 1);
        std::cout << "[measured] " << exporter->device().name() << " OPAQUE_FD memory fd: mode 0"
                  << std::oct << (info.st_mode & S_IFMT) << std::dec << ", st_size " << info.st_size << ", "
                  << std::string(link, length > 0 ? static_cast<std::size_t>(length) : 0) << ", allocation "
                  << memory.allocation_size << " bytes, type " << memory.memory_type_index
                  << (memory.dedicated() ? ", dedicated" : ", not dedicated") << "\n";
        auto mapping = image.map(Access::read);
        ASSERT_FALSE(mapping);
        EXPECT_EQ(mapping.error().code, Errc::unsupported);
    }
    EXPECT_EQ(testing::open_fd_count(), fds) << "an OPAQUE_FD export and its destruction left an fd";
}

// ExportHandle::opaque_fd takes OPAQUE_FD even where DMA-BUF export would work; a usage
// OpaqueMemory cannot carry is refused naming it.
TEST(VulkanExporterTest, OpaqueFdCanBeForcedAndItsUsageIsChecked) {
    auto vk = open(export_extensions);
    ASSERT_TRUE(vk);
    Exporter::Options forced;
    forced.handle = ExportHandle::opaque_fd;
    auto exporter = Exporter::create(vk->handles(), forced);
    ASSERT_TRUE(exporter) << exporter.error().message;
    auto exported = exporter->allocate(16, 16, DRM_FORMAT_ABGR8888);
    ASSERT_TRUE(exported) << exported.error().message;
    EXPECT_EQ(exported->image.backing(), Backing::opaque_fd);
    forced.usage |= 0x100;  // beyond Vulkan 1.0's eight usages
    auto wide = Exporter::create(vk->handles(), forced);
    ASSERT_TRUE(wide) << wide.error().message;
    auto refused = wide->allocate(16, 16, DRM_FORMAT_ABGR8888);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unsupported);
    EXPECT_NE(refused.error().message.find("usage 0x117 has bits beyond"), std::string::npos)
        << refused.error().message;
    auto planar = exporter->allocate(16, 16, DRM_FORMAT_NV12);
    ASSERT_FALSE(planar);
    EXPECT_EQ(planar.error().code, Errc::unsupported) << planar.error().message;
}

// An Exporter where the driver has DMA-BUF export (the backports guest); nullopt and a skip
// message elsewhere.
struct Fixture {
    TestVulkan vk;
    Exporter exporter;
};
std::optional<Fixture> exporter_or_skip(bool modifiers, std::string& skip) {
    auto wanted = export_extensions;
    if (modifiers) wanted.emplace_back(VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME);
    auto vk = open(wanted);
    if (!vk) return std::nullopt;
    if (vk->enabled().size() != wanted.size()) {
        skip = "this Vulkan driver lacks DMA-BUF export or VK_EXT_image_drm_format_modifier (Debian 12's lavapipe; "
               "the VM lane's backports guest runs this test)";
        return std::nullopt;
    }
    auto exporter = Exporter::create(vk->handles());
    EXPECT_TRUE(exporter) << exporter.error().message;
    if (!exporter) return std::nullopt;
    // Mesa 25's lavapipe without a DRM device (on the host) lists the extension but imports
    // only: externalMemoryFeatures 0x4 (measured). The refusal is the fact tested there.
    const std::uint64_t linear[] = {DRM_FORMAT_MOD_LINEAR};
    if (auto can = exporter->exportable_modifiers(DRM_FORMAT_ABGR8888, linear); !can) {
        EXPECT_EQ(can.error().code, Errc::unsupported) << can.error().message;
        EXPECT_NE(can.error().message.find("not exportable"), std::string::npos) << can.error().message;
        skip = "this driver imports DMA-BUFs but cannot export them: " + can.error().message;
        return std::nullopt;
    }
    return Fixture{std::move(*vk), std::move(*exporter)};
}

std::string exporter_name(int fd) {
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(fd));
    std::string line;
    while (std::getline(info, line)) {
        if (line.rfind("exp_name:", 0) == 0) return line.substr(line.find_first_not_of(" \t", 9));
    }
    return "";
}

class VulkanExporterDriverTest : public ::testing::TestWithParam<bool> {};

TEST_P(VulkanExporterDriverTest, AnExportedImageIsADmaBufWithTheDriversLinearLayoutAndNothingLeaks) {
    std::string skip;
    auto f = exporter_or_skip(GetParam(), skip);
    if (!f && !skip.empty()) TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST(skip);
    ASSERT_TRUE(f);
    const int fds = testing::open_fd_count();
    {
        auto exported = f->exporter.allocate(64, 48, DRM_FORMAT_ABGR8888);
        ASSERT_TRUE(exported) << exported.error().message;
        const DmaBufImage& image = exported->image;
        EXPECT_EQ(image.backing(), Backing::dma_buf);
        EXPECT_EQ(image.layout().modifier, DRM_FORMAT_MOD_LINEAR);
        EXPECT_EQ(image.layout().plane_count, 1U);
        EXPECT_GE(image.layout().planes[0].stride, 64U * 4);
        EXPECT_EQ(exported->vulkan.modifier(), DRM_FORMAT_MOD_LINEAR);
        EXPECT_EQ(exported->vulkan.format(), VK_FORMAT_R8G8B8A8_UNORM);
        EXPECT_EQ(exported->vulkan.tiling(),
                  GetParam() ? VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT : VK_IMAGE_TILING_LINEAR);
        EXPECT_NE(exported->vulkan.image(), VK_NULL_HANDLE);
        const std::string exp_name = exporter_name(image.plane_fd(0).get());
        EXPECT_FALSE(exp_name.empty()) << "the fd is not a DMA-BUF (no exp_name in fdinfo)";
        std::cout << "[measured] lavapipe's exported DMA-BUF: exp_name " << exp_name << ", stride "
                  << image.layout().planes[0].stride << ", size " << ::lseek(image.plane_fd(0).get(), 0, SEEK_END)
                  << "\n";
        // The fd maps the image's memory: what the CPU writes through it is the DMA-BUF's.
        auto mapping = image.map(Access::write);
        ASSERT_TRUE(mapping) << mapping.error().message;
        EXPECT_TRUE(mapping->finish());
    }
    EXPECT_EQ(testing::open_fd_count(), fds) << "an export and its destruction left an fd";
}

TEST_P(VulkanExporterDriverTest, WhatCannotBeExportedIsRefusedNamingWhy) {
    std::string skip;
    auto f = exporter_or_skip(GetParam(), skip);
    if (!f && !skip.empty()) TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST(skip);
    ASSERT_TRUE(f);
    const int fds = testing::open_fd_count();
    const auto refused = [&](Result<Exporter::Exported> r, Errc code, std::string_view says) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, code) << r.error().message;
        EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
    };
    refused(f->exporter.allocate(0, 16, DRM_FORMAT_ABGR8888), Errc::invalid_argument, "0x16");
    refused(f->exporter.allocate(1U << 20, 16, DRM_FORMAT_ABGR8888), Errc::invalid_argument, "maxImageDimension2D");
    refused(f->exporter.allocate(16, 16, DRM_FORMAT_NV12), Errc::unsupported, "2 planes");
    refused(f->exporter.allocate(16, 16, DRM_FORMAT_RGBA8888), Errc::unsupported, "channels swizzled");
    refused(f->exporter.allocate(16, 16, fourcc_code('Z', 'Z', 'Z', 'Z')), Errc::unsupported, "no Vulkan format");
    refused(f->exporter.allocate(16, 16, DRM_FORMAT_ABGR8888, {}), Errc::invalid_argument, "no candidate");
    const std::uint64_t tiled[] = {I915_FORMAT_MOD_X_TILED};
    refused(f->exporter.allocate(16, 16, DRM_FORMAT_ABGR8888, tiled), Errc::unsupported,
            GetParam() ? "does not list it" : "only LINEAR without VK_EXT_image_drm_format_modifier");
    EXPECT_EQ(testing::open_fd_count(), fds);
}

// The layout handed out is the one the driver wrote: for every 32-bit format the driver
// exports, an image 61 pixels wide (an odd width, so a driver that pads rows shows it) is
// filled by a Vulkan buffer copy and read back through the DMA-BUF's own CPU mapping, using
// the DmaBufImage's stride and offset: every byte exact.
TEST_P(VulkanExporterDriverTest, WhatVulkanWritesIsWhereTheDmaBufLayoutSays) {
    std::string skip;
    auto f = exporter_or_skip(GetParam(), skip);
    if (!f && !skip.empty()) TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST(skip);
    ASSERT_TRUE(f);
    auto queue = testing::TestQueue::create(f->vk);
    ASSERT_TRUE(queue) << queue.error().message;
    constexpr std::uint32_t w = 61;
    constexpr std::uint32_t h = 7;
    const std::uint64_t linear[] = {DRM_FORMAT_MOD_LINEAR};
    std::string exported_formats;
    for (const FormatMapping& mapping : format_mappings()) {
        const FormatInfo* info = find_format(mapping.fourcc);
        if (info == nullptr || info->plane_count != 1 || info->planes[0].bytes_per_pixel != 4) continue;
        if (!f->exporter.exportable_modifiers(mapping.fourcc, linear)) continue;
        exported_formats += format_name(mapping.fourcc) + " ";
        auto exported = f->exporter.allocate(w, h, mapping.fourcc);
        ASSERT_TRUE(exported) << exported.error().message;
        std::vector<std::uint8_t> pixels(std::size_t{w} * h * 4);
        for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 7 + mapping.fourcc);
        ASSERT_TRUE(queue->upload(exported->vulkan.image(), exported->vulkan.extent(), pixels, true, {}, {}));
        ASSERT_TRUE(queue->wait_idle());
        auto mapped = exported->image.map(Access::read);
        ASSERT_TRUE(mapped) << mapped.error().message;
        for (std::uint32_t y = 0; y < h; ++y) {
            ASSERT_EQ(std::memcmp(mapped->plane(0).data() + std::size_t{y} * mapped->stride(0),
                                  pixels.data() + std::size_t{y} * w * 4, std::size_t{w} * 4),
                      0)
                << format_name(mapping.fourcc) << " row " << y << " (stride " << mapped->stride(0) << ")";
        }
        EXPECT_TRUE(mapped->finish());
        ASSERT_TRUE(queue->wait_idle());
    }
    std::cout << "[measured] 32-bit formats exported as LINEAR DMA-BUFs: " << exported_formats << "\n";
    EXPECT_NE(exported_formats.find("ABGR8888"), std::string::npos);
    EXPECT_NE(exported_formats.find("XRGB8888"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(DrmFormatModifiers, VulkanExporterDriverTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                             return param.param ? "WithModifierExtension" : "WithoutModifierExtension";
                         });

}  // namespace
}  // namespace texshare::vulkan
