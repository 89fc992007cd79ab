// Host lane: texshare::egl on a machine without a GPU. Mesa's surfaceless platform gives
// llvmpipe there, which has a GL context but no DMA-BUF import or export, so these tests
// check what that allows: displays and contexts, the FBO helpers, the refusals, the error
// names and fd hygiene. Importing real DMA-BUFs is the VM lane's job (tests/vm/egl_vm_test).
// Needs (Debian 12): libepoxy-dev libegl-dev libgles-dev libegl-mesa0 libgl1-mesa-dri.
#include <sys/stat.h>

#include <array>
#include <string>

#include "support/fd_count.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare::egl {
namespace {

using EglTest = testing::FdLeakTest;

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

// Mesa's EGL vendor file: with it installed, a surfaceless display must open (software
// rendering at worst); without it, there is no EGL driver and the failure must say so.
bool mesa_egl_installed() {
    struct stat info {};
    return ::stat("/usr/share/glvnd/egl_vendor.d/50_mesa.json", &info) == 0;
}

Display open_or_fail() {
    auto display = Display::open_surfaceless();
    if (!display) {
        ADD_FAILURE() << "surfaceless display: " << display.error().message;
        return Display();
    }
    return std::move(*display);
}

TEST_F(EglTest, SurfacelessDisplayHasACurrentContext) {
    auto display = Display::open_surfaceless();
    if (!mesa_egl_installed()) {
        ASSERT_FALSE(display) << "an EGL display without Mesa's EGL installed?";
        EXPECT_EQ(display.error().code, Errc::unsupported);
        EXPECT_FALSE(display.error().message.empty());
        return;
    }
    ASSERT_TRUE(display) << display.error().message;
    EXPECT_NE(display->native(), EGL_NO_DISPLAY);
    EXPECT_EQ(display->platform(), "surfaceless");
    EXPECT_EQ(eglGetCurrentContext(), display->context());
    EXPECT_TRUE(display->has_extension("EGL_KHR_surfaceless_context"));
    EXPECT_FALSE(display->has_extension("EGL_KHR_surfaceless"));  // whole words only
    EXPECT_FALSE(display->renderer().empty());
    EXPECT_TRUE(display->make_current());
}

TEST_F(EglTest, OpenWithoutGbmDeviceFallsBackToSurfaceless) {
    auto display = Display::open(nullptr);
    ASSERT_EQ(display.has_value(), mesa_egl_installed()) << (display ? "" : display.error().message);
    if (display) {
        EXPECT_EQ(display->platform(), "surfaceless");
    } else {
        EXPECT_TRUE(contains(display.error().message, "no gbm_device given"));
    }
}

TEST_F(EglTest, DisplaysOnOneEglDisplayTerminateItOnlyWhenTheLastGoes) {
    Display first = open_or_fail();
    ASSERT_NE(first.native(), EGL_NO_DISPLAY);
    {
        Display second = open_or_fail();
        EXPECT_EQ(second.native(), first.native()) << "EGL hands out one EGLDisplay per platform display";
        auto wrapped = Display::wrap(first.native());  // the caller's: never terminated by us
        ASSERT_TRUE(wrapped) << wrapped.error().message;
        EXPECT_EQ(wrapped->platform(), "caller's");
        EXPECT_NE(wrapped->context(), first.context());
    }
    EXPECT_NE(eglQueryString(first.native(), EGL_VENDOR), nullptr) << "terminated under a live Display";
    EXPECT_TRUE(first.make_current());
    EXPECT_FALSE(first.renderer().empty());
}

TEST_F(EglTest, WrapUsesTheCallersContextWithoutDestroyingIt) {
    Display owner = open_or_fail();
    ASSERT_NE(owner.native(), EGL_NO_DISPLAY);
    {
        auto wrapped = Display::wrap(owner.native(), owner.context());
        ASSERT_TRUE(wrapped) << wrapped.error().message;
        EXPECT_EQ(wrapped->context(), owner.context());
    }
    EXPECT_TRUE(owner.make_current()) << "the wrapped Display destroyed a context it did not create";
}

TEST_F(EglTest, EmptyAndBadDisplaysAreErrors) {
    Display empty;
    EXPECT_EQ(empty.native(), EGL_NO_DISPLAY);
    EXPECT_EQ(empty.make_current().error().code, Errc::invalid_argument);
    EXPECT_EQ(Importer::create(empty).error().code, Errc::invalid_argument);
    EXPECT_EQ(Exporter::create(empty).error().code, Errc::invalid_argument);
    EXPECT_EQ(Display::wrap(EGL_NO_DISPLAY).error().code, Errc::invalid_argument);
    EXPECT_EQ(Display::open_gbm(nullptr).error().code, Errc::invalid_argument);
}

TEST_F(EglTest, ImporterNeedsDmaBufImport) {
    Display display = open_or_fail();
    ASSERT_NE(display.native(), EGL_NO_DISPLAY);
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

TEST_F(EglTest, ExporterNeedsMesaDmaBufExport) {
    Display display = open_or_fail();
    ASSERT_NE(display.native(), EGL_NO_DISPLAY);
    auto exporter = Exporter::create(display);
    if (display.has_extension("EGL_MESA_image_dma_buf_export")) {
        ASSERT_TRUE(exporter) << exporter.error().message;
        return;
    }
    ASSERT_FALSE(exporter);
    EXPECT_EQ(exporter.error().code, Errc::unsupported);
    EXPECT_TRUE(contains(exporter.error().message, "EGL_MESA_image_dma_buf_export is missing"))
        << exporter.error().message;
}

TEST_F(EglTest, SharedMemoryAndCpuImagesAreNotImportable) {
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

// The FBO helpers the VM lane reads images back with, on a plain texture.
TEST_F(EglTest, ClearDrawAndReadBackThroughFramebuffers) {
    Display display = open_or_fail();
    ASSERT_NE(display.native(), EGL_NO_DISPLAY);
    constexpr std::uint32_t size = 8;
    std::array<GLuint, 2> textures{};
    glGenTextures(2, textures.data());
    for (GLuint texture : textures) {
        glBindTexture(GL_TEXTURE_2D, texture);
        glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, size, size, 0, GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    }
    glBindTexture(GL_TEXTURE_2D, 0);
    ASSERT_TRUE(clear_texture(display, textures[0], 51 / 255.0F, 102 / 255.0F, 153 / 255.0F, 204 / 255.0F));
    auto cleared = read_pixels(display, GL_TEXTURE_2D, textures[0], size, size);
    ASSERT_TRUE(cleared) << cleared.error().message;
    ASSERT_EQ(cleared->size(), std::size_t{size} * size * 4);
    for (std::size_t i = 0; i < cleared->size(); i += 4) {
        ASSERT_EQ((std::array{(*cleared)[i], (*cleared)[i + 1], (*cleared)[i + 2], (*cleared)[i + 3]}),
                  (std::array<std::uint8_t, 4>{51, 102, 153, 204}))
            << "pixel " << i / 4;
    }
    auto drawn = draw_texture(display, GL_TEXTURE_2D, textures[0], textures[1], size, size);
    ASSERT_TRUE(drawn) << drawn.error().message;
    auto copied = read_pixels(display, GL_TEXTURE_2D, textures[1], size, size);
    ASSERT_TRUE(copied) << copied.error().message;
    EXPECT_EQ(*copied, *cleared);
    GLint bound = -1;
    glGetIntegerv(GL_FRAMEBUFFER_BINDING, &bound);
    EXPECT_EQ(bound, 0) << "helpers restore the framebuffer binding";
    glDeleteTextures(2, textures.data());
}

TEST_F(EglTest, ReadingANonTextureIsAGlError) {
    Display display = open_or_fail();
    ASSERT_NE(display.native(), EGL_NO_DISPLAY);
    auto pixels = read_pixels(display, GL_TEXTURE_2D, 12345, 4, 4);
    ASSERT_FALSE(pixels);
    EXPECT_EQ(pixels.error().code, Errc::unsupported);
    EXPECT_TRUE(contains(pixels.error().message, "framebuffer with texture 12345 is incomplete"))
        << pixels.error().message;
}

TEST_F(EglTest, ErrorNamesCarryNameAndHex) {
    EXPECT_EQ(egl_error_name(EGL_BAD_MATCH), "EGL_BAD_MATCH (0x3009)");
    EXPECT_EQ(egl_error_name(EGL_SUCCESS), "EGL_SUCCESS (0x3000)");
    EXPECT_EQ(egl_error_name(0x1234), "unknown EGL error (0x1234)");
    EXPECT_EQ(gl_error_name(GL_INVALID_OPERATION), "GL_INVALID_OPERATION (0x0502)");
    EXPECT_EQ(gl_error_name(GL_OUT_OF_MEMORY), "GL_OUT_OF_MEMORY (0x0505)");
    EXPECT_EQ(gl_error_name(0x9999), "unknown GL error (0x9999)");
}

}  // namespace
}  // namespace texshare::egl
