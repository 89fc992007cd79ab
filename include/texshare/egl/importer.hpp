// texshare::egl::Importer: DMA-BUF images in, GL textures out, through EGL and libepoxy.
//
// Use an Importer in the process that draws with images another process allocated: it
// turns each received DmaBufImage into an EGLImage and a GL texture once, keeps them by the
// image's id, and destroys both when the image is released. Its formats() are what a
// consumer advertises: FormatTable{device, importer.formats()} (format_table.hpp). To keep
// an Importer in step with a frame endpoint, use ImportListener (import_listener.hpp).
//
// An import does not keep the DmaBufImage's fds: EGL holds its own reference to the
// buffer, so the image may be dropped once imported. The Importer shares its Display's EGL
// display and context (display.hpp says how long they live and on which thread to call).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <map>
#include <vector>
#include <memory>

#include "texshare/color_info.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/egl/display.hpp"
#include "texshare/format_set.hpp"
#include "texshare/result.hpp"

namespace texshare::egl {

struct ImportedTexture {
    std::uint32_t texture = 0;  // a GLuint of the Display's context
    // GL_TEXTURE_2D, or GL_TEXTURE_EXTERNAL_OES for YUV and external-only pairs (a GLenum)
    std::uint32_t target = 0;
    NativeImage image = nullptr;  // the EGLImage; EGL_NO_IMAGE_KHR (null) when none
};

// The checks import() makes before it asks the driver: the image is a DMA-BUF (EGL
// imports nothing else: a cpu_only, shared_memory or opaque_fd image is Errc::unsupported,
// the opaque_fd refusal saying that only texshare::vulkan imports it) with an fd
// for every plane (Errc::invalid_argument). Lets a caller choose the CPU path for an image
// before importing.
Result<void> check_importable(std::uint64_t image_id, const DmaBufImage& image);

// The colour hints import() adds to eglCreateImageKHR's attributes for an image of `fourcc`
// with `color` (EGL_EXT_image_dma_buf_import): for a YUV format, EGL_YUV_COLOR_SPACE_HINT_EXT
// (EGL_ITU_REC601/709/2020_EXT), EGL_SAMPLE_RANGE_HINT_EXT (EGL_YUV_NARROW/FULL_RANGE_EXT),
// EGL_YUV_CHROMA_HORIZONTAL_SITING_HINT_EXT and _VERTICAL_ (EGL_YUV_CHROMA_SITING_0_EXT for
// cosited, _0_5_EXT for midpoint), each followed by its value, unspecified fields resolved to
// resolve_color()'s defaults (which are the spec's defaults for these hints); empty for any
// other format (the spec defines the hints for YUV formats only). Transfer function,
// primaries and alpha mode have no EGL attribute: a consumer reads them from image.color().
std::vector<std::int32_t> color_hint_attributes(const ColorInfo& color, std::uint32_t fourcc);

class Importer {
public:
    // Checks EGL_EXT_image_dma_buf_import and EGL_KHR_image_base (required; Errc::unsupported
    // naming the one missing), _modifiers (optional: without it only implicit modifiers
    // import) and GL_OES_EGL_image (required), and asks for the importable formats once
    // (Display::dma_buf_formats). Errc::invalid_argument for an empty Display.
    static Result<Importer> create(const Display& display);

    Importer(Importer&& other) noexcept;
    Importer& operator=(Importer&& other) noexcept;
    Importer(const Importer&) = delete;
    Importer& operator=(const Importer&) = delete;
    ~Importer();  // releases every import

    bool has_modifiers() const noexcept { return has_modifiers_; }
    // Display::dma_buf_formats() as it was at create(); empty when the display cannot say
    // (no EGL_EXT_image_dma_buf_import_modifiers).
    const FormatSet& formats() const noexcept { return formats_; }

    // The image as an EGLImage and a texture, kept under image_id until release().
    // Errc::unsupported for cpu_only and shared_memory images (EGL imports DMA-BUFs only),
    // a fourcc the display does not list, an external-only pair without
    // GL_OES_EGL_image_external, and a driver refusal (naming the EGL or GL error);
    // Errc::invalid_argument for an id already in use.
    Result<ImportedTexture> import(std::uint64_t image_id, const DmaBufImage& image);
    // Deletes the texture and destroys the EGLImage; Errc::invalid_argument for an unknown id.
    Result<void> release(std::uint64_t image_id);
    void release_all() noexcept;
    // Moves an import to another id (FrameReceiver keeps a dead producer's last frame under
    // retained_image_id). Errc::invalid_argument if `from` is unknown or `to` is taken.
    Result<void> rename(std::uint64_t from, std::uint64_t to);

    // Reads image_id's import back (one pixel, through a framebuffer) and, for the 32-bit
    // RGB formats, compares it with `image`'s first pixel in memory (mapped for reading):
    // an eglCreateImage that succeeded proves nothing (Mesa 25 on vgem imports buffers it
    // cannot map; the read gives GL_OUT_OF_MEMORY). Errc::unsupported naming the GL error,
    // both pixels, or an external-only import (not readable without a draw);
    // Errc::invalid_argument for an unknown id. Costs a glReadPixels: once per image.
    Result<void> check_readable(std::uint64_t image_id, const DmaBufImage& image) const;

    const ImportedTexture* find(std::uint64_t image_id) const;
    std::size_t size() const noexcept { return imports_.size(); }

private:
    Importer() = default;

    std::shared_ptr<detail::DisplayState> state_;
    bool has_modifiers_ = false;
    bool has_external_ = false;  // GL_OES_EGL_image_external
    FormatSet formats_;
    std::map<std::uint64_t, ImportedTexture> imports_;
};

}  // namespace texshare::egl
