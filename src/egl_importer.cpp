// texshare::egl. Design notes:
// - Display state is shared (shared_ptr) by the Display, Importers and Exporters made from
//   it, so the context that owns an importer's textures outlives the importer whatever order
//   the caller destroys them in.
// - eglGetPlatformDisplayEXT returns one EGLDisplay per native display, and eglTerminate is
//   not reference counted: two Displays opened on one gbm_device share an EGLDisplay, so a
//   process-wide count decides which of them terminates it.
// - libepoxy aborts on an extension function it believes unprovided and judges that from
//   the current display, so every extension check here happens before the call, with this
//   display's context current (see vm-lane-facts.md).
#include "texshare/egl_importer.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>

#include <fmt/ranges.h>

#include "texshare/detail/fd_probe.hpp"

// ---- Display -----------------------------------------------------------------------------

namespace texshare::egl {
namespace detail {

// What a Display, its Importers and Exporters share.
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

namespace {

bool has_word(std::string_view list, std::string_view word) {
    for (std::size_t at = list.find(word); at != std::string_view::npos; at = list.find(word, at + 1)) {
        const bool starts = at == 0 || list[at - 1] == ' ';
        const std::size_t end = at + word.size();
        if (starts && (end == list.size() || list[end] == ' ')) return true;
    }
    return false;
}

void drain_gl_errors() {
    // A lost context may report errors forever; a few reads clear anything a caller left.
    for (int i = 0; i < 16 && glGetError() != GL_NO_ERROR; ++i) {
    }
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

}  // namespace

DisplayState::~DisplayState() {
    if (context != EGL_NO_CONTEXT && owns_context) {
        eglBindAPI(api);
        if (eglGetCurrentContext() == context) {
            eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
        }
        eglDestroyContext(display, context);
    }
    if (owns_display) release_display(display);
}

bool DisplayState::has_extension(std::string_view name) const {
    return has_word(extensions, name);
}

Result<void> DisplayState::make_current() const {
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

}  // namespace detail

namespace {

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
    if (!detail::has_word(client, "EGL_EXT_platform_base")) {
        return make_error(Errc::unsupported,
                          "EGL client extensions lack EGL_EXT_platform_base (have: \"{}\")", client);
    }
    if (std::ranges::none_of(needed_any, [&](const char* ext) { return detail::has_word(client, ext); })) {
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
    detail::retain_display(display);
    auto state = std::make_shared<detail::DisplayState>();
    state->display = display;
    state->owns_display = true;
    state->platform = name;
    return state;
}

}  // namespace

Result<Display> Display::finish_open(std::shared_ptr<detail::DisplayState> state, EGLContext context) {
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

Result<Display> Display::wrap(EGLDisplay display, EGLContext context) {
    if (display == EGL_NO_DISPLAY) return make_error(Errc::invalid_argument, "Display::wrap: EGL_NO_DISPLAY");
    auto state = std::make_shared<detail::DisplayState>();
    state->display = display;
    state->platform = "caller's";
    return finish_open(std::move(state), context);
}

EGLDisplay Display::native() const noexcept {
    return state_ ? state_->display : EGL_NO_DISPLAY;
}
EGLContext Display::context() const noexcept {
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

// ---- Importer ----------------------------------------------------------------------------

namespace {

Result<std::vector<ImportableFormat>> query_formats(EGLDisplay display) {
    EGLint count = 0;
    if (!eglQueryDmaBufFormatsEXT(display, 0, nullptr, &count) || count < 0) {
        return make_error(Errc::unsupported, "eglQueryDmaBufFormatsEXT failed: {}",
                          egl_error_name(eglGetError()));
    }
    std::vector<EGLint> fourccs(static_cast<std::size_t>(count));
    if (count > 0 && !eglQueryDmaBufFormatsEXT(display, count, fourccs.data(), &count)) {
        return make_error(Errc::unsupported, "eglQueryDmaBufFormatsEXT({} formats) failed: {}",
                          fourccs.size(), egl_error_name(eglGetError()));
    }
    fourccs.resize(static_cast<std::size_t>(std::max(count, 0)));
    std::vector<ImportableFormat> formats;
    for (EGLint fourcc : fourccs) {
        ImportableFormat format{static_cast<std::uint32_t>(fourcc), {}};
        EGLint modifiers = 0;
        if (!eglQueryDmaBufModifiersEXT(display, fourcc, 0, nullptr, nullptr, &modifiers) || modifiers < 0) {
            return make_error(Errc::unsupported, "eglQueryDmaBufModifiersEXT({}) failed: {}",
                              format_name(format.fourcc), egl_error_name(eglGetError()));
        }
        std::vector<EGLuint64KHR> values(static_cast<std::size_t>(modifiers));
        std::vector<EGLBoolean> external(static_cast<std::size_t>(modifiers));
        if (modifiers > 0 && !eglQueryDmaBufModifiersEXT(display, fourcc, modifiers, values.data(),
                                                         external.data(), &modifiers)) {
            return make_error(Errc::unsupported, "eglQueryDmaBufModifiersEXT({}, {} modifiers) failed: {}",
                              format_name(format.fourcc), values.size(), egl_error_name(eglGetError()));
        }
        for (std::size_t i = 0; i < values.size() && i < static_cast<std::size_t>(modifiers); ++i) {
            format.modifiers.push_back({values[i], external[i] == EGL_TRUE});
        }
        formats.push_back(std::move(format));
    }
    return formats;
}

// The texture goes with the context and the image with the display if the context cannot
// be made current: deleting either without it is not possible (and libepoxy might abort).
Result<void> destroy_import(const detail::DisplayState& state, const ImportedTexture& imported) {
    if (auto current = state.make_current(); !current) return std::move(current).error();
    glDeleteTextures(1, &imported.texture);
    if (!eglDestroyImageKHR(state.display, imported.image)) {
        return make_error(Errc::unsupported, "eglDestroyImageKHR of texture {}'s image failed: {}",
                          imported.texture, egl_error_name(eglGetError()));
    }
    return {};
}

struct PlaneKeys {
    EGLint fd, offset, pitch, modifier_lo, modifier_hi;
};
constexpr PlaneKeys plane_keys[max_planes] = {
    {EGL_DMA_BUF_PLANE0_FD_EXT, EGL_DMA_BUF_PLANE0_OFFSET_EXT, EGL_DMA_BUF_PLANE0_PITCH_EXT,
     EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT},
    {EGL_DMA_BUF_PLANE1_FD_EXT, EGL_DMA_BUF_PLANE1_OFFSET_EXT, EGL_DMA_BUF_PLANE1_PITCH_EXT,
     EGL_DMA_BUF_PLANE1_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE1_MODIFIER_HI_EXT},
    {EGL_DMA_BUF_PLANE2_FD_EXT, EGL_DMA_BUF_PLANE2_OFFSET_EXT, EGL_DMA_BUF_PLANE2_PITCH_EXT,
     EGL_DMA_BUF_PLANE2_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE2_MODIFIER_HI_EXT},
    {EGL_DMA_BUF_PLANE3_FD_EXT, EGL_DMA_BUF_PLANE3_OFFSET_EXT, EGL_DMA_BUF_PLANE3_PITCH_EXT,
     EGL_DMA_BUF_PLANE3_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE3_MODIFIER_HI_EXT},
};

// EGL_LINUX_DMA_BUF_EXT attributes; the layout is valid (every DmaBufImage's is).
Result<std::vector<EGLint>> dma_buf_attributes(std::uint64_t image_id, const DmaBufImage& image) {
    const ImageLayout& layout = image.layout();
    std::vector<EGLint> attributes = {EGL_WIDTH,
                                      static_cast<EGLint>(layout.width),
                                      EGL_HEIGHT,
                                      static_cast<EGLint>(layout.height),
                                      EGL_LINUX_DRM_FOURCC_EXT,
                                      static_cast<EGLint>(layout.fourcc)};
    for (std::size_t i = 0; i < layout.plane_count; ++i) {
        const PlaneLayout& plane = layout.planes[i];
        if (plane.offset > INT32_MAX || plane.stride > INT32_MAX) {
            return make_error(Errc::invalid_layout,
                              "image {}: plane {} offset {} or stride {} exceeds EGLint", image_id, i,
                              plane.offset, plane.stride);
        }
        const PlaneKeys& keys = plane_keys[i];
        attributes.insert(attributes.end(),
                          {keys.fd, image.plane_fd(i).get(), keys.offset, static_cast<EGLint>(plane.offset),
                           keys.pitch, static_cast<EGLint>(plane.stride)});
        if (layout.modifier != DRM_FORMAT_MOD_INVALID) {
            attributes.insert(attributes.end(),
                              {keys.modifier_lo, static_cast<EGLint>(layout.modifier & 0xffffffffU),
                               keys.modifier_hi, static_cast<EGLint>(layout.modifier >> 32)});
        }
    }
    attributes.push_back(EGL_NONE);
    return attributes;
}

}  // namespace

Result<void> check_importable(std::uint64_t image_id, const DmaBufImage& image) {
    if (image.backing() != Backing::dma_buf) {
        return make_error(Errc::unsupported,
                          "image {}: a {} image cannot be imported: EGL imports DMA-BUFs only (map it "
                          "and upload the pixels instead)",
                          image_id, to_string(image.backing()));
    }
    for (std::size_t i = 0; i < image.layout().plane_count; ++i) {
        if (!image.plane_fd(i).valid()) {
            return make_error(Errc::invalid_argument, "image {}: plane {} has no fd", image_id, i);
        }
    }
    return {};
}

Result<Importer> Importer::create(const Display& display) {
    if (!display.state_) return make_error(Errc::invalid_argument, "Importer::create: empty Display");
    const detail::DisplayState& state = *display.state_;
    for (const char* needed : {"EGL_EXT_image_dma_buf_import", "EGL_KHR_image_base"}) {
        if (!state.has_extension(needed)) {
            return make_error(Errc::unsupported,
                              "{} is missing on the {} display, so EGL cannot import DMA-BUFs there "
                              "(display extensions: {})",
                              needed, state.platform, state.extensions);
        }
    }
    if (auto current = state.make_current(); !current) return std::move(current).error();
    if (!epoxy_has_gl_extension("GL_OES_EGL_image")) {
        return make_error(Errc::unsupported, "GL_OES_EGL_image is missing in the {} display's context ({})",
                          state.platform, reinterpret_cast<const char*>(glGetString(GL_RENDERER)));
    }
    Importer importer;
    importer.state_ = display.state_;
    importer.has_modifiers_ = state.has_extension("EGL_EXT_image_dma_buf_import_modifiers");
    importer.has_external_ = epoxy_has_gl_extension("GL_OES_EGL_image_external");
    if (importer.has_modifiers_) {
        auto formats = query_formats(state.display);
        if (!formats) return std::move(formats).error();
        importer.formats_ = std::move(*formats);
    }
    return importer;
}

Importer::Importer(Importer&& other) noexcept
    : state_(std::move(other.state_)),
      has_modifiers_(other.has_modifiers_),
      has_external_(other.has_external_),
      formats_(std::move(other.formats_)),
      imports_(std::exchange(other.imports_, {})) {}

Importer& Importer::operator=(Importer&& other) noexcept {
    if (this != &other) {
        release_all();
        state_ = std::move(other.state_);
        has_modifiers_ = other.has_modifiers_;
        has_external_ = other.has_external_;
        formats_ = std::move(other.formats_);
        imports_ = std::exchange(other.imports_, {});
    }
    return *this;
}

Importer::~Importer() {
    release_all();
}

const ImportableFormat* Importer::find_format(std::uint32_t fourcc) const {
    auto found = std::ranges::find(formats_, fourcc, &ImportableFormat::fourcc);
    return found != formats_.end() ? &*found : nullptr;
}

bool Importer::external_only(std::uint32_t fourcc, std::uint64_t modifier) const {
    const ImportableFormat* format = find_format(fourcc);
    if (format == nullptr) return false;
    auto found = std::ranges::find(format->modifiers, modifier, &ImportableFormat::Modifier::value);
    return found != format->modifiers.end() && found->external_only;
}

Result<ImportedTexture> Importer::import(std::uint64_t image_id, const DmaBufImage& image) {
    if (!state_) return make_error(Errc::invalid_argument, "Importer::import on a moved-from Importer");
    const ImageLayout& layout = image.layout();
    if (auto importable = check_importable(image_id, image); !importable) {
        return std::move(importable).error();
    }
    if (auto found = imports_.find(image_id); found != imports_.end()) {
        return make_error(Errc::invalid_argument,
                          "image {} is already imported (texture {}); release it first", image_id,
                          found->second.texture);
    }
    if (!has_modifiers_ && (layout.modifier != DRM_FORMAT_MOD_INVALID || layout.plane_count > 3)) {
        return make_error(
            Errc::unsupported,
            "image {}: modifier {} with {} planes needs EGL_EXT_image_dma_buf_import_modifiers, "
            "which the {} display lacks; without it only implicit-modifier (INVALID) images "
            "of up to 3 planes import",
            image_id, modifier_name(layout.modifier), layout.plane_count, state_->platform);
    }
    if (!formats_.empty() && find_format(layout.fourcc) == nullptr) {
        return make_error(Errc::unsupported,
                          "image {}: EGL on the {} display cannot import {} ({} formats listed)", image_id,
                          state_->platform, format_name(layout.fourcc), formats_.size());
    }
    const FormatInfo* info = texshare::find_format(layout.fourcc);
    const bool external = (info != nullptr && info->is_yuv) || external_only(layout.fourcc, layout.modifier);
    if (external && !has_external_) {
        return make_error(Errc::unsupported,
                          "image {}: {} samples only as an external texture, and the context "
                          "lacks GL_OES_EGL_image_external",
                          image_id, format_name(layout.fourcc));
    }
    auto attributes = dma_buf_attributes(image_id, image);
    if (!attributes) return std::move(attributes).error();
    if (auto current = state_->make_current(); !current) return std::move(current).error();

    EGLImageKHR egl_image = eglCreateImageKHR(state_->display, EGL_NO_CONTEXT, EGL_LINUX_DMA_BUF_EXT, nullptr,
                                              attributes->data());
    if (egl_image == EGL_NO_IMAGE_KHR) {
        return make_error(Errc::unsupported,
                          "image {}: eglCreateImageKHR(EGL_LINUX_DMA_BUF_EXT, {} {}x{}, {} planes, "
                          "modifier {}, plane 0 stride {}) failed: {}",
                          image_id, format_name(layout.fourcc), layout.width, layout.height,
                          layout.plane_count, modifier_name(layout.modifier), layout.planes[0].stride,
                          egl_error_name(eglGetError()));
    }
    detail::drain_gl_errors();
    const GLenum target = external ? GL_TEXTURE_EXTERNAL_OES : GL_TEXTURE_2D;
    GLint previous = 0;
    glGetIntegerv(external ? GL_TEXTURE_BINDING_EXTERNAL_OES : GL_TEXTURE_BINDING_2D, &previous);
    GLuint texture = 0;
    glGenTextures(1, &texture);
    glBindTexture(target, texture);
    glEGLImageTargetTexture2DOES(target, egl_image);
    const GLenum error = glGetError();
    glTexParameteri(target, GL_TEXTURE_MIN_FILTER, GL_LINEAR);
    glTexParameteri(target, GL_TEXTURE_MAG_FILTER, GL_LINEAR);
    glTexParameteri(target, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(target, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glBindTexture(target, static_cast<GLuint>(previous));
    const ImportedTexture imported{texture, target, egl_image};
    if (error != GL_NO_ERROR) {
        (void)destroy_import(*state_, imported);
        return make_error(Errc::unsupported, "image {}: glEGLImageTargetTexture2DOES({}) failed: {}",
                          image_id, external ? "GL_TEXTURE_EXTERNAL_OES" : "GL_TEXTURE_2D",
                          gl_error_name(error));
    }
    imports_.emplace(image_id, imported);
    return imported;
}

Result<void> Importer::release(std::uint64_t image_id) {
    auto found = imports_.find(image_id);
    if (found == imports_.end()) {
        return make_error(Errc::invalid_argument, "Importer::release: image {} is not imported", image_id);
    }
    const ImportedTexture imported = found->second;
    imports_.erase(found);
    return destroy_import(*state_, imported);
}

void Importer::release_all() noexcept {
    if (state_) {
        for (const auto& [id, imported] : imports_) (void)destroy_import(*state_, imported);
    }
    imports_.clear();
}

const ImportedTexture* Importer::find(std::uint64_t image_id) const {
    auto found = imports_.find(image_id);
    return found != imports_.end() ? &found->second : nullptr;
}

// ---- Exporter ----------------------------------------------------------------------------

Result<Exporter> Exporter::create(const Display& display) {
    if (!display.state_) return make_error(Errc::invalid_argument, "Exporter::create: empty Display");
    for (const char* needed :
         {"EGL_KHR_image_base", "EGL_KHR_gl_texture_2D_image", "EGL_MESA_image_dma_buf_export"}) {
        if (!display.state_->has_extension(needed)) {
            return make_error(Errc::unsupported,
                              "{} is missing on the {} display, so EGL cannot export textures", needed,
                              display.state_->platform);
        }
    }
    Exporter exporter;
    exporter.state_ = display.state_;
    return exporter;
}

namespace {

struct ImageGuard {
    EGLDisplay display;
    EGLImageKHR image;
    ImageGuard(EGLDisplay d, EGLImageKHR i) : display(d), image(i) {}
    ImageGuard(const ImageGuard&) = delete;
    ImageGuard& operator=(const ImageGuard&) = delete;
    ~ImageGuard() { eglDestroyImageKHR(display, image); }
};

// Owns every fd the driver wrote, each once, before anything else can fail. Per the
// extension, a slot after the last fd holds -1 when planes share a buffer: such a plane
// gets a duplicate of the previous plane's fd. Plane 0 without an fd is no export at all.
Result<PlaneFds> own_exported_fds(const std::array<int, max_planes>& raw, std::size_t planes,
                                  GLuint texture) {
    PlaneFds fds;
    for (std::size_t i = 0; i < max_planes; ++i) {
        const bool seen = std::find(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(i), raw[i]) !=
                          raw.begin() + static_cast<std::ptrdiff_t>(i);
        if (raw[i] >= 0 && !seen) fds[i].reset(raw[i]);
    }
    if (!fds[0].valid()) {
        return make_error(Errc::unsupported,
                          "eglExportDMABUFImageMESA of texture {} returned EGL_TRUE but plane 0 fd {}: the "
                          "driver exported no DMA-BUF (llvmpipe does this), so there is nothing to share",
                          texture, raw[0]);
    }
    for (std::size_t i = 1; i < max_planes; ++i) {
        if (i >= planes) {
            fds[i].reset();  // a driver writing past its planes: closed, not shared
        } else if (!fds[i].valid()) {
            const std::size_t source =
                raw[i] < 0
                    ? i - 1
                    : static_cast<std::size_t>(std::find(raw.begin(), raw.end(), raw[i]) - raw.begin());
            auto copy = fds[source].dup();
            if (!copy) return std::move(copy).error();
            fds[i] = std::move(*copy);
        }
    }
    for (std::size_t i = 0; i < planes; ++i) {
        auto dma_buf = texshare::detail::is_dma_buf(fds[i].borrow());
        if (!dma_buf || !*dma_buf) {
            return make_error(Errc::unsupported, "export of texture {}: plane {} fd {} is not a DMA-BUF",
                              texture, i, fds[i].get());
        }
    }
    return fds;
}

}  // namespace

Result<DmaBufImage> Exporter::export_texture(GLuint texture, std::uint32_t width,
                                             std::uint32_t height) const {
    if (!state_) {
        return make_error(Errc::invalid_argument, "Exporter::export_texture on a moved-from Exporter");
    }
    if (auto current = state_->make_current(); !current) return std::move(current).error();
    if (texture == 0 || !glIsTexture(texture)) {
        return make_error(Errc::invalid_argument, "export: {} is not a texture name of this context",
                          texture);
    }
    const EGLint attributes[] = {EGL_GL_TEXTURE_LEVEL_KHR, 0, EGL_NONE};
    EGLImageKHR image = eglCreateImageKHR(
        state_->display, state_->context, EGL_GL_TEXTURE_2D_KHR,
        reinterpret_cast<EGLClientBuffer>(static_cast<std::uintptr_t>(texture)), attributes);
    if (image == EGL_NO_IMAGE_KHR) {
        return make_error(Errc::unsupported,
                          "export: eglCreateImageKHR(EGL_GL_TEXTURE_2D_KHR, texture {}) failed: {}", texture,
                          egl_error_name(eglGetError()));
    }
    const ImageGuard guard{state_->display, image};
    int fourcc = 0;
    int planes = 0;
    if (!eglExportDMABUFImageQueryMESA(state_->display, image, &fourcc, &planes, nullptr)) {
        return make_error(Errc::unsupported, "eglExportDMABUFImageQueryMESA of texture {} failed: {}",
                          texture, egl_error_name(eglGetError()));
    }
    if (planes < 1 || planes > static_cast<int>(max_planes)) {
        return make_error(Errc::unsupported, "export of texture {}: the driver reports {} planes", texture,
                          planes);
    }
    // Asked only now: newer Mesa writes one modifier per plane.
    std::array<EGLuint64KHR, max_planes> modifiers{};
    modifiers.fill(DRM_FORMAT_MOD_INVALID);
    if (!eglExportDMABUFImageQueryMESA(state_->display, image, nullptr, nullptr, modifiers.data())) {
        return make_error(Errc::unsupported,
                          "eglExportDMABUFImageQueryMESA(modifiers) of texture {} failed: {}", texture,
                          egl_error_name(eglGetError()));
    }
    // -1, never 0: a driver that leaves a slot untouched must not hand us stdin.
    std::array<int, max_planes> raw{-1, -1, -1, -1};
    std::array<EGLint, max_planes> strides{};
    std::array<EGLint, max_planes> offsets{};
    const EGLBoolean exported =
        eglExportDMABUFImageMESA(state_->display, image, raw.data(), strides.data(), offsets.data());
    const EGLint egl_error = exported ? EGL_SUCCESS : eglGetError();
    auto fds = own_exported_fds(raw, static_cast<std::size_t>(planes), texture);
    if (!exported) {
        return make_error(Errc::unsupported, "eglExportDMABUFImageMESA of texture {} failed: {}", texture,
                          egl_error_name(egl_error));
    }
    if (!fds) return std::move(fds).error();
    ImageLayout layout{
        width, height, static_cast<std::uint32_t>(fourcc), modifiers[0], static_cast<std::uint32_t>(planes),
        {}};
    for (std::size_t i = 0; i < layout.plane_count; ++i) {
        if (offsets[i] < 0 || strides[i] < 0) {
            return make_error(Errc::unsupported, "export of texture {}: plane {} offset {} stride {}",
                              texture, i, offsets[i], strides[i]);
        }
        layout.planes[i] =
            PlaneLayout{static_cast<std::uint64_t>(offsets[i]), static_cast<std::uint32_t>(strides[i])};
        auto size = texshare::detail::dma_buf_size((*fds)[i].borrow());
        if (size && *size < plane_end(layout, i)) {
            return make_error(Errc::unsupported,
                              "export of texture {}: plane {} ends at byte {}, its DMA-BUF holds {}", texture,
                              i, plane_end(layout, i), *size);
        }
    }
    auto result = DmaBufImage::adopt(layout, Backing::dma_buf, std::move(*fds));
    if (!result) {
        return make_error(Errc::unsupported,
                          "export of texture {} ({}x{}): the driver's layout is unusable: {}", texture, width,
                          height, result.error().message);
    }
    return result;
}

// ---- Test and diagnostics helpers --------------------------------------------------------

namespace {

// A framebuffer object with `texture` as its colour attachment; restores the previous binding.
class ScopedFramebuffer {
public:
    ScopedFramebuffer() {
        glGetIntegerv(GL_FRAMEBUFFER_BINDING, &previous_);
        glGenFramebuffers(1, &framebuffer_);
        glBindFramebuffer(GL_FRAMEBUFFER, framebuffer_);
    }
    ScopedFramebuffer(const ScopedFramebuffer&) = delete;
    ScopedFramebuffer& operator=(const ScopedFramebuffer&) = delete;
    ~ScopedFramebuffer() {
        glBindFramebuffer(GL_FRAMEBUFFER, static_cast<GLuint>(previous_));
        glDeleteFramebuffers(1, &framebuffer_);
    }

    Result<void> attach(GLuint texture) {
        glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, texture, 0);
        const GLenum status = glCheckFramebufferStatus(GL_FRAMEBUFFER);
        if (status != GL_FRAMEBUFFER_COMPLETE) {
            return make_error(Errc::unsupported, "framebuffer with texture {} is incomplete: {}", texture,
                              gl_error_name(status == 0 ? glGetError() : status));
        }
        return {};
    }

private:
    GLint previous_ = 0;
    GLuint framebuffer_ = 0;
};

struct ScopedTexture {
    GLuint name = 0;
    ScopedTexture() { glGenTextures(1, &name); }
    ScopedTexture(const ScopedTexture&) = delete;
    ScopedTexture& operator=(const ScopedTexture&) = delete;
    ~ScopedTexture() { glDeleteTextures(1, &name); }
};

Result<void> check_gl(std::string_view what) {
    if (const GLenum error = glGetError(); error != GL_NO_ERROR) {
        return make_error(Errc::unsupported, "{} failed: {}", what, gl_error_name(error));
    }
    return {};
}

Result<GLuint> compile(GLenum kind, const std::string& source) {
    const GLuint shader = glCreateShader(kind);
    const char* text = source.c_str();
    glShaderSource(shader, 1, &text, nullptr);
    glCompileShader(shader);
    GLint ok = GL_FALSE;
    glGetShaderiv(shader, GL_COMPILE_STATUS, &ok);
    if (ok == GL_TRUE) return shader;
    std::string log(1024, '\0');
    GLsizei length = 0;
    glGetShaderInfoLog(shader, static_cast<GLsizei>(log.size()), &length, log.data());
    glDeleteShader(shader);
    log.resize(static_cast<std::size_t>(std::max(length, 0)));
    return make_error(Errc::unsupported, "shader compile failed: {}", log);
}

// A program drawing `target` over the viewport with one big triangle (attribute 0).
Result<GLuint> blit_program(GLenum target) {
    const bool external = target == GL_TEXTURE_EXTERNAL_OES;
    auto vertex =
        compile(GL_VERTEX_SHADER,
                "#version 100\nattribute vec2 position;\nvarying vec2 uv;\n"
                "void main() { uv = position * 0.5 + 0.5; gl_Position = vec4(position, 0.0, 1.0); }\n");
    if (!vertex) return std::move(vertex).error();
    auto fragment =
        compile(GL_FRAGMENT_SHADER,
                fmt::format("#version 100\n{}precision mediump float;\nuniform {} source;\n"
                            "varying vec2 uv;\nvoid main() {{ gl_FragColor = texture2D(source, uv); }}\n",
                            external ? "#extension GL_OES_EGL_image_external : require\n" : "",
                            external ? "samplerExternalOES" : "sampler2D"));
    if (!fragment) {
        glDeleteShader(*vertex);
        return std::move(fragment).error();
    }
    const GLuint program = glCreateProgram();
    glAttachShader(program, *vertex);
    glAttachShader(program, *fragment);
    glBindAttribLocation(program, 0, "position");
    glLinkProgram(program);
    glDeleteShader(*vertex);  // flagged; freed with the program
    glDeleteShader(*fragment);
    GLint ok = GL_FALSE;
    glGetProgramiv(program, GL_LINK_STATUS, &ok);
    if (ok != GL_TRUE) {
        glDeleteProgram(program);
        return make_error(Errc::unsupported, "blit program failed to link");
    }
    return program;
}

}  // namespace

Result<void> clear_texture(const Display& display, GLuint texture, float red, float green, float blue,
                           float alpha) {
    if (auto current = display.make_current(); !current) return std::move(current).error();
    detail::drain_gl_errors();
    ScopedFramebuffer framebuffer;
    if (auto attached = framebuffer.attach(texture); !attached) return attached;
    glClearColor(red, green, blue, alpha);
    glClear(GL_COLOR_BUFFER_BIT);
    glFinish();
    return check_gl(fmt::format("clear of texture {}", texture));
}

Result<void> draw_texture(const Display& display, GLenum source_target, GLuint source, GLuint destination,
                          std::uint32_t width, std::uint32_t height) {
    if (auto current = display.make_current(); !current) return std::move(current).error();
    detail::drain_gl_errors();
    ScopedFramebuffer framebuffer;
    if (auto attached = framebuffer.attach(destination); !attached) return attached;
    auto program = blit_program(source_target);
    if (!program) return std::move(program).error();
    GLint previous_program = 0, previous_unit = 0, previous_texture = 0, previous_buffer = 0;
    GLint viewport[4] = {};
    glGetIntegerv(GL_CURRENT_PROGRAM, &previous_program);
    glGetIntegerv(GL_ACTIVE_TEXTURE, &previous_unit);
    glActiveTexture(GL_TEXTURE0);
    const bool external = source_target == GL_TEXTURE_EXTERNAL_OES;
    glGetIntegerv(external ? GL_TEXTURE_BINDING_EXTERNAL_OES : GL_TEXTURE_BINDING_2D, &previous_texture);
    glGetIntegerv(GL_ARRAY_BUFFER_BINDING, &previous_buffer);
    glGetIntegerv(GL_VIEWPORT, viewport);

    static constexpr GLfloat triangle[] = {-1.0F, -1.0F, 3.0F, -1.0F, -1.0F, 3.0F};
    glViewport(0, 0, static_cast<GLsizei>(width), static_cast<GLsizei>(height));
    glUseProgram(*program);
    glBindTexture(source_target, source);
    glUniform1i(glGetUniformLocation(*program, "source"), 0);
    glBindBuffer(GL_ARRAY_BUFFER, 0);  // client-side vertices
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, triangle);
    glEnableVertexAttribArray(0);
    glDrawArrays(GL_TRIANGLES, 0, 3);
    glDisableVertexAttribArray(0);
    glFinish();
    auto drawn = check_gl(fmt::format("draw of texture {} into texture {}", source, destination));

    glBindBuffer(GL_ARRAY_BUFFER, static_cast<GLuint>(previous_buffer));
    glBindTexture(source_target, static_cast<GLuint>(previous_texture));
    glActiveTexture(static_cast<GLenum>(previous_unit));
    glUseProgram(static_cast<GLuint>(previous_program));
    glViewport(viewport[0], viewport[1], viewport[2], viewport[3]);
    glDeleteProgram(*program);
    return drawn;
}

Result<std::vector<std::uint8_t>> read_pixels(const Display& display, GLenum target, GLuint texture,
                                              std::uint32_t width, std::uint32_t height) {
    if (auto current = display.make_current(); !current) return std::move(current).error();
    detail::drain_gl_errors();
    std::optional<ScopedTexture> copy;
    GLuint readable = texture;
    if (target != GL_TEXTURE_2D) {  // external textures cannot be attached to a framebuffer
        copy.emplace();
        GLint previous = 0;
        glGetIntegerv(GL_TEXTURE_BINDING_2D, &previous);
        glBindTexture(GL_TEXTURE_2D, copy->name);
        glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, static_cast<GLsizei>(width), static_cast<GLsizei>(height), 0,
                     GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
        glBindTexture(GL_TEXTURE_2D, static_cast<GLuint>(previous));
        if (auto drawn = draw_texture(display, target, texture, copy->name, width, height); !drawn) {
            return std::move(drawn).error();
        }
        readable = copy->name;
    }
    ScopedFramebuffer framebuffer;
    if (auto attached = framebuffer.attach(readable); !attached) return std::move(attached).error();
    std::vector<std::uint8_t> pixels(std::size_t{width} * height * 4);
    GLint alignment = 4;
    glGetIntegerv(GL_PACK_ALIGNMENT, &alignment);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadPixels(0, 0, static_cast<GLsizei>(width), static_cast<GLsizei>(height), GL_RGBA, GL_UNSIGNED_BYTE,
                 pixels.data());
    glPixelStorei(GL_PACK_ALIGNMENT, alignment);
    if (auto read = check_gl(fmt::format("glReadPixels of texture {}", texture)); !read) {
        return std::move(read).error();
    }
    return pixels;
}

std::string egl_error_name(EGLint code) {
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
    for (const auto& [value, name] : names) {
        if (value == code) return fmt::format("{} (0x{:04x})", name, code);
    }
    return fmt::format("unknown EGL error (0x{:04x})", code);
}

std::string gl_error_name(GLenum code) {
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
    for (const auto& [value, name] : names) {
        if (value == code) return fmt::format("{} (0x{:04x})", name, code);
    }
    return fmt::format("unknown GL error (0x{:04x})", code);
}

}  // namespace texshare::egl
