#include "report.hpp"

#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <vector>

#include <fmt/format.h>

namespace bench {

std::string format_seconds(double seconds) {
    const auto three = [](double value, const char* unit) {
        if (value >= 100) return fmt::format("{:.0f} {}", value, unit);
        if (value >= 10) return fmt::format("{:.1f} {}", value, unit);
        return fmt::format("{:.2f} {}", value, unit);
    };
    if (seconds >= 1) return three(seconds, "s");
    if (seconds >= 1e-3) return three(seconds * 1e3, "ms");
    if (seconds >= 1e-6) return three(seconds * 1e6, "us");
    return three(seconds * 1e9, "ns");
}

bool meets(const Row& row) {
    if (!row.target || !row.ratio) return true;
    return row.target->at_most ? *row.ratio <= row.target->limit : *row.ratio >= row.target->limit;
}

namespace {
std::string ratio_text(const Row& row) {
    if (!row.ratio) return "";
    const double r = *row.ratio;
    std::string text = r >= 100 ? fmt::format("{:.0f}x", r) : fmt::format("{:.2f}x", r);
    if (!row.baseline.empty()) text += fmt::format(" {}", row.baseline);
    return text;
}

std::string target_text(const Row& row) {
    if (!row.target) return "";
    const char* sign = row.target->at_most ? "<=" : ">=";
    return fmt::format("{} {:.2f}x: **{}**", sign, row.target->limit, meets(row) ? "met" : "missed");
}
}  // namespace

void print_table(const Table& table) {
    bool ratios = false, targets = false;
    for (const Row& row : table.rows) {
        ratios = ratios || row.ratio.has_value();
        targets = targets || row.target.has_value();
    }
    fmt::print("{0}\n### {1}\n{0}\n| benchmark | median |{2}{3}\n| --- | ---: |{4}{5}\n", blank_line, table.title,
               ratios ? fmt::format(" {} |", table.ratio_header) : "", targets ? " target |" : "",
               ratios ? " ---: |" : "", targets ? " --- |" : "");
    for (const Row& row : table.rows) {
        fmt::print("| {} | {} |{}{}\n", row.what, row.value, ratios ? fmt::format(" {} |", ratio_text(row)) : "",
                   targets ? fmt::format(" {} |", target_text(row)) : "");
    }
    if (!table.notes.empty()) fmt::print("{}\n", blank_line);
    for (const std::string& note : table.notes) fmt::print("{}\n", note);
    std::fflush(stdout);
}

namespace {
std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    }
    return "unknown CPU";
}

// The median of 5 runs of 20 000 getppid() calls: what entering and leaving the kernel costs.
double syscall_seconds() {
    std::vector<double> runs;
    for (int run = 0; run < 5; ++run) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < 20000; ++i) (void)::syscall(SYS_getppid);
        runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 20000);
    }
    std::sort(runs.begin(), runs.end());
    return runs[runs.size() / 2];
}
}  // namespace

void print_machine(std::string_view heading) {
    utsname system{};
    ::uname(&system);
    double load[3] = {0, 0, 0};
    (void)::getloadavg(load, 3);
    char date[32] = "";
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    fmt::print("## {}, {}\n{}\n", heading, date, blank_line);
    fmt::print("Machine: {}, {} cores online, {:.1f} GiB, Linux {} ({}); load average {:.1f} at the start; "
               "one syscall (getppid) takes {}.\n",
               cpu_model(), ::sysconf(_SC_NPROCESSORS_ONLN),
               static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE)) / (1 << 30),
               system.release, system.machine, load[0], format_seconds(syscall_seconds()));
    std::fflush(stdout);
}

}  // namespace bench
