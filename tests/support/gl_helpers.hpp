// GL helpers for texshare's own tests, tools, example and benchmark (never installed, not
// texshare::egl's API): clear, draw and read back textures through a temporary framebuffer,
// so a test can put known pixels into an imported image and check what another process
// sees. Each makes the Display's context current, restores the framebuffer, texture,
// program and buffer bindings it changed, and deletes the GL objects it created.
// Built as the static library texshare_gl_support (tests/support/GlSupport.cmake).
#pragma once

#include <epoxy/egl.h>
#include <epoxy/gl.h>

#include <cstdint>
#include <vector>

#include "texshare/egl/display.hpp"
#include "texshare/result.hpp"

namespace texshare::testing {

// width x height RGBA8 pixels of a texture, row 0 first (the texture's first row, which for
// an imported image is the first row in memory). GL_TEXTURE_2D is read through an FBO;
// other targets (external YUV) are first drawn into an RGBA texture, so that is sampled
// colour, converted by the driver. Errc::unsupported naming the GL error.
Result<std::vector<std::uint8_t>> read_pixels(const egl::Display& display, GLenum target, GLuint texture,
                                              std::uint32_t width, std::uint32_t height);
// Clears a GL_TEXTURE_2D (an imported image included) to one colour through an FBO and
// waits with glFinish, so another process sees the pixels once this returns.
Result<void> clear_texture(const egl::Display& display, GLuint texture, float red, float green, float blue,
                           float alpha);
// Draws `source` (any target) over all of the GL_TEXTURE_2D `destination` through an FBO,
// then glFinish.
Result<void> draw_texture(const egl::Display& display, GLenum source_target, GLuint source, GLuint destination,
                          std::uint32_t width, std::uint32_t height);

}  // namespace texshare::testing
