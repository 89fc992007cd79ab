// Host lane: egl/importer.hpp where EGL imports no DMA-BUF (Mesa's surfaceless llvmpipe):
// the Importer must refuse to exist, naming the missing extension, and check_importable
// must refuse what EGL can never import. Real imports run in the VM lane
// (tests/vm/egl_vm_test, frame_import_vm_test, egl_import_listener_test).
#include <fcntl.h>

#include <array>
#include <string>

#include "support/egl_display.hpp"
#include "support/fd_count.hpp"
#include "texshare/egl/display.hpp"
#include "texshare/egl/exporter.hpp"
#include "texshare/egl/fence.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/memfd_allocator.hpp"

// texshare::egl's public headers spell EGL handles and GL names without <epoxy/...>
// (display.hpp), so a caller that includes them gets no GL headers (issue 12, item 1).
#if defined(EGL_NO_DISPLAY) || defined(GL_TEXTURE_2D) || defined(EPOXY_EGL_H) || defined(EPOXY_GL_H)
#error "a public texshare::egl header includes <epoxy/...>"
#endif

namespace texshare::egl {
namespace {

using testing::contains;
using testing::open_surfaceless_or_fail;

using EglImporterTest = testing::FdLeakTest;

TEST_F(EglImporterTest, AnEmptyDisplayIsAnError) {
    EXPECT_EQ(Importer::create(Display()).error().code, Errc::invalid_argument);
}

TEST_F(EglImporterTest, ImporterNeedsDmaBufImport) {
    Display display = open_surfaceless_or_fail();
    ASSERT_NE(display.native(), nullptr);
    auto importer = Importer::create(display);
    if (display.has_extension("EGL_EXT_image_dma_buf_import")) {  // a machine with a GPU driver
        ASSERT_TRUE(importer) << importer.error().message;
        EXPECT_EQ(importer->size(), 0U);
        return;
    }
    ASSERT_FALSE(importer);
    EXPECT_EQ(importer.error().code, Errc::unsupported);
    EXPECT_TRUE(
        contains(importer.error().message, "EGL_EXT_image_dma_buf_import is missing on the surfaceless"))
        << importer.error().message;
}

TEST_F(EglImporterTest, SharedMemoryAndCpuImagesAreNotImportable) {
    auto memfd = MemfdAllocator().allocate(8, 8, DRM_FORMAT_ABGR8888);
    ASSERT_TRUE(memfd) << memfd.error().message;
    auto refused = check_importable(5, *memfd);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unsupported);
    EXPECT_EQ(refused.error().message,
              "image 5: a shared_memory image cannot be imported: EGL imports DMA-BUFs only (map it and "
              "upload the pixels instead)");

    auto layout = make_packed_layout(DRM_FORMAT_ABGR8888, 8, 8);
    ASSERT_TRUE(layout);
    auto cpu = DmaBufImage::create_cpu_only(*layout);
    ASSERT_TRUE(cpu);
    EXPECT_TRUE(contains(check_importable(6, *cpu).error().message, "a cpu_only image cannot be imported"));
    EXPECT_EQ(check_importable(7, DmaBufImage()).error().code, Errc::unsupported);
}

// A Vulkan driver's OPAQUE_FD memory: neither EGL nor the CPU can use it.
TEST_F(EglImporterTest, OpaqueFdImagesAreRefusedNamingTheBacking) {
    OpaqueMemory memory;
    memory.allocation_size = 4096;
    memory.image_usage = 0x4;
    auto image = DmaBufImage::adopt_opaque_fd(8, 8, DRM_FORMAT_ABGR8888, memory,
                                              UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)));
    ASSERT_TRUE(image) << image.error().message;
    auto refused = check_importable(8, *image);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unsupported);
    EXPECT_TRUE(contains(refused.error().message, "image 8: an opaque_fd image cannot be imported"))
        << refused.error().message;
    EXPECT_TRUE(contains(refused.error().message, "texshare::vulkan")) << refused.error().message;
}

// The colour hints (issue 16): the token values are eglext.h's (EGL_EXT_image_dma_buf_import),
// spelled here as numbers because this test includes no EGL header.
TEST_F(EglImporterTest, YuvImagesCarryTheirColourAsEglHints) {
    constexpr std::int32_t color_space = 0x327B, sample_range = 0x327C, horizontal = 0x327D, vertical = 0x327E;
    constexpr std::int32_t rec601 = 0x327F, rec709 = 0x3280, rec2020 = 0x3281, full = 0x3282, narrow = 0x3283;
    constexpr std::int32_t siting_0 = 0x3284, siting_0_5 = 0x3285;
    ColorInfo video;
    video.matrix = YuvMatrix::bt709;
    video.range = YuvRange::limited;
    video.chroma_horizontal = ChromaSiting::cosited;
    video.chroma_vertical = ChromaSiting::midpoint;
    EXPECT_EQ(color_hint_attributes(video, DRM_FORMAT_NV12),
              (std::vector<std::int32_t>{color_space, rec709, sample_range, narrow, horizontal, siting_0, vertical,
                                         siting_0_5}));
    video.matrix = YuvMatrix::bt2020;
    video.range = YuvRange::full;
    video.chroma_horizontal = ChromaSiting::midpoint;
    EXPECT_EQ(color_hint_attributes(video, DRM_FORMAT_P010),
              (std::vector<std::int32_t>{color_space, rec2020, sample_range, full, horizontal, siting_0_5, vertical,
                                         siting_0_5}));
    EXPECT_EQ(color_hint_attributes(ColorInfo{}, DRM_FORMAT_YUV420),
              (std::vector<std::int32_t>{color_space, rec601, sample_range, narrow, horizontal, siting_0, vertical,
                                         siting_0}))
        << "unspecified: the spec's own defaults, said explicitly";
    ColorInfo srgb;
    srgb.transfer = TransferFunction::srgb;
    EXPECT_TRUE(color_hint_attributes(srgb, DRM_FORMAT_ARGB8888).empty()) << "no YUV hints for an RGB format";
}

}  // namespace
}  // namespace texshare::egl
