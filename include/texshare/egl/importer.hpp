// texshare::egl: DMA-BUF images in and out of OpenGL (ES) through EGL and libepoxy.
//
// Use an Importer in the process that draws with images another process allocated: it
// turns each received DmaBufImage into an EGLImage and a GL texture once, keeps them by the
// image's id, and destroys both when the image is released. Use an Exporter where a GL
// texture must leave the process as a DmaBufImage (EGL_MESA_image_dma_buf_export); many
// drivers list that extension but cannot really export, and the Exporter reports that as
// Errc::unsupported instead of handing out an fd that is not one. Both work on a Display,
// which owns an EGL context made current on the calling thread.
//
// Ownership: a Display, Importer or Exporter keeps the EGL display and context alive for as
// long as any of them lives (they share them), so destruction order among them is free. The
// gbm_device or EGLDisplay a Display was opened on belongs to the caller and must outlive
// all of them. An import does not keep the DmaBufImage's fds: EGL holds its own reference
// to the buffer, so the image may be dropped once imported.
//
// Threads: EGL contexts are current per thread. Use a Display and everything made from it
// on one thread at a time; every call makes the Display's context current first.
//
// libepoxy resolves display extensions through the current display and aborts on a
// function it thinks nobody provides, so this code calls an extension function only after
// checking the extension itself and with its context current.
#pragma once

#include <epoxy/egl.h>
#include <epoxy/gl.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"

struct gbm_device;

namespace texshare::egl {

namespace detail {
struct DisplayState;
}

class Display {
public:
    Display() = default;  // none: every call fails or returns an empty value

    // The GBM platform of `device` (eglGetPlatformDisplayEXT, EGL_PLATFORM_GBM_KHR): the one
    // whose driver imports what that device allocates. `device` must outlive the Display.
    static Result<Display> open_gbm(::gbm_device* device);
    // Mesa's surfaceless platform: a render node's driver, or software rendering.
    static Result<Display> open_surfaceless();
    // GBM when `device` is given and works, else surfaceless; the error names both failures.
    static Result<Display> open(::gbm_device* device);
    // A display the caller initialised and keeps initialised while this Display lives; it
    // is never terminated here. With `context` given, that context is used (and not
    // destroyed); otherwise one is created, and made current on this thread.
    static Result<Display> wrap(EGLDisplay display, EGLContext context = EGL_NO_CONTEXT);

    EGLDisplay native() const noexcept;
    EGLContext context() const noexcept;
    // "gbm", "surfaceless" or "caller's": for log lines and error messages.
    std::string_view platform() const noexcept;
    bool has_extension(std::string_view name) const;  // an EGL display extension
    // GL_RENDERER of the context, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    std::string renderer() const;

    // Makes the context current on this thread (a no-op when it already is).
    Result<void> make_current() const;

private:
    friend class Importer;
    friend class Exporter;
    explicit Display(std::shared_ptr<detail::DisplayState> state) : state_(std::move(state)) {}
    static Result<Display> finish_open(std::shared_ptr<detail::DisplayState> state, EGLContext context);

    std::shared_ptr<detail::DisplayState> state_;
};

// What EGL says it can import: a fourcc and its modifiers. A format listed with no
// modifiers imports only with an implicit modifier (DRM_FORMAT_MOD_INVALID) or LINEAR, as
// far as the driver's own allocations go.
struct ImportableFormat {
    struct Modifier {
        std::uint64_t value = 0;
        bool external_only = false;  // samples only as GL_TEXTURE_EXTERNAL_OES
    };
    std::uint32_t fourcc = 0;
    std::vector<Modifier> modifiers;
};

struct ImportedTexture {
    GLuint texture = 0;
    GLenum target = 0;  // GL_TEXTURE_2D, or GL_TEXTURE_EXTERNAL_OES for YUV and external-only
    EGLImage image = EGL_NO_IMAGE_KHR;
};

// The checks import() makes before it asks the driver: the image is a DMA-BUF (EGL
// imports nothing else: a cpu_only or shared_memory image is Errc::unsupported) with an fd
// for every plane. Lets a caller choose the CPU path for an image before importing.
Result<void> check_importable(std::uint64_t image_id, const DmaBufImage& image);

class Importer {
public:
    // Checks EGL_EXT_image_dma_buf_import (required; Errc::unsupported naming it when
    // missing), _modifiers (optional: without it only implicit modifiers import) and
    // GL_OES_EGL_image (required), and asks for the importable formats once.
    static Result<Importer> create(const Display& display);

    Importer(Importer&& other) noexcept;
    Importer& operator=(Importer&& other) noexcept;
    Importer(const Importer&) = delete;
    Importer& operator=(const Importer&) = delete;
    ~Importer();  // releases every import

    bool has_modifiers() const noexcept { return has_modifiers_; }
    // Empty when the display cannot say (no EGL_EXT_image_dma_buf_import_modifiers).
    const std::vector<ImportableFormat>& formats() const noexcept { return formats_; }

    // The image as an EGLImage and a texture, kept under image_id until release(). Refuses
    // cpu_only and shared_memory images (EGL imports DMA-BUFs only) and an id already in use.
    Result<ImportedTexture> import(std::uint64_t image_id, const DmaBufImage& image);
    // Deletes the texture and destroys the EGLImage; Errc::invalid_argument for an unknown id.
    Result<void> release(std::uint64_t image_id);
    void release_all() noexcept;
    // Moves an import to another id (FrameReceiver keeps a dead producer's last frame under
    // retained_image_id). Errc::invalid_argument if `from` is unknown or `to` is taken.
    Result<void> rename(std::uint64_t from, std::uint64_t to);

    const ImportedTexture* find(std::uint64_t image_id) const;
    std::size_t size() const noexcept { return imports_.size(); }

private:
    Importer() = default;
    bool external_only(std::uint32_t fourcc, std::uint64_t modifier) const;
    const ImportableFormat* find_format(std::uint32_t fourcc) const;

    std::shared_ptr<detail::DisplayState> state_;
    bool has_modifiers_ = false;
    bool has_external_ = false;  // GL_OES_EGL_image_external
    std::vector<ImportableFormat> formats_;
    std::map<std::uint64_t, ImportedTexture> imports_;
};

class Exporter {
public:
    // Errc::unsupported naming the first missing extension among EGL_KHR_image_base,
    // EGL_KHR_gl_texture_2D_image and EGL_MESA_image_dma_buf_export.
    static Result<Exporter> create(const Display& display);

    // The GL_TEXTURE_2D `texture` (level 0, width x height as it was created with) as a
    // dma_buf image sharing the texture's memory. A failed export, or one that "succeeds"
    // without an fd (llvmpipe does), is Errc::unsupported: never a DmaBufImage without
    // real DMA-BUF fds. The temporary EGLImage is destroyed on every path. A plane after
    // the first whose fd slot comes back -1 shares the previous plane's buffer (the
    // extension's rule) and gets a duplicate of its fd.
    Result<DmaBufImage> export_texture(GLuint texture, std::uint32_t width, std::uint32_t height) const;

private:
    Exporter() = default;
    std::shared_ptr<detail::DisplayState> state_;
};

// Test and diagnostics helpers. Each makes the Display's context current, restores the
// framebuffer and texture bindings it changed, and deletes the GL objects it created.

// width x height RGBA8 pixels of a texture, row 0 first (the texture's first row, which for
// an imported image is the first row in memory). GL_TEXTURE_2D is read through an FBO;
// other targets (external YUV) are first drawn into an RGBA texture, so that is sampled
// colour, converted by the driver.
Result<std::vector<std::uint8_t>> read_pixels(const Display& display, GLenum target, GLuint texture,
                                              std::uint32_t width, std::uint32_t height);
// Clears a GL_TEXTURE_2D (an imported image included) to one colour through an FBO and
// waits with glFinish, so another process sees the pixels once this returns.
Result<void> clear_texture(const Display& display, GLuint texture, float red, float green, float blue,
                           float alpha);
// Draws `source` (any target) over all of the GL_TEXTURE_2D `destination` through an FBO,
// then glFinish.
Result<void> draw_texture(const Display& display, GLenum source_target, GLuint source, GLuint destination,
                          std::uint32_t width, std::uint32_t height);

// "EGL_BAD_MATCH (0x3009)", "GL_INVALID_OPERATION (0x0502)": for error messages. gl_error_name
// also names glCheckFramebufferStatus results.
std::string egl_error_name(EGLint code);
std::string gl_error_name(GLenum code);

}  // namespace texshare::egl
