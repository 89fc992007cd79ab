#include "options.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <optional>
#include <set>
#include <system_error>

#include <fmt/format.h>

#include "texshare/image_layout.hpp"

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;

// from_chars rejects signs, spaces and overflow; requiring it to consume everything also
// rejects trailing junk such as "12abc" or "0x10".
template <typename T>
std::optional<T> parse_number(std::string_view text) {
    T value{};
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, value);
    if (text.empty() || error != std::errc{} || stop != end) return std::nullopt;
    return value;
}

texshare::Result<std::uint32_t> parse_dimension(std::string_view text, std::string_view what) {
    const auto value = parse_number<std::uint32_t>(text);
    if (!value || *value == 0 || *value > texshare::max_image_dimension) {
        return make_error(Errc::invalid_argument, "--size: {} \"{}\" is not a number in 1..{}", what, text,
                          texshare::max_image_dimension);
    }
    return *value;
}

texshare::Result<int> parse_fd(std::string_view key, std::string_view text) {
    const auto value = parse_number<int>(text);
    if (!value || *value < 0) {
        return make_error(Errc::invalid_argument, "{}: \"{}\" is not an fd number (0..{})", key, text,
                          std::numeric_limits<int>::max());
    }
    return *value;
}

// Applies one --key[=value] to options; `has_value` tells "--frames" from "--frames=".
texshare::Result<void> apply(Options& options, std::string_view key, std::string_view value, bool has_value) {
    constexpr std::array<std::string_view, 9> known{"--help",     "-h",         "--renderer",
                                                    "--frames",   "--size",     "--output",
                                                    "--image-fd", "--frame-fd", "--allocator"};
    if (std::ranges::find(known, key) == known.end()) {
        return make_error(Errc::invalid_argument, "unknown argument \"{}\"", key);
    }
    const bool is_flag = key == "--help" || key == "-h" || key == "--renderer";
    if (is_flag && has_value) return make_error(Errc::invalid_argument, "{} takes no value", key);
    if (!is_flag && !has_value)
        return make_error(Errc::invalid_argument, "{} needs a value ({}=...)", key, key);
    if (key == "--help" || key == "-h") {
        options.help = true;
    } else if (key == "--renderer") {
        options.renderer = true;
    } else if (key == "--frames") {
        const auto frames = parse_number<std::uint64_t>(value);
        if (!frames || *frames == 0) {
            return make_error(Errc::invalid_argument, "--frames: \"{}\" is not a positive number", value);
        }
        options.frames = *frames;
    } else if (key == "--size") {
        const auto x = value.find('x');
        if (x == std::string_view::npos) {
            return make_error(Errc::invalid_argument, "--size: \"{}\" is not WIDTHxHEIGHT", value);
        }
        auto width = parse_dimension(value.substr(0, x), "width");
        if (!width) return std::move(width).error();
        auto height = parse_dimension(value.substr(x + 1), "height");
        if (!height) return std::move(height).error();
        options.width = *width;
        options.height = *height;
    } else if (key == "--allocator") {
        constexpr std::array choices{AllocatorChoice::automatic, AllocatorChoice::gbm,
                                     AllocatorChoice::memfd};
        const auto* choice = std::ranges::find_if(
            choices, [value](AllocatorChoice candidate) { return to_string(candidate) == value; });
        if (choice == choices.end()) {
            return make_error(Errc::invalid_argument, "--allocator: \"{}\" is not auto, gbm or memfd", value);
        }
        options.allocator = *choice;
    } else if (key == "--output") {
        if (value.empty()) return make_error(Errc::invalid_argument, "--output: the path is empty");
        options.output = std::string(value);
    } else if (key == "--image-fd" || key == "--frame-fd") {
        auto fd = parse_fd(key, value);
        if (!fd) return std::move(fd).error();
        (key == "--image-fd" ? options.image_fd : options.frame_fd) = *fd;
    }
    return {};
}

}  // namespace

std::string_view to_string(AllocatorChoice choice) noexcept {
    switch (choice) {
        case AllocatorChoice::automatic:
            return "auto";
        case AllocatorChoice::gbm:
            return "gbm";
        case AllocatorChoice::memfd:
            return "memfd";
    }
    return "unknown";
}

texshare::Result<Options> parse_options(std::span<char* const> arguments) {
    Options options;
    std::set<std::string, std::less<>> seen;
    for (const char* raw : arguments) {
        const std::string_view argument(raw);
        const auto equals = argument.find('=');
        const std::string_view key = argument.substr(0, equals);
        const bool has_value = equals != std::string_view::npos;
        const std::string_view value = has_value ? argument.substr(equals + 1) : std::string_view{};
        if (!seen.emplace(key).second) {
            return make_error(Errc::invalid_argument, "{} is given more than once", key);
        }
        if (auto applied = apply(options, key, value, has_value); !applied) return std::move(applied).error();
    }
    if (options.help) return options;
    if (options.renderer) {
        if (options.image_fd < 0 || options.frame_fd < 0) {
            return make_error(Errc::invalid_argument, "--renderer needs --image-fd=N and --frame-fd=M");
        }
        if (options.image_fd == options.frame_fd) {
            // Two owners of one fd would close it twice.
            return make_error(Errc::invalid_argument, "--image-fd and --frame-fd are both {}",
                              options.image_fd);
        }
        if (seen.contains("--output")) {
            return make_error(Errc::invalid_argument,
                              "--output is for the host; the renderer writes no file");
        }
    } else if (options.image_fd >= 0 || options.frame_fd >= 0) {
        return make_error(Errc::invalid_argument,
                          "--image-fd and --frame-fd are only for --renderer, "
                          "which the host starts itself");
    }
    return options;
}

std::string usage(std::string_view program) {
    return fmt::format(
        "usage: {0} [--frames=N] [--size=WxH] [--output=PATH] [--allocator=auto|gbm|memfd]\n"
        "       {0} --renderer --image-fd=N --frame-fd=M [--frames=N] [--size=WxH] [--allocator=...]\n"
        "Spawns a renderer child that shares a 3-image swapchain with this host once, then\n"
        "presents N frames (default 120) of WxH pixels (default 256x256); the host verifies\n"
        "every pixel and writes the last frame to PATH (default host_renderer_last_frame.png).\n"
        "The images are DMA-BUFs from GBM where a DRM device can allocate them, else sealed\n"
        "memfds (--allocator=auto, the default); gbm or memfd forces one (gbm fails without a\n"
        "device). The host reads DMA-BUFs through EGL where it can import them, else through a\n"
        "CPU mapping. --renderer is the child's mode.\n",
        program);
}

std::vector<std::string> renderer_command_line(const Options& host, std::string_view program, int image_fd,
                                               int frame_fd) {
    return {std::string(program),
            "--renderer",
            fmt::format("--image-fd={}", image_fd),
            fmt::format("--frame-fd={}", frame_fd),
            fmt::format("--frames={}", host.frames),
            fmt::format("--size={}x{}", host.width, host.height),
            fmt::format("--allocator={}", to_string(host.allocator))};
}

}  // namespace host_renderer
