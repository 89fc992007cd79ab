// Private to src/: the state a Display shares with the Importers and Exporters made from it,
// and the GL error draining every file that issues GL calls needs. Defined in display.cpp;
// kept out of include/ so the public headers stay free of EGL internals and <epoxy/...>.
#pragma once

#include <epoxy/egl.h>
#include <epoxy/gl.h>

#include <string>
#include <string_view>
#include <type_traits>

#include "texshare/egl/display.hpp"

namespace texshare::egl {
// The public headers spell EGL's handles and GL's names without <epoxy/...> (display.hpp).
static_assert(std::is_same_v<NativeDisplay, EGLDisplay> && std::is_same_v<NativeContext, EGLContext> &&
              std::is_same_v<NativeImage, EGLImage> && std::is_same_v<NativeImage, EGLImageKHR>);
static_assert(std::is_same_v<std::uint32_t, GLuint> && std::is_same_v<std::uint32_t, GLenum> &&
              std::is_same_v<std::int32_t, EGLint>);
}  // namespace texshare::egl

namespace texshare::egl::detail {

// What a Display, its Importers and Exporters share (by shared_ptr, so the context that owns
// an importer's textures outlives the importer whatever order the caller destroys them in).
struct DisplayState {
    EGLDisplay display = EGL_NO_DISPLAY;
    EGLContext context = EGL_NO_CONTEXT;
    EGLenum api = EGL_OPENGL_ES_API;
    bool owns_display = false;  // opened here: terminated when the last opener goes
    bool owns_context = false;  // created here: destroyed with the state
    std::string platform;
    std::string extensions;

    DisplayState() = default;
    DisplayState(const DisplayState&) = delete;
    DisplayState& operator=(const DisplayState&) = delete;
    ~DisplayState();

    bool has_extension(std::string_view name) const;
    Result<void> make_current() const;
};

inline void drain_gl_errors() {
    // A lost context may report errors forever; a few reads clear anything a caller left.
    for (int i = 0; i < 16 && glGetError() != GL_NO_ERROR; ++i) {
    }
}

}  // namespace texshare::egl::detail
