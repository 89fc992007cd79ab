// texshare::egl's Display (an EGL display with a surfaceless context), its DMA-BUF format
// queries, and the EGL/GL error names all of texshare::egl reports with. Why it is shaped so:
// - eglGetPlatformDisplayEXT returns one EGLDisplay per native display, and eglTerminate is
//   not reference counted: two Displays on one gbm_device share an EGLDisplay, so a
//   process-wide count decides which of them terminates it.
// - libepoxy aborts on an extension function it believes unprovided, judged from the current
//   display, so every extension check comes before the call, with this display's context
//   current (see vm-lane-facts.md).
#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include <fmt/ranges.h>
#include <drm_fourcc.h>

#include "display_state.hpp"
#include "texshare/format.hpp"

namespace texshare::egl {
namespace {

bool has_word(std::string_view list, std::string_view word) {
    for (std::size_t at = list.find(word); at != std::string_view::npos; at = list.find(word, at + 1)) {
        const bool starts = at == 0 || list[at - 1] == ' ';
        const std::size_t end = at + word.size();
        if (starts && (end == list.size() || list[end] == ' ')) return true;
    }
    return false;
}

std::mutex registry_mutex;
std::map<EGLDisplay, int>& opened_displays() {
    static std::map<EGLDisplay, int> counts;
    return counts;
}

void retain_display(EGLDisplay display) {
    const std::lock_guard lock(registry_mutex);
    ++opened_displays()[display];
}

void release_display(EGLDisplay display) {
    const std::lock_guard lock(registry_mutex);
    auto& counts = opened_displays();
    auto found = counts.find(display);
    if (found == counts.end() || --found->second > 0) return;
    counts.erase(found);
    eglTerminate(display);
}

// One lookup for both error kinds' tables, so their messages keep one format.
template <typename Code, std::size_t N>
std::string error_name(Code code, const std::pair<Code, const char*> (&names)[N], std::string_view kind) {
    for (const auto& [value, name] : names) {
        if (value == code) return fmt::format("{} (0x{:04x})", name, code);
    }
    return fmt::format("unknown {} error (0x{:04x})", kind, code);
}

std::string_view client_extensions() {
    // NULL (EGL_BAD_DISPLAY) where EGL has no client extensions at all (EGL 1.4 without them).
    const char* list = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
    return list != nullptr ? list : "";
}

Result<EGLContext> create_context(detail::DisplayState& state) {
    if (!state.has_extension("EGL_KHR_surfaceless_context")) {
        return make_error(Errc::unsupported,
                          "the {} display lacks EGL_KHR_surfaceless_context; texshare needs a "
                          "context without a surface",
                          state.platform);
    }
    const bool configless = state.has_extension("EGL_KHR_no_config_context") ||
                            state.has_extension("EGL_MESA_configless_context");
    struct Attempt {
        EGLenum api;
        EGLint version;
        EGLint renderable;
        const char* name;
    };
    static constexpr Attempt attempts[] = {{EGL_OPENGL_ES_API, 3, EGL_OPENGL_ES3_BIT_KHR, "OpenGL ES 3"},
                                           {EGL_OPENGL_ES_API, 2, EGL_OPENGL_ES2_BIT, "OpenGL ES 2"},
                                           {EGL_OPENGL_API, 0, EGL_OPENGL_BIT, "OpenGL"}};
    std::string tried;
    for (const Attempt& attempt : attempts) {
        if (!eglBindAPI(attempt.api)) {
            tried += fmt::format("; {}: eglBindAPI: {}", attempt.name, egl_error_name(eglGetError()));
            continue;
        }
        EGLConfig config = EGL_NO_CONFIG_KHR;
        if (!configless) {
            const EGLint wanted[] = {EGL_RENDERABLE_TYPE, attempt.renderable, EGL_SURFACE_TYPE, 0, EGL_NONE};
            EGLint count = 0;
            if (!eglChooseConfig(state.display, wanted, &config, 1, &count) || count < 1) {
                tried += fmt::format("; {}: no config ({})", attempt.name, egl_error_name(eglGetError()));
                continue;
            }
        }
        const EGLint es_attributes[] = {EGL_CONTEXT_CLIENT_VERSION, attempt.version, EGL_NONE};
        const EGLint none[] = {EGL_NONE};
        EGLContext context = eglCreateContext(state.display, config, EGL_NO_CONTEXT,
                                              attempt.version != 0 ? es_attributes : none);
        if (context != EGL_NO_CONTEXT) {
            state.api = attempt.api;
            return context;
        }
        tried += fmt::format("; {}: eglCreateContext: {}", attempt.name, egl_error_name(eglGetError()));
    }
    return make_error(Errc::unsupported, "no GL context on the {} display{}", state.platform, tried);
}

Result<std::shared_ptr<detail::DisplayState>> open_platform(EGLenum platform, void* native,
                                                            std::string_view name,
                                                            std::initializer_list<const char*> needed_any) {
    const std::string_view client = client_extensions();
    if (!has_word(client, "EGL_EXT_platform_base")) {
        return make_error(Errc::unsupported,
                          "EGL client extensions lack EGL_EXT_platform_base (have: \"{}\")", client);
    }
    if (std::ranges::none_of(needed_any, [&](const char* ext) { return has_word(client, ext); })) {
        return make_error(Errc::unsupported, "EGL client extensions have none of {} (have: \"{}\")",
                          fmt::join(needed_any, ", "), client);
    }
    // Not eglGetPlatformDisplay: libepoxy assumes EGL 1.4 until a display is current and aborts.
    EGLDisplay display = eglGetPlatformDisplayEXT(platform, native, nullptr);
    if (display == EGL_NO_DISPLAY) {
        return make_error(Errc::unsupported, "eglGetPlatformDisplayEXT({}) failed: {}", name,
                          egl_error_name(eglGetError()));
    }
    EGLint major = 0, minor = 0;
    if (!eglInitialize(display, &major, &minor)) {
        return make_error(Errc::unsupported, "eglInitialize of the {} display failed: {}", name,
                          egl_error_name(eglGetError()));
    }
    retain_display(display);
    auto state = std::make_shared<detail::DisplayState>();
    state->display = display;
    state->owns_display = true;
    state->platform = name;
    return state;
}

// EGL_EXT_image_dma_buf_import_modifiers, asked once per fourcc.
Result<FormatSet> query_dma_buf_formats(EGLDisplay display) {
    EGLint count = 0;
    if (!eglQueryDmaBufFormatsEXT(display, 0, nullptr, &count) || count < 0) {
        return make_error(Errc::unsupported, "eglQueryDmaBufFormatsEXT failed: {}", egl_error_name(eglGetError()));
    }
    std::vector<EGLint> fourccs(static_cast<std::size_t>(count));
    if (count > 0 && !eglQueryDmaBufFormatsEXT(display, count, fourccs.data(), &count)) {
        return make_error(Errc::unsupported, "eglQueryDmaBufFormatsEXT({} formats) failed: {}", fourccs.size(),
                          egl_error_name(eglGetError()));
    }
    fourccs.resize(std::min(fourccs.size(), static_cast<std::size_t>(std::max(count, 0))));
    FormatSet formats;
    for (EGLint code : fourccs) {
        const auto fourcc = static_cast<std::uint32_t>(code);
        EGLint listed = 0;
        if (!eglQueryDmaBufModifiersEXT(display, code, 0, nullptr, nullptr, &listed) || listed < 0) {
            return make_error(Errc::unsupported, "eglQueryDmaBufModifiersEXT({}) failed: {}", format_name(fourcc),
                              egl_error_name(eglGetError()));
        }
        std::vector<EGLuint64KHR> modifiers(static_cast<std::size_t>(listed));
        std::vector<EGLBoolean> external(static_cast<std::size_t>(listed));
        if (listed > 0 &&
            !eglQueryDmaBufModifiersEXT(display, code, listed, modifiers.data(), external.data(), &listed)) {
            return make_error(Errc::unsupported, "eglQueryDmaBufModifiersEXT({}, {} modifiers) failed: {}",
                              format_name(fourcc), modifiers.size(), egl_error_name(eglGetError()));
        }
        const std::size_t written = std::min(modifiers.size(), static_cast<std::size_t>(std::max(listed, 0)));
        for (std::size_t i = 0; i < written; ++i) {
            formats.add(fourcc, modifiers[i], external[i] == EGL_TRUE ? format_external_only : 0);
        }
        if (written == 0) formats.add(fourcc, DRM_FORMAT_MOD_LINEAR);
        formats.add(fourcc, DRM_FORMAT_MOD_INVALID);
    }
    return formats;
}

}  // namespace

detail::DisplayState::~DisplayState() {
    if (context != EGL_NO_CONTEXT && owns_context) {
        eglBindAPI(api);
        if (eglGetCurrentContext() == context) {
            eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
        }
        eglDestroyContext(display, context);
    }
    if (owns_display) release_display(display);
}

bool detail::DisplayState::has_extension(std::string_view name) const {
    return has_word(extensions, name);
}

Result<void> detail::DisplayState::make_current() const {
    if (eglQueryAPI() != api && !eglBindAPI(api)) {
        return make_error(Errc::unsupported, "eglBindAPI(0x{:04x}) failed: {}", api,
                          egl_error_name(eglGetError()));
    }
    if (eglGetCurrentContext() == context && eglGetCurrentDisplay() == display) return {};
    if (!eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, context)) {
        return make_error(Errc::unsupported, "eglMakeCurrent (surfaceless) on the {} display failed: {}",
                          platform, egl_error_name(eglGetError()));
    }
    return {};
}

Result<Display> Display::finish_open(std::shared_ptr<detail::DisplayState> state, NativeContext context) {
    const char* extensions = eglQueryString(state->display, EGL_EXTENSIONS);
    if (extensions == nullptr) {
        return make_error(Errc::invalid_argument,
                          "eglQueryString(EGL_EXTENSIONS) of the {} display failed: {}", state->platform,
                          egl_error_name(eglGetError()));
    }
    state->extensions = extensions;
    if (context == EGL_NO_CONTEXT) {
        auto created = create_context(*state);
        if (!created) return std::move(created).error();
        state->context = *created;
        state->owns_context = true;
    } else {
        EGLint client_type = 0;
        if (!eglQueryContext(state->display, context, EGL_CONTEXT_CLIENT_TYPE, &client_type)) {
            return make_error(Errc::invalid_argument, "the caller's context is not one of this display: {}",
                              egl_error_name(eglGetError()));
        }
        state->context = context;
        state->api = static_cast<EGLenum>(client_type);
    }
    if (auto current = state->make_current(); !current) return std::move(current).error();
    return Display(std::move(state));
}

Result<Display> Display::open_gbm(::gbm_device* device) {
    if (device == nullptr) return make_error(Errc::invalid_argument, "Display::open_gbm: no gbm_device");
    auto state =
        open_platform(EGL_PLATFORM_GBM_KHR, device, "gbm", {"EGL_KHR_platform_gbm", "EGL_MESA_platform_gbm"});
    if (!state) return std::move(state).error();
    return finish_open(std::move(*state), EGL_NO_CONTEXT);
}

Result<Display> Display::open_surfaceless() {
    auto state = open_platform(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, "surfaceless",
                               {"EGL_MESA_platform_surfaceless"});
    if (!state) return std::move(state).error();
    return finish_open(std::move(*state), EGL_NO_CONTEXT);
}

Result<Display> Display::open(::gbm_device* device) {
    std::string gbm_failure = "no gbm_device given";
    if (device != nullptr) {
        auto gbm = open_gbm(device);
        if (gbm) return gbm;
        gbm_failure = gbm.error().message;
    }
    auto surfaceless = open_surfaceless();
    if (surfaceless) return surfaceless;
    return make_error(Errc::unsupported, "no EGL display: gbm: {}; surfaceless: {}", gbm_failure,
                      surfaceless.error().message);
}

Result<Display> Display::wrap(NativeDisplay display, NativeContext context) {
    if (display == EGL_NO_DISPLAY) return make_error(Errc::invalid_argument, "Display::wrap: EGL_NO_DISPLAY");
    auto state = std::make_shared<detail::DisplayState>();
    state->display = display;
    state->platform = "caller's";
    return finish_open(std::move(state), context);
}

NativeDisplay Display::native() const noexcept {
    return state_ ? state_->display : EGL_NO_DISPLAY;
}
NativeContext Display::context() const noexcept {
    return state_ ? state_->context : EGL_NO_CONTEXT;
}
std::string_view Display::platform() const noexcept {
    return state_ ? std::string_view(state_->platform) : std::string_view("none");
}
bool Display::has_extension(std::string_view name) const {
    return state_ && state_->has_extension(name);
}

std::string Display::renderer() const {
    if (!state_ || !state_->make_current()) return "";
    const auto* name = reinterpret_cast<const char*>(glGetString(GL_RENDERER));
    return name != nullptr ? name : "";
}

Result<void> Display::make_current() const {
    if (!state_) return make_error(Errc::invalid_argument, "Display::make_current on an empty Display");
    return state_->make_current();
}

Result<FormatSet> Display::dma_buf_formats() const {
    if (!state_) return make_error(Errc::invalid_argument, "Display::dma_buf_formats on an empty Display");
    if (!state_->has_extension("EGL_EXT_image_dma_buf_import_modifiers")) {
        return make_error(Errc::unsupported,
                          "the {} display lacks EGL_EXT_image_dma_buf_import_modifiers, so it cannot list "
                          "the DMA-BUF formats it imports",
                          state_->platform);
    }
    if (auto current = state_->make_current(); !current) return std::move(current).error();
    return query_dma_buf_formats(state_->display);
}

Result<FormatSet> Display::render_formats() const {
    auto formats = dma_buf_formats();
    if (!formats) return formats;
    return formats->without(format_external_only);
}

std::string egl_error_name(std::int32_t code) {
    static constexpr std::pair<EGLint, const char*> names[] = {
        {EGL_SUCCESS, "EGL_SUCCESS"},
        {EGL_NOT_INITIALIZED, "EGL_NOT_INITIALIZED"},
        {EGL_BAD_ACCESS, "EGL_BAD_ACCESS"},
        {EGL_BAD_ALLOC, "EGL_BAD_ALLOC"},
        {EGL_BAD_ATTRIBUTE, "EGL_BAD_ATTRIBUTE"},
        {EGL_BAD_CONFIG, "EGL_BAD_CONFIG"},
        {EGL_BAD_CONTEXT, "EGL_BAD_CONTEXT"},
        {EGL_BAD_CURRENT_SURFACE, "EGL_BAD_CURRENT_SURFACE"},
        {EGL_BAD_DISPLAY, "EGL_BAD_DISPLAY"},
        {EGL_BAD_MATCH, "EGL_BAD_MATCH"},
        {EGL_BAD_NATIVE_PIXMAP, "EGL_BAD_NATIVE_PIXMAP"},
        {EGL_BAD_NATIVE_WINDOW, "EGL_BAD_NATIVE_WINDOW"},
        {EGL_BAD_PARAMETER, "EGL_BAD_PARAMETER"},
        {EGL_BAD_SURFACE, "EGL_BAD_SURFACE"},
        {EGL_CONTEXT_LOST, "EGL_CONTEXT_LOST"},
    };
    return error_name(code, names, "EGL");
}

std::string gl_error_name(std::uint32_t code) {
    static constexpr std::pair<GLenum, const char*> names[] = {
        {GL_NO_ERROR, "GL_NO_ERROR"},
        {GL_INVALID_ENUM, "GL_INVALID_ENUM"},
        {GL_INVALID_VALUE, "GL_INVALID_VALUE"},
        {GL_INVALID_OPERATION, "GL_INVALID_OPERATION"},
        {GL_STACK_OVERFLOW, "GL_STACK_OVERFLOW"},
        {GL_STACK_UNDERFLOW, "GL_STACK_UNDERFLOW"},
        {GL_OUT_OF_MEMORY, "GL_OUT_OF_MEMORY"},
        {GL_INVALID_FRAMEBUFFER_OPERATION, "GL_INVALID_FRAMEBUFFER_OPERATION"},
        {GL_CONTEXT_LOST, "GL_CONTEXT_LOST"},
        {GL_FRAMEBUFFER_INCOMPLETE_ATTACHMENT, "GL_FRAMEBUFFER_INCOMPLETE_ATTACHMENT"},
        {GL_FRAMEBUFFER_INCOMPLETE_MISSING_ATTACHMENT, "GL_FRAMEBUFFER_INCOMPLETE_MISSING_ATTACHMENT"},
        {GL_FRAMEBUFFER_INCOMPLETE_DIMENSIONS, "GL_FRAMEBUFFER_INCOMPLETE_DIMENSIONS"},
        {GL_FRAMEBUFFER_UNSUPPORTED, "GL_FRAMEBUFFER_UNSUPPORTED"},
    };
    return error_name(code, names, "GL");
}

}  // namespace texshare::egl
