#include "png_writer.hpp"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::make_sys_error;

struct PngFailure {
    char message[256] = "";
};

[[noreturn]] void on_png_error(png_structp png, png_const_charp message) {
    auto* failure = static_cast<PngFailure*>(png_get_error_ptr(png));
    std::snprintf(failure->message, sizeof failure->message, "%s", message);
    png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

// libpng reports errors by longjmp, which skips C++ destructors: this function holds only
// trivially destructible locals, and everything that owns memory lives in the caller.
bool encode(std::FILE* file, std::uint32_t width, std::uint32_t height, png_bytepp rows,
            PngFailure& failure) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &failure, on_png_error, on_png_warning);
    if (png == nullptr) {
        std::snprintf(failure.message, sizeof failure.message, "png_create_write_struct failed");
        return false;
    }
    png_infop info = png_create_info_struct(png);
    if (info == nullptr || setjmp(png_jmpbuf(png)) != 0) {
        if (info == nullptr)
            std::snprintf(failure.message, sizeof failure.message, "png_create_info_struct failed");
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
    png_destroy_write_struct(&png, &info);
    return true;
}

}  // namespace

texshare::Result<void> write_png_rgba(const std::string& path, std::uint32_t width, std::uint32_t height,
                                      std::span<const std::uint8_t> rgba) {
    const std::size_t row_bytes = std::size_t{width} * 4;
    if (width == 0 || height == 0 || rgba.size() != row_bytes * height) {
        return make_error(Errc::invalid_argument, "write_png_rgba: {} bytes for {}x{} pixels", rgba.size(),
                          width, height);
    }
    std::vector<png_bytep> rows(height);
    for (std::uint32_t y = 0; y < height; ++y) {
        // libpng's row type is non-const but png_write_png only reads the rows.
        rows[y] = const_cast<png_bytep>(rgba.data() + row_bytes * y);
    }
    // "e": O_CLOEXEC, so the file never reaches a child spawned meanwhile.
    std::FILE* file = std::fopen(path.c_str(), "wbe");
    if (file == nullptr) return make_sys_error(errno, "open {} for writing", path);
    PngFailure failure;
    const bool encoded = encode(file, width, height, rows.data(), failure);
    // stdio keeps the errno of the write that failed only until the next call: take it now.
    const int write_errno = std::ferror(file) != 0 ? (errno != 0 ? errno : EIO) : 0;
    const int close_errno = std::fclose(file) == 0 ? 0 : errno;
    if (!encoded) return make_error(Errc::library, "libpng writing {}: {}", path, failure.message);
    if (write_errno != 0) return make_sys_error(write_errno, "writing {}", path);
    if (close_errno != 0) return make_sys_error(close_errno, "close {}", path);
    return {};
}

}  // namespace host_renderer
