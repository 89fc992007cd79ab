// Google Benchmark for the in-process measurements (sections 2 and 5): registered
// benchmarks run with repetitions, randomly interleaved, and come back as medians.
#pragma once

#include <map>
#include <string>

namespace bench {

// Runs every registered benchmark `repetitions` times (each repetition at least min_time
// seconds), then forgets them. Returns each one's median seconds per iteration, by name.
std::map<std::string, double> run_registered_benchmarks(int repetitions, double min_time);

}  // namespace bench
