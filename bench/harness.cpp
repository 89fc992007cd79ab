#include "harness.hpp"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace bench {

void fail(std::string_view what) {
    std::fprintf(stderr, "texshare_bench: %.*s\n", static_cast<int>(what.size()), what.data());
    std::exit(1);
}

double median(std::vector<double> values) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const std::size_t middle = values.size() / 2;
    return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

double cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

namespace {
// The first "<key> <number> kB" line of a /proc file.
std::size_t proc_kib(pid_t pid, const char* file, std::string_view key) {
    const std::string path = pid == 0 ? fmt::format("/proc/self/{}", file) : fmt::format("/proc/{}/{}", pid, file);
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key, 0) == 0) return std::strtoull(line.c_str() + key.size(), nullptr, 10);
    }
    return 0;
}
}  // namespace

std::size_t resident_kib(pid_t pid) { return proc_kib(pid, "status", "VmRSS:"); }
std::size_t proportional_kib(pid_t pid) { return proc_kib(pid, "smaps_rollup", "Pss:"); }

std::pair<texshare::UniqueFd, texshare::UniqueFd> socket_pair(int type) {
    int ends[2] = {-1, -1};
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, ends) != 0) fail(fmt::format("socketpair: errno {}", errno));
    return {texshare::UniqueFd(ends[0]), texshare::UniqueFd(ends[1])};
}

texshare::ChildProcess spawn_child(std::string_view mode, std::vector<texshare::UniqueFd> fds,
                                   const std::vector<std::string>& args) {
    std::vector<std::string> arguments{fmt::format("--child={}", mode)};
    arguments.insert(arguments.end(), args.begin(), args.end());
    // The path itself rather than /proc/self/exe: under valgrind (--cost counts instructions)
    // /proc/self/exe is the tool, and only readlink of it gives this binary.
    static const std::string self = [] {
        char path[4096] = "";
        const ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
        return length > 0 ? std::string(path, static_cast<std::size_t>(length)) : std::string("/proc/self/exe");
    }();
    return must(texshare::ChildProcess::spawn(self, arguments, fds, {.argv0 = "texshare_bench"}),
                fmt::format("spawning the {} child", mode));
}

void expect_clean_exit(texshare::ChildProcess& child, std::string_view what) {
    auto status = must(child.wait(30s), fmt::format("waiting for the {} child", what));
    if (!status.ok()) fail(fmt::format("the {} child failed: {}", what, status.describe()));
}

texshare::UniqueFd inherited_fd(int index) {
    return must(texshare::take_inherited_fd(texshare::first_inherited_fd + index), "inherited fd");
}

Samples run_interleaved(const std::vector<Scheduled>& benchmarks, std::size_t repetitions) {
    for (const Scheduled& s : benchmarks) s.benchmark->run(std::max<std::size_t>(s.iterations / 4, 1));
    Samples samples;
    samples.seconds.resize(benchmarks.size());
    for (std::size_t repetition = 0; repetition < repetitions; ++repetition) {
        for (std::size_t i = 0; i < benchmarks.size(); ++i) {
            const auto start = Clock::now();
            benchmarks[i].benchmark->run(benchmarks[i].iterations);
            samples.seconds[i].push_back(seconds_since(start) / static_cast<double>(benchmarks[i].iterations));
        }
    }
    return samples;
}

double Samples::median_of(std::size_t benchmark) const { return median(seconds.at(benchmark)); }

double Samples::ratio(std::size_t a, std::size_t b) const {
    std::vector<double> ratios;
    for (std::size_t r = 0; r < seconds.at(a).size(); ++r) ratios.push_back(seconds[a][r] / seconds.at(b).at(r));
    return median(std::move(ratios));
}

}  // namespace bench
