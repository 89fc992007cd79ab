// VM-lane support for DMA-BUFs that need no GPU (DMA-BUF heaps, udmabuf), in the 6.12 guest:
// a pixel pattern written and checked through the CPU, checked in a Vulkan readback, the
// exporter's name of a DMA-BUF, and what Mesa 25's EGL does with such a buffer on each DRM
// driver. Used by dma_heap_vm_test and udmabuf_vm_test, inside their forked children.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/gl_helpers.hpp"
#include "support/two_process.hpp"
#include "support/vulkan_readback.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/egl/importer.hpp"
#include "vm/gl_side.hpp"

namespace texshare::testing {

// ABGR8888 keeps R, G, B, A in memory order: what Vulkan's R8G8B8A8 and GL's RGBA copy as is.
inline constexpr std::uint32_t test_fourcc = DRM_FORMAT_ABGR8888;

// Pixel (x, y) of pattern `seed`: every seed gives every pixel different bytes than the last.
inline std::array<std::uint8_t, 4> pattern(std::uint32_t x, std::uint32_t y, std::uint32_t seed) {
    return {static_cast<std::uint8_t>(x * 3 + seed * 17), static_cast<std::uint8_t>(y * 5 + seed * 29),
            static_cast<std::uint8_t>(x * y + seed), static_cast<std::uint8_t>(255 - x - seed * 7)};
}

// Writes pattern `seed` into every pixel through a CPU mapping (for a DMA-BUF: between
// DMA_BUF_IOCTL_SYNC start and end).
inline void write_pattern(const DmaBufImage& image, std::uint32_t seed) {
    auto mapping = image.map(Access::write);
    ASSERT_TRUE(mapping) << mapping.error().message;
    for (std::uint32_t y = 0; y < image.height(); ++y) {
        for (std::uint32_t x = 0; x < image.width(); ++x) {
            const auto rgba = pattern(x, y, seed);
            std::memcpy(mapping->plane(0).data() + std::size_t{y} * mapping->stride(0) + x * 4, rgba.data(), 4);
        }
    }
    auto finished = mapping->finish();
    ASSERT_TRUE(finished) << finished.error().message;
}

// Every pixel of a CPU mapping of `image` is pattern `seed`.
inline void expect_cpu_pattern(const DmaBufImage& image, std::uint32_t seed) {
    auto mapping = image.map(Access::read);
    ASSERT_TRUE(mapping) << mapping.error().message;
    for (std::uint32_t y = 0; y < image.height(); ++y) {
        for (std::uint32_t x = 0; x < image.width(); ++x) {
            const auto want = pattern(x, y, seed);
            const std::byte* got = mapping->plane(0).data() + std::size_t{y} * mapping->stride(0) + x * 4;
            ASSERT_EQ(std::memcmp(got, want.data(), 4), 0) << "pixel " << x << "," << y << " of pattern " << seed;
        }
    }
}

// Every pixel of tightly packed RGBA rows (a readback) is pattern `seed`.
inline void expect_packed_pattern(const std::vector<std::uint8_t>& pixels, std::uint32_t width, std::uint32_t height,
                                  std::uint32_t seed, std::string_view who) {
    ASSERT_EQ(pixels.size(), std::size_t{width} * height * 4) << who;
    for (std::uint32_t y = 0; y < height; ++y) {
        for (std::uint32_t x = 0; x < width; ++x) {
            const auto want = pattern(x, y, seed);
            ASSERT_EQ(std::memcmp(pixels.data() + (std::size_t{y} * width + x) * 4, want.data(), 4), 0)
                << who << ": pixel " << x << "," << y << " of pattern " << seed;
        }
    }
}

// Whether packed RGBA rows hold pattern `seed` exactly (for the cases that must not).
inline bool is_pattern(const std::vector<std::uint8_t>& pixels, std::uint32_t width, std::uint32_t height,
                       std::uint32_t seed) {
    if (pixels.size() != std::size_t{width} * height * 4) return false;
    for (std::uint32_t i = 0; i < width * height; ++i) {
        const auto want = pattern(i % width, i / width, seed);
        if (std::memcmp(pixels.data() + std::size_t{i} * 4, want.data(), 4) != 0) return false;
    }
    return true;
}

// The DMA-BUF's exporter as the kernel names it (/proc/self/fdinfo's exp_name: "system"
// for the system heap, "udmabuf"), or "" when the fd has none.
inline std::string exporter_name(BorrowedFd fd) {
    std::ifstream fdinfo(fmt::format("/proc/self/fdinfo/{}", fd.get()));
    std::string line;
    while (std::getline(fdinfo, line)) {
        if (line.rfind("exp_name:", 0) == 0) {
            const auto start = line.find_first_not_of(" \t", 9);
            return start == std::string::npos ? "" : line.substr(start);
        }
    }
    return "";
}

// The Vulkan readback of `image` shows pattern `seed` in every pixel.
inline void expect_vulkan_pattern(const VulkanImportedImage& imported, const DmaBufImage& image, std::uint32_t seed,
                                  std::string_view who) {
    auto pixels = imported.read_pixels();
    ASSERT_TRUE(pixels) << who << ": " << pixels.error().message;
    expect_packed_pattern(*pixels, image.width(), image.height(), seed, who);
}

// What Mesa 25's EGL does with a DMA-BUF that no GPU exported (measured in the 6.12 guest,
// docs/vm-lane-facts.md): on virtio_gpu eglCreateImage fails with EGL_BAD_ALLOC (the driver
// refuses the PRIME import), and texshare's Importer says so; on vgem eglCreateImage
// "succeeds" but the buffer cannot be mapped (vgem refuses to map an imported buffer), so
// glReadPixels gives GL_OUT_OF_MEMORY. egl::Importer::import() reports that import as a
// success; Importer::check_readable(), which every path that only some drivers can take asks
// before calling an import working (ImportListener's udmabuf path), catches it, and so does
// the readback here. (A draw that samples such a texture crashes llvmpipe: nothing draws.)
// The image holds pattern `seed`.
inline void expect_egl_cannot_import(const DmaBufImage& image, std::uint32_t seed) {
    {
        SCOPED_TRACE("virtio_gpu");
        auto gl = open_gl_side("virtio_gpu");
        ASSERT_TRUE(gl);
        auto imported = gl->importer.import(1, image);
        ASSERT_FALSE(imported) << "virtio_gpu's EGL imported a DMA-BUF of no GPU";
        EXPECT_NE(imported.error().message.find("EGL_BAD_ALLOC"), std::string::npos) << imported.error().message;
    }
    {
        SCOPED_TRACE("vgem");
        auto gl = open_gl_side("vgem");
        ASSERT_TRUE(gl);
        auto imported = gl->importer.import(1, image);
        ASSERT_TRUE(imported) << "vgem's EGL import used to succeed (falsely); now: " << imported.error().message;
        auto readable = gl->importer.check_readable(1, image);
        ASSERT_FALSE(readable) << "check_readable took vgem's import of a buffer it cannot map as working";
        EXPECT_EQ(readable.error().code, Errc::unsupported);
        EXPECT_NE(readable.error().message.find("GL_OUT_OF_MEMORY"), std::string::npos) << readable.error().message;
        auto pixels = read_pixels(gl->display, imported->target, imported->texture, image.width(), image.height());
        ASSERT_FALSE(pixels && is_pattern(*pixels, image.width(), image.height(), seed))
            << "vgem's import reads back right: the fact this test asserts has changed";
        ASSERT_FALSE(pixels) << "vgem's readback used to fail with GL_OUT_OF_MEMORY; now it gives wrong pixels";
        EXPECT_NE(pixels.error().message.find("GL_OUT_OF_MEMORY"), std::string::npos) << pixels.error().message;
        EXPECT_TRUE(gl->importer.release(1));
    }
}

}  // namespace texshare::testing
