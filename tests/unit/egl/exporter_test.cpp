// Host lane: egl/exporter.hpp on Mesa's surfaceless llvmpipe, which lists
// EGL_MESA_image_dma_buf_export where Mesa builds it but exports no fd (the Makepad bug's
// root cause): the Exporter must say Errc::unsupported and leak nothing, never hand out an
// image without DMA-BUF fds. A real export would run in the VM lane (egl_vm_test).
#include <array>
#include <string>

#include "support/egl_display.hpp"
#include "support/fd_count.hpp"
#include "support/gl_helpers.hpp"
#include "texshare/egl/exporter.hpp"

namespace texshare::egl {
namespace {

using testing::contains;
using testing::open_surfaceless_or_fail;

using EglExporterTest = testing::FdLeakTest;

TEST_F(EglExporterTest, AnEmptyDisplayIsAnError) {
    EXPECT_EQ(Exporter::create(Display()).error().code, Errc::invalid_argument);
}

TEST_F(EglExporterTest, ExporterNeedsMesaDmaBufExport) {
    Display display = open_surfaceless_or_fail();
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

TEST_F(EglExporterTest, WhatIsNotATextureOrNotReallyExportedIsRefused) {
    Display display = open_surfaceless_or_fail();
    ASSERT_NE(display.native(), EGL_NO_DISPLAY);
    auto exporter = Exporter::create(display);
    if (!exporter) {
        EXPECT_EQ(exporter.error().code, Errc::unsupported) << "covered by ExporterNeedsMesaDmaBufExport";
        return;
    }
    auto none = exporter->export_texture(12345, 8, 8);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, Errc::invalid_argument);
    EXPECT_TRUE(contains(none.error().message, "12345 is not a texture name")) << none.error().message;

    GLuint texture = 0;
    glGenTextures(1, &texture);
    glBindTexture(GL_TEXTURE_2D, texture);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, 8, 8, 0, GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
    glBindTexture(GL_TEXTURE_2D, 0);
    auto exported = exporter->export_texture(texture, 8, 8);
    glDeleteTextures(1, &texture);
    if (display.renderer().find("llvmpipe") == std::string::npos) return;  // a real driver may export
    ASSERT_FALSE(exported) << "llvmpipe exported a DMA-BUF: update docs/vm-lane-facts.md";
    EXPECT_EQ(exported.error().code, Errc::unsupported) << exported.error().message;
}

}  // namespace
}  // namespace texshare::egl
