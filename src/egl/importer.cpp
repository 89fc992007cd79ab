// texshare::egl's Importer: DMA-BUF images in, GL textures out (one EGLImage each), and
// check_importable, which tells a caller before any EGL work whether an image can be imported.
#include <algorithm>
#include <cstdint>
#include <utility>

#include "display_state.hpp"
#include "texshare/egl/importer.hpp"

namespace texshare::egl {

namespace {

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
    const std::vector<std::int32_t> hints = color_hint_attributes(image.color(), layout.fourcc);
    attributes.insert(attributes.end(), hints.begin(), hints.end());
    attributes.push_back(EGL_NONE);
    return attributes;
}

}  // namespace

std::vector<std::int32_t> color_hint_attributes(const ColorInfo& color, std::uint32_t fourcc) {
    const FormatInfo* info = find_format(fourcc);
    if (info == nullptr || !info->is_yuv) return {};
    const ColorInfo resolved = resolve_color(color, *info);
    const auto siting = [](ChromaSiting s) -> std::int32_t {
        return s == ChromaSiting::midpoint ? EGL_YUV_CHROMA_SITING_0_5_EXT : EGL_YUV_CHROMA_SITING_0_EXT;
    };
    std::int32_t matrix = EGL_ITU_REC601_EXT;
    if (resolved.matrix == YuvMatrix::bt709) matrix = EGL_ITU_REC709_EXT;
    if (resolved.matrix == YuvMatrix::bt2020) matrix = EGL_ITU_REC2020_EXT;
    return {EGL_YUV_COLOR_SPACE_HINT_EXT,
            matrix,
            EGL_SAMPLE_RANGE_HINT_EXT,
            resolved.range == YuvRange::full ? EGL_YUV_FULL_RANGE_EXT : EGL_YUV_NARROW_RANGE_EXT,
            EGL_YUV_CHROMA_HORIZONTAL_SITING_HINT_EXT,
            siting(resolved.chroma_horizontal),
            EGL_YUV_CHROMA_VERTICAL_SITING_HINT_EXT,
            siting(resolved.chroma_vertical)};
}

Result<void> check_importable(std::uint64_t image_id, const DmaBufImage& image) {
    if (image.backing() == Backing::opaque_fd) {
        return make_error(Errc::unsupported,
                          "image {}: an opaque_fd image cannot be imported: EGL imports DMA-BUFs only, and a "
                          "driver's opaque memory cannot be mapped either (import it with texshare::vulkan on the "
                          "same device and driver)",
                          image_id);
    }
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
        auto formats = display.dma_buf_formats();
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
    if (!formats_.empty() && formats_.find(layout.fourcc) == nullptr) {
        return make_error(Errc::unsupported,
                          "image {}: EGL on the {} display cannot import {} ({} formats listed)", image_id,
                          state_->platform, format_name(layout.fourcc), formats_.size());
    }
    const FormatInfo* info = texshare::find_format(layout.fourcc);
    const FormatModifier* listed = formats_.find(layout.fourcc, layout.modifier);
    const bool external =
        (info != nullptr && info->is_yuv) || (listed != nullptr && (listed->flags & format_external_only) != 0);
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

Result<void> Importer::rename(std::uint64_t from, std::uint64_t to) {
    if (imports_.count(to) != 0) {
        return make_error(Errc::invalid_argument, "Importer::rename: image {} is already imported", to);
    }
    auto node = imports_.extract(from);
    if (node.empty()) return make_error(Errc::invalid_argument, "Importer::rename: image {} is not imported", from);
    node.key() = to;
    imports_.insert(std::move(node));
    return {};
}

const ImportedTexture* Importer::find(std::uint64_t image_id) const {
    auto found = imports_.find(image_id);
    return found != imports_.end() ? &found->second : nullptr;
}

}  // namespace texshare::egl
