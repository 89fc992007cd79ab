// Private to src/: the state a Display shares with the Importers and Exporters made from it,
// and the GL error draining every file that issues GL calls needs. Defined in
// egl_display.cpp; kept out of include/ so the public header stays free of EGL internals.
#pragma once

#include <string>
#include <string_view>

#include "texshare/egl/importer.hpp"

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
