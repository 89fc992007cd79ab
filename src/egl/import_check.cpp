// Importer::check_readable: an import proven by reading it back, not by eglCreateImage's
// success. Mesa 25 on vgem creates the EGLImage and texture for a buffer it cannot map, and
// the first read fails (GL_OUT_OF_MEMORY) or a draw sampling it crashes llvmpipe (measured
// in the VM lane's backports guest; docs/vm-lane-facts.md). Paths that only some drivers
// can take (udmabuf) ask this once per image before calling the import working.
#include <array>
#include <cstdint>
#include <cstring>

#include "display_state.hpp"
#include "texshare/egl/importer.hpp"

namespace texshare::egl {

namespace {

// The 32-bit RGB formats whose first pixel is compared byte for byte: glReadPixels gives
// R, G, B, A; in memory ARGB8888/XRGB8888 hold B, G, R, A and ABGR8888/XBGR8888 R, G, B, A
// (drm_fourcc.h: little-endian). Other formats are checked for readability only.
bool expected_rgb(std::uint32_t fourcc, const std::byte* memory, std::array<std::uint8_t, 3>& rgb) {
    const auto byte = [memory](int i) { return std::to_integer<std::uint8_t>(memory[i]); };
    switch (fourcc) {
        case DRM_FORMAT_ARGB8888:
        case DRM_FORMAT_XRGB8888:
            rgb = {byte(2), byte(1), byte(0)};
            return true;
        case DRM_FORMAT_ABGR8888:
        case DRM_FORMAT_XBGR8888:
            rgb = {byte(0), byte(1), byte(2)};
            return true;
        default:
            return false;
    }
}

}  // namespace

Result<void> Importer::check_readable(std::uint64_t image_id, const DmaBufImage& image) const {
    const ImportedTexture* imported = find(image_id);
    if (imported == nullptr) return make_error(Errc::invalid_argument, "check_readable: no import for image {}", image_id);
    if (imported->target != GL_TEXTURE_2D) {
        // An external texture cannot be attached to a framebuffer; reading it needs a draw,
        // which is exactly what crashes on a buffer the driver cannot map.
        return make_error(Errc::unsupported,
                          "image {}: imported as an external texture, which cannot be read back without drawing it",
                          image_id);
    }
    auto mapping = image.map(Access::read);
    if (!mapping) return std::move(mapping).error();
    std::array<std::uint8_t, 3> want{};
    const bool compare = expected_rgb(image.fourcc(), mapping->plane(0).data(), want);
    if (auto current = state_->make_current(); !current) return std::move(current).error();
    detail::drain_gl_errors();
    GLuint framebuffer = 0;
    GLint previous = 0;
    glGetIntegerv(GL_FRAMEBUFFER_BINDING, &previous);
    glGenFramebuffers(1, &framebuffer);
    glBindFramebuffer(GL_FRAMEBUFFER, framebuffer);
    glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, imported->texture, 0);
    const GLenum status = glCheckFramebufferStatus(GL_FRAMEBUFFER);
    std::array<std::uint8_t, 4> got{};
    GLenum error = GL_NO_ERROR;
    if (status == GL_FRAMEBUFFER_COMPLETE) {
        glReadPixels(0, 0, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, got.data());
        error = glGetError();
    }
    glBindFramebuffer(GL_FRAMEBUFFER, static_cast<GLuint>(previous));
    glDeleteFramebuffers(1, &framebuffer);
    if (status != GL_FRAMEBUFFER_COMPLETE) {
        return make_error(Errc::unsupported, "image {}: its texture cannot be a framebuffer (status 0x{:x})",
                          image_id, status);
    }
    if (error != GL_NO_ERROR) {
        return make_error(Errc::unsupported, "image {}: imported, but reading it back failed: glReadPixels gave {}",
                          image_id, gl_error_name(error));
    }
    if (compare && (got[0] != want[0] || got[1] != want[1] || got[2] != want[2])) {
        return make_error(Errc::unsupported,
                          "image {}: imported, but its first pixel reads back as RGB {},{},{} where memory holds "
                          "{},{},{}",
                          image_id, got[0], got[1], got[2], want[0], want[1], want[2]);
    }
    return {};
}

}  // namespace texshare::egl
