// texshare-info: what this machine can share, and how. See options.hpp for the usage and
// README.md for an example of its output.
#include <cstdio>
#include <span>

#include <fmt/format.h>

#include "collect.hpp"
#include "json_renderer.hpp"
#include "options.hpp"
#include "text_renderer.hpp"
#include "verdict.hpp"

int main(int argc, char** argv) {
    using namespace texshare::info;
    const std::span<const char* const> arguments(argv + 1, static_cast<std::size_t>(argc - 1));
    auto options = parse_options(arguments);
    if (!options) {
        fmt::print(stderr, "texshare-info: {}\n{}", options.error().message, usage);
        return 2;
    }
    if (options->help) {
        fmt::print("{}", usage);
        return 0;
    }
    const Report report = collect_report();
    fmt::print("{}", options->json ? render_json(report) : render_text(report));
    std::fflush(stdout);
    if (options->check_zero_copy && !judge(report).front().works) {
        fmt::print(stderr, "texshare-info: --check-zero-copy: zero-copy GBM->EGL does not work here\n");
        return 1;
    }
    return 0;
}
