// texshare::egl's Exporter: a GL texture out as a DmaBufImage, through
// EGL_MESA_image_dma_buf_export, refusing what some drivers pass off as a success (no fd).
#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "display_state.hpp"
#include "texshare/egl/exporter.hpp"
#include "texshare/detail/fd_probe.hpp"

namespace texshare::egl {

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

Result<DmaBufImage> Exporter::export_texture(std::uint32_t texture, std::uint32_t width,
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

}  // namespace texshare::egl
