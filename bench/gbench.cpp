#include "gbench.hpp"

#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "harness.hpp"

namespace bench {
namespace {

class MedianCollector final : public benchmark::BenchmarkReporter {
public:
    bool ReportContext(const Context&) override { return true; }
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs) {
            if (run.error_occurred) fail(fmt::format("{}: {}", run.benchmark_name(), run.error_message));
            if (run.run_type != Run::RT_Aggregate || run.aggregate_name != "median") continue;
            medians[run.run_name.function_name] =
                run.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(run.time_unit);
        }
    }
    std::map<std::string, double> medians;
};

}  // namespace

std::map<std::string, double> run_registered_benchmarks(int repetitions, double min_time) {
    std::vector<std::string> flags{"texshare_bench", fmt::format("--benchmark_repetitions={}", repetitions),
                                   fmt::format("--benchmark_min_time={}", min_time),
                                   "--benchmark_enable_random_interleaving=true",
                                   "--benchmark_report_aggregates_only=true"};
    std::vector<char*> argv;
    for (std::string& flag : flags) argv.push_back(flag.data());
    argv.push_back(nullptr);
    int argc = static_cast<int>(flags.size());
    benchmark::Initialize(&argc, argv.data());
    MedianCollector collector;
    benchmark::RunSpecifiedBenchmarks(&collector);
    benchmark::ClearRegisteredBenchmarks();
    return std::move(collector.medians);
}

}  // namespace bench
