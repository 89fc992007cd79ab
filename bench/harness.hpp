// The benchmark's plumbing: failing loudly, timing, medians, CPU time, resident memory and
// children of this very binary in a child mode (the other process of a cross-process
// benchmark). Nothing here measures anything by itself.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "texshare/child_process.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace bench {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A benchmark that cannot do what it measures has nothing to report: it stops the run.
[[noreturn]] void fail(std::string_view what);

template <typename T>
T must(texshare::Result<T> result, std::string_view what) {
    if (!result) fail(fmt::format("{}: {}", what, result.error().message));
    if constexpr (!std::is_void_v<T>) return std::move(*result);
}

// must() for a Result checked where it lies (a per-frame loop: no move of the Result).
template <typename T>
[[gnu::always_inline]] inline void check(const texshare::Result<T>& result, std::string_view what) {
    if (!result) [[unlikely]] fail(fmt::format("{}: {}", what, result.error().message));
}

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The median of `values` (the mean of the middle two for an even count); 0 for none.
double median(std::vector<double> values);

// User + system CPU seconds this process has used so far (getrusage).
double cpu_seconds();
// Resident set (VmRSS) and proportional set (Pss, shared pages split between their users)
// of a process, in KiB; pid 0 is this process. 0 when /proc does not say.
std::size_t resident_kib(pid_t pid = 0);
std::size_t proportional_kib(pid_t pid = 0);

// A connected AF_UNIX socket pair of `type` (SOCK_SEQPACKET, SOCK_STREAM), close-on-exec.
std::pair<texshare::UniqueFd, texshare::UniqueFd> socket_pair(int type);

// Runs this binary as `texshare_bench --child=MODE ARGS...` with `fds` on fds 3, 4, ...
texshare::ChildProcess spawn_child(std::string_view mode, std::vector<texshare::UniqueFd> fds,
                                   const std::vector<std::string>& args = {});
// Waits for a child to exit cleanly; a failed child fails the run.
void expect_clean_exit(texshare::ChildProcess& child, std::string_view what);

// What a child mode gets: the arguments after --child=MODE.
using ChildArgs = std::vector<std::string>;

// In a child: the fds its parent placed at 3, 4, ...
texshare::UniqueFd inherited_fd(int index);

// The parent's side of one cross-process round-trip benchmark; its child answers.
class RoundTrip {
public:
    virtual ~RoundTrip() = default;
    // `iterations` complete round trips, one after another.
    virtual void run(std::size_t iterations) = 0;
};

struct Scheduled {
    RoundTrip* benchmark = nullptr;
    std::size_t iterations = 0;  // per repetition
};

// Seconds per round trip of each benchmark in each repetition.
struct Samples {
    std::vector<std::vector<double>> seconds;  // [benchmark][repetition]
    // The median over the repetitions.
    double median_of(std::size_t benchmark) const;
    // The median over the repetitions of a's time divided by b's in the same repetition: a
    // ratio of neighbours in time, so drift in the machine's speed mostly cancels.
    double ratio(std::size_t a, std::size_t b) const;
};

// Runs every benchmark `repetitions` times, interleaved (a, b, c, a, b, c ...) so that a
// machine that slows down or speeds up mid-run affects them alike, after a warm-up run each.
Samples run_interleaved(const std::vector<Scheduled>& benchmarks, std::size_t repetitions);

}  // namespace bench
