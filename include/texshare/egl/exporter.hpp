// texshare::egl::Exporter: a GL texture out of the process as a DmaBufImage
// (EGL_MESA_image_dma_buf_export).
//
// Use it where a texture this process rendered must be shared without a copy. Many drivers
// list the extension but cannot really export (llvmpipe "succeeds" without an fd; NVIDIA's
// driver fails with EGL_BAD_MATCH): the Exporter reports that as Errc::unsupported instead
// of handing out an fd that is not a DMA-BUF. Where export fails, allocate with GBM and
// import instead (importer.hpp): that path works on more drivers.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <memory>

#include "texshare/dma_buf_image.hpp"
#include "texshare/egl/display.hpp"
#include "texshare/result.hpp"

namespace texshare::egl {

class Exporter {
public:
    // Errc::invalid_argument for an empty Display; Errc::unsupported naming the first
    // missing extension among EGL_KHR_image_base, EGL_KHR_gl_texture_2D_image and
    // EGL_MESA_image_dma_buf_export.
    static Result<Exporter> create(const Display& display);

    // The GL_TEXTURE_2D `texture` (a GLuint of the Display's context; level 0, width x
    // height as it was created with) as a dma_buf image sharing the texture's memory; the
    // image owns the plane fds. A failed export, or one that "succeeds" without an fd, is
    // Errc::unsupported: never a DmaBufImage without real DMA-BUF fds. The temporary
    // EGLImage is destroyed on every path. A plane after the first whose fd slot comes back
    // -1 shares the previous plane's buffer (the extension's rule) and gets a duplicate of
    // its fd.
    Result<DmaBufImage> export_texture(std::uint32_t texture, std::uint32_t width, std::uint32_t height) const;

private:
    Exporter() = default;
    std::shared_ptr<detail::DisplayState> state_;
};

}  // namespace texshare::egl
