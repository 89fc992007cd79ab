#include "options.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <set>
#include <system_error>

#include <fmt/format.h>

#include "texshare/image_layout.hpp"

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::Result;

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

Result<Size> parse_size(std::string_view key, std::string_view text) {
    const auto x = text.find('x');
    const auto width = parse_number<std::uint32_t>(text.substr(0, x));
    const auto height =
        x == std::string_view::npos ? std::nullopt : parse_number<std::uint32_t>(text.substr(x + 1));
    for (const auto& side : {width, height}) {
        if (!side || *side == 0 || *side > texshare::max_image_dimension) {
            return make_error(Errc::invalid_argument, "{}: \"{}\" is not WIDTHxHEIGHT, each in 1..{}", key,
                              text, texshare::max_image_dimension);
        }
    }
    return Size{*width, *height};
}

// --frames needs a positive count; --resize-at and --kill-at take 0 for "never".
Result<std::uint64_t> parse_count(std::string_view key, std::string_view text, bool zero_allowed) {
    const auto value = parse_number<std::uint64_t>(text);
    if (!value || (*value == 0 && !zero_allowed)) {
        return make_error(Errc::invalid_argument, "{}: \"{}\" is not a {} number", key, text,
                          zero_allowed ? "non-negative" : "positive");
    }
    return *value;
}

Result<AllocatorChoice> parse_allocator(std::string_view text) {
    for (const auto choice : {AllocatorChoice::automatic, AllocatorChoice::gbm, AllocatorChoice::memfd,
                              AllocatorChoice::heap, AllocatorChoice::udmabuf}) {
        if (to_string(choice) == text) return choice;
    }
    return make_error(Errc::invalid_argument, "--allocator: \"{}\" is not auto, gbm, memfd, heap or udmabuf",
                      text);
}

Result<Api> parse_api(std::string_view text) {
    for (const auto api : {Api::cpu, Api::vulkan}) {
        if (to_string(api) == text) return api;
    }
    return make_error(Errc::invalid_argument, "--api: \"{}\" is not cpu or vulkan", text);
}

// Applies one --key[=value] to options; `has_value` tells "--frames" from "--frames=".
Result<void> apply(Options& options, std::string_view key, std::string_view value, bool has_value) {
    constexpr std::array<std::string_view, 4> flags{"--help", "-h", "--renderer", "--paced"};
    constexpr std::array<std::string_view, 11> keys{"--frames",  "--size",      "--resize-at", "--resize-to",
                                                    "--kill-at", "--allocator", "--output",    "--helper-hold",
                                                    "--api",     "--fences",    "--rate"};
    const bool is_flag = std::ranges::find(flags, key) != flags.end();
    if (!is_flag && std::ranges::find(keys, key) == keys.end()) {
        return make_error(Errc::invalid_argument, "unknown argument \"{}\"", key);
    }
    if (is_flag && has_value) return make_error(Errc::invalid_argument, "{} takes no value", key);
    if (!is_flag && !has_value)
        return make_error(Errc::invalid_argument, "{} needs a value ({}=...)", key, key);
    if (key == "--help" || key == "-h") options.help = true;
    if (key == "--renderer") options.renderer = true;
    if (key == "--paced") options.paced = true;
    if (key == "--output" && value.empty())
        return make_error(Errc::invalid_argument, "--output: the path is empty");
    if (key == "--output") options.output = std::string(value);
    Result<void> parsed;
    const auto store = [&parsed](auto result, auto& field) {
        if (result)
            field = *result;
        else
            parsed = std::move(result).error();
    };
    if (key == "--frames") store(parse_count(key, value, false), options.frames);
    if (key == "--resize-at") store(parse_count(key, value, true), options.resize_at);
    if (key == "--kill-at") store(parse_count(key, value, true), options.kill_at);
    if (key == "--size") store(parse_size(key, value), options.size);
    if (key == "--resize-to") store(parse_size(key, value), options.resize_to);
    if (key == "--allocator") store(parse_allocator(value), options.allocator);
    if (key == "--helper-hold") store(parse_count(key, value, true), options.helper_hold_s);
    if (key == "--api") store(parse_api(value), options.api);
    if (key == "--rate") {
        const auto rate = parse_number<std::uint32_t>(value);
        // Up to 1000 Hz: a timerfd tick of 1 ms at most; 0 lets the renderer run free.
        if (!rate || *rate > 1000) {
            return make_error(Errc::invalid_argument, "--rate: \"{}\" is not a rate in Hz, 0..1000", value);
        }
        options.rate_hz = *rate;
    }
    if (key == "--fences" && value != "auto" && value != "cpu_wait") {
        return make_error(Errc::invalid_argument, "--fences: \"{}\" is not auto or cpu_wait", value);
    }
    if (key == "--fences") options.vulkan_cpu_wait = value == "cpu_wait";
    if (options.helper_hold_s > 60) return make_error(Errc::invalid_argument, "--helper-hold: at most 60 s");
    return parsed;
}

}  // namespace

std::string_view to_string(Api api) noexcept { return api == Api::vulkan ? "vulkan" : "cpu"; }

std::string_view to_string(AllocatorChoice choice) noexcept {
    switch (choice) {
        case AllocatorChoice::automatic:
            return "auto";
        case AllocatorChoice::gbm:
            return "gbm";
        case AllocatorChoice::memfd:
            return "memfd";
        case AllocatorChoice::heap:
            return "heap";
        case AllocatorChoice::udmabuf:
            return "udmabuf";
    }
    return "unknown";
}

Result<Options> parse_options(std::span<char* const> arguments) {
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
    if (seen.contains("--paced") && !options.renderer) {
        return make_error(Errc::invalid_argument, "--paced is for the renderer (the host paces it with --rate)");
    }
    if (seen.contains("--fences") && options.api != Api::vulkan) {
        return make_error(Errc::invalid_argument, "--fences is for --api=vulkan");
    }
    if (options.renderer) {
        const bool vulkan = options.api == Api::vulkan;
        for (const std::string& key : seen) {
            const bool allowed = key == "--renderer" || key == "--frames" || key == "--api" ||
                                 (vulkan ? key == "--size" || key == "--fences"
                                         : key == "--helper-hold" || key == "--paced");
            if (!allowed) {
                return make_error(Errc::invalid_argument, "{} is for the host; a renderer takes only {}", key,
                                  vulkan ? "--api, --frames, --size and --fences"
                                         : "--api, --frames, --helper-hold and --paced");
            }
        }
        return options;
    }
    if (options.api == Api::vulkan) {
        // The renderer allocates the images: the host has none to choose, resize or take back.
        for (const char* key : {"--allocator", "--resize-at", "--resize-to", "--kill-at", "--helper-hold", "--rate"}) {
            if (seen.contains(key)) {
                return make_error(Errc::invalid_argument,
                                  "{} is not available with --api=vulkan (the renderer allocates its own images: "
                                  "no allocator, resize or kill; it runs free: no begin_frame)",
                                  key);
            }
        }
        options.resize_at = 0;
        options.kill_at = 0;
        options.rate_hz = 0;
        return options;
    }
    // The renderer runs a few presents ahead of what the host has received (as many as it
    // has images), so an event planned for the last few frames could find it finished.
    constexpr std::uint64_t margin = 6;
    for (const auto& [key, at] :
         {std::pair{"--resize-at", options.resize_at}, {"--kill-at", options.kill_at}}) {
        if (at != 0 && at + margin > options.frames) {
            return make_error(Errc::invalid_argument,
                              "{}={} leaves fewer than {} of --frames={} after it (0 turns it off)", key, at,
                              margin, options.frames);
        }
    }
    return options;
}

std::string usage(std::string_view program) {
    return fmt::format(
        "usage: {0} [--frames=N] [--size=WxH] [--resize-at=N] [--resize-to=WxH] [--kill-at=N] [--rate=HZ]\n"
        "          [--allocator=auto|gbm|memfd|heap|udmabuf] [--output=PATH] [--helper-hold=S] [--api=cpu]\n"
        "The host allocates a 3-image swapchain (GBM DMA-BUFs where a DRM device allocates,\n"
        "else sealed memfds; --allocator forces one, gbm fails without a device; heap: the\n"
        "system DMA-BUF heap, failing without one; udmabuf: memfds the host turns into DMA-BUFs\n"
        "with /dev/udmabuf and imports with EGL, else reads with the CPU, saying which) and spawns a\n"
        "renderer child that draws N frames (default 300) into it. The host checks every frame\n"
        "it shows (EGL import + readback where it can import DMA-BUFs, else a CPU mapping).\n"
        "Counting the presents it has received: at --resize-at (default 100) it replaces its\n"
        "WxH images (default 256x256) with --resize-to ones (default 384x320); at --kill-at\n"
        "(default 200) it SIGKILLs the renderer and spawns another, which presents the rest\n"
        "(0 turns either off). Prints a summary; writes the last frame to PATH (default\n"
        "host_renderer_last_frame.png). Exit 0 only if nothing was lost but presents in flight\n"
        "at the kill, every pixel matched and no fd leaked. With --helper-hold, each renderer\n"
        "forks a helper that holds its channel end S seconds longer than the renderer lives\n"
        "(as a crash reporter might): the host still sees the renderer's death at once.\n"
        "The host paces the renderer with begin_frame from a timer at --rate Hz (default 60; 0: the\n"
        "renderer runs free), reports each frame it shows as presented, and prints the latency from\n"
        "begin_frame to presented (p50, p99) and the share of pixels the renderer's damage covered.\n"
        "       {0} --api=vulkan [--frames=N] [--size=WxH] [--output=PATH] [--fences=auto|cpu_wait]\n"
        "The renderer allocates 3 WxH images with Vulkan (texshare::vulkan::Exporter: DMA-BUF where\n"
        "the driver exports them), draws each frame with a compute shader and presents it with a\n"
        "fence (a SYNC_FD semaphore's sync_file, else none after the GPU is idle); the host imports\n"
        "them with texshare::vulkan, copies each frame it shows into a buffer and checks every\n"
        "pixel (--fences=cpu_wait: the CPU-wait fallback even where SYNC_FD semaphores exist).\n"
        "No resize or kill in this mode. Without a Vulkan driver that can share images\n"
        "(Debian 12's lavapipe) it says what is missing and exits 3.\n"
        "       {0} --renderer [--api=vulkan] [--frames=N] [--helper-hold=S | --size=WxH --fences=F]\n"
        "          [--paced] (the child's mode; the host starts it)\n",
        program);
}

std::vector<std::string> renderer_arguments(const Options& options) {
    return {"--renderer", "--api=vulkan", fmt::format("--frames={}", options.frames),
            fmt::format("--size={}x{}", options.size.width, options.size.height),
            options.vulkan_cpu_wait ? "--fences=cpu_wait" : "--fences=auto"};
}

std::vector<std::string> renderer_arguments(std::uint64_t frames, const Options& options) {
    std::vector<std::string> arguments{"--renderer", fmt::format("--frames={}", frames)};
    if (options.helper_hold_s != 0) arguments.push_back(fmt::format("--helper-hold={}", options.helper_hold_s));
    if (options.rate_hz != 0) arguments.emplace_back("--paced");
    return arguments;
}

}  // namespace host_renderer
