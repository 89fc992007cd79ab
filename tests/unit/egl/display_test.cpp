// Host lane: egl/display.hpp on a machine without a GPU. Mesa's surfaceless platform gives
// llvmpipe there: a GL context, but no DMA-BUF import or export, so these tests check
// displays and contexts, the refusals, the error names and fd hygiene. What a display with
// DMA-BUF import lists (dma_buf_formats) is checked in the VM lane (tests/vm/egl_vm_test).
// Needs (Debian 12): libepoxy-dev libegl-dev libgles-dev libegl-mesa0 libgl1-mesa-dri.
#include <sys/stat.h>

#include <array>
#include <string>

#include "support/egl_display.hpp"
#include "support/fd_count.hpp"
#include "support/gl_helpers.hpp"
#include "texshare/egl/display.hpp"

namespace texshare::egl {
namespace {

using testing::contains;
using testing::open_surfaceless_or_fail;

using EglTest = testing::FdLeakTest;

// Mesa's EGL vendor file: with it installed, a surfaceless display must open (software
// rendering at worst); without it, there is no EGL driver and the failure must say so.
bool mesa_egl_installed() {
    struct stat info {};
    return ::stat("/usr/share/glvnd/egl_vendor.d/50_mesa.json", &info) == 0;
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
    Display first = open_surfaceless_or_fail();
    ASSERT_NE(first.native(), EGL_NO_DISPLAY);
    {
        Display second = open_surfaceless_or_fail();
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
    Display owner = open_surfaceless_or_fail();
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
    EXPECT_EQ(empty.dma_buf_formats().error().code, Errc::invalid_argument);
    EXPECT_EQ(Display::wrap(EGL_NO_DISPLAY).error().code, Errc::invalid_argument);
    EXPECT_EQ(Display::open_gbm(nullptr).error().code, Errc::invalid_argument);
}

// llvmpipe on the surfaceless platform imports no DMA-BUF and so cannot list formats: an
// error naming the extension, never an empty set that would read as "imports nothing".
TEST_F(EglTest, DmaBufFormatsNeedTheModifiersExtension) {
    Display display = open_surfaceless_or_fail();
    ASSERT_NE(display.native(), EGL_NO_DISPLAY);
    auto formats = display.dma_buf_formats();
    auto render = display.render_formats();
    if (display.has_extension("EGL_EXT_image_dma_buf_import_modifiers")) {  // a machine with a GPU driver
        ASSERT_TRUE(formats) << formats.error().message;
        ASSERT_TRUE(render) << render.error().message;
        EXPECT_EQ(*render, formats->without(format_external_only));
        return;
    }
    ASSERT_FALSE(formats);
    EXPECT_EQ(formats.error().code, Errc::unsupported);
    EXPECT_TRUE(contains(formats.error().message, "lacks EGL_EXT_image_dma_buf_import_modifiers"))
        << formats.error().message;
    ASSERT_FALSE(render);
    EXPECT_EQ(render.error().code, Errc::unsupported);
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
