// texshare::egl::Display: an EGL display with a context of its own, what every other part
// of texshare::egl (importer.hpp, exporter.hpp, fence.hpp) works on.
//
// Use one per thread that draws with shared images: open it on the gbm_device the images
// come from (open_gbm: that device's driver imports what it allocates), on Mesa's
// surfaceless platform, or wrap a display the application already has. It also says which
// DMA-BUF formats the driver imports and renders to (dma_buf_formats, render_formats): the
// FormatSet a consumer advertises and a GBM producer allocates from (format_set.hpp).
//
// Ownership: a Display, Importer or Exporter keeps the EGL display and context alive for as
// long as any of them lives (they share them), so destruction order among them is free. The
// gbm_device or EGLDisplay a Display was opened on belongs to the caller and must outlive
// all of them.
//
// Threads: EGL contexts are current per thread. Use a Display and everything made from it
// on one thread at a time; every call makes the Display's context current first.
//
// This header does not include <epoxy/egl.h>: EGL's handles are opaque pointers and GL's
// names unsigned integers, spelled here as void* and std::uint32_t (src/egl checks that
// they are the same types), so including it costs a caller no GL headers.
//
// libepoxy resolves display extensions through the current display and aborts on a
// function it thinks nobody provides, so texshare calls an extension function only after
// checking the extension itself and with its context current.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "texshare/format_set.hpp"
#include "texshare/result.hpp"

struct gbm_device;

namespace texshare::egl {

// EGLDisplay, EGLContext and EGLImage are `void*` in <EGL/egl.h>; GLuint and GLenum are
// `unsigned int`, which is std::uint32_t on every Linux ABI.
using NativeDisplay = void*;
using NativeContext = void*;
using NativeImage = void*;

namespace detail {
struct DisplayState;
}

class Display {
public:
    Display() = default;  // none: every call fails or returns an empty value

    // The GBM platform of `device` (eglGetPlatformDisplayEXT, EGL_PLATFORM_GBM_KHR): the one
    // whose driver imports what that device allocates. `device` must outlive the Display.
    // Errc::invalid_argument for a null device; Errc::unsupported naming the missing
    // extension or failed EGL call otherwise.
    static Result<Display> open_gbm(::gbm_device* device);
    // Mesa's surfaceless platform (EGL_MESA_platform_surfaceless): a render node's driver,
    // or software rendering. Errc::unsupported naming what failed.
    static Result<Display> open_surfaceless();
    // GBM when `device` is given and works, else surfaceless; the error names both failures.
    static Result<Display> open(::gbm_device* device);
    // An EGLDisplay the caller initialised and keeps initialised while this Display lives;
    // it is never terminated here. With `context` given (an EGLContext of that display),
    // that context is used and never destroyed; otherwise one is created and made current
    // on this thread. Errc::invalid_argument for EGL_NO_DISPLAY or a foreign context.
    static Result<Display> wrap(NativeDisplay display, NativeContext context = nullptr);

    NativeDisplay native() const noexcept;  // the EGLDisplay; nullptr (EGL_NO_DISPLAY) when empty
    NativeContext context() const noexcept;
    // "gbm", "surfaceless" or "caller's": for log lines and error messages.
    std::string_view platform() const noexcept;
    bool has_extension(std::string_view name) const;  // an EGL display extension
    // GL_RENDERER of the context, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    std::string renderer() const;

    // Makes the context current on this thread (a no-op when it already is).
    Result<void> make_current() const;

    // What the driver imports as a DMA-BUF (EGL_EXT_image_dma_buf_import_modifiers:
    // eglQueryDmaBufFormatsEXT, then eglQueryDmaBufModifiersEXT per fourcc), modifiers in the
    // driver's order with format_external_only where EGL says the pair samples only as
    // GL_TEXTURE_EXTERNAL_OES. Every format also gets DRM_FORMAT_MOD_INVALID, last: EGL
    // always imports the implicit layout (an import without modifier attributes). A format
    // listed with no modifiers gets LINEAR before it, as wlroots assumes, since the extension
    // leaves that case to the driver's own allocations. Errc::unsupported when the display
    // lacks the extension or a query fails.
    Result<FormatSet> dma_buf_formats() const;
    // dma_buf_formats() without the external-only pairs: what GL can render to (a
    // GL_TEXTURE_2D behind a framebuffer), so what a producer on this display allocates.
    Result<FormatSet> render_formats() const;

private:
    friend class Importer;
    friend class Exporter;
    explicit Display(std::shared_ptr<detail::DisplayState> state) : state_(std::move(state)) {}
    static Result<Display> finish_open(std::shared_ptr<detail::DisplayState> state, NativeContext context);

    std::shared_ptr<detail::DisplayState> state_;
};

// "EGL_BAD_MATCH (0x3009)", "GL_INVALID_OPERATION (0x0502)": for error messages. `code` is
// an EGLint from eglGetError / a GLenum from glGetError; gl_error_name also names
// glCheckFramebufferStatus results.
std::string egl_error_name(std::int32_t code);
std::string gl_error_name(std::uint32_t code);

}  // namespace texshare::egl
