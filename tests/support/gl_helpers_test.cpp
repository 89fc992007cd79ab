// The GL helpers of tests/support/gl_helpers.hpp (which the VM lane, the example and
// texshare-info read images back with) on plain textures of Mesa's surfaceless llvmpipe.
#include <array>
#include <string>

#include "support/egl_display.hpp"
#include "support/fd_count.hpp"
#include "support/gl_helpers.hpp"

namespace texshare::testing {
namespace {


using egl::Display;
using GlHelpersTest = FdLeakTest;

// The FBO helpers the VM lane reads images back with, on a plain texture.
TEST_F(GlHelpersTest, ClearDrawAndReadBackThroughFramebuffers) {
    Display display = open_surfaceless_or_fail();
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

TEST_F(GlHelpersTest, ReadingANonTextureIsAGlError) {
    Display display = open_surfaceless_or_fail();
    ASSERT_NE(display.native(), EGL_NO_DISPLAY);
    auto pixels = read_pixels(display, GL_TEXTURE_2D, 12345, 4, 4);
    ASSERT_FALSE(pixels);
    EXPECT_EQ(pixels.error().code, Errc::unsupported);
    EXPECT_TRUE(contains(pixels.error().message, "framebuffer with texture 12345 is incomplete"))
        << pixels.error().message;
}

}  // namespace
}  // namespace texshare::testing
