// texshare_bench: measures texshare against the limits and the alternatives, in one run on
// one machine, and prints Markdown tables of medians and ratios (scripts/bench.sh; the
// README's "Benchmarks" section explains how to read them). Not a test: nothing here
// asserts a time.
//
//   texshare_bench [--sections=1234] [--scale=F]
//   texshare_bench --sections=guest [--scale=F] [--require-guest]   (the 6.12 guest: scripts/bench.sh --guest)
//   texshare_bench --cost=raw|raw_fd|texshare|texshare_fd|raw_paced|paced|guest_copy|guest_udmabuf --iterations=N
//   texshare_bench --child=MODE ARGS...   (how it runs its own other processes)
//
// --require-guest makes a skipped guest section (no /dev/udmabuf, no Vulkan DMA-BUF import)
// a failure: the VM lane's smoke run in the 6.12 guest, where both exist.
// --scale multiplies iteration counts and durations (default 1; 0.1 to try it quickly).
// --cost runs one round trip N times, pinned, and nothing else: for counting instructions
// (bench/count_instructions.sh runs it under valgrind --tool=callgrind --trace-children=yes
// at two N and divides the difference, so setup cancels out). raw_paced and paced are
// section 1's paced-frame rows: N frames of begin_frame -> present -> presented + release.
#include <cstdlib>
#include <string>
#include <string_view>

#include "children.hpp"
#include "round_trip.hpp"
#include "sections.hpp"

namespace {

using namespace bench;

int run_child(std::string_view mode, const ChildArgs& args) {
    if (mode == "raw") return raw_round_trip_child(args);
    if (mode == "texshare") return texshare_round_trip_child(args);
    if (mode == "raw_paced") return raw_paced_round_trip_child(args);
    if (mode == "paced") return paced_frame_round_trip_child(args);
    if (mode == "wayland") return wayland_server_child(args);
    if (mode == "copy") return copy_round_trip_child(args);
    if (mode == "consumer") return consumer_child(args);
    if (mode == "renderer") return renderer_child(args);
    fail(fmt::format("unknown child mode {}", mode));
}

}  // namespace

int main(int argc, char** argv) {
    std::string sections = "1234";
    std::string cost;
    std::size_t iterations = 1000;
    double scale = 1;
    bool require_guest = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg(argv[i]);
        if (arg.rfind("--child=", 0) == 0) return run_child(arg.substr(8), ChildArgs(argv + i + 1, argv + argc));
        if (arg.rfind("--sections=", 0) == 0) sections = arg.substr(11);
        else if (arg.rfind("--scale=", 0) == 0) scale = std::stod(std::string(arg.substr(8)));
        else if (arg == "--require-guest") require_guest = true;
        else if (arg.rfind("--cost=", 0) == 0) cost = arg.substr(7);
        else if (arg.rfind("--iterations=", 0) == 0) iterations = std::stoul(std::string(arg.substr(13)));
        else fail(fmt::format("unknown argument {} (see the top of bench/main.cpp)", arg));
    }
    if (!cost.empty() && guest_cost(cost, iterations)) return 0;
    if (!cost.empty()) {
        PinnedToOneCpu pin;
        auto round_trip = cost == "raw"           ? make_raw_round_trip(false)
                          : cost == "raw_fd"      ? make_raw_round_trip(true)
                          : cost == "texshare"    ? make_texshare_round_trip(false, 64, 64)
                          : cost == "texshare_fd" ? make_texshare_round_trip(true, 64, 64)
                          : cost == "raw_paced"   ? make_raw_paced_round_trip()
                          : cost == "paced"       ? make_paced_frame_round_trip()
                                                  : nullptr;
        if (!round_trip) fail(fmt::format("unknown --cost={}", cost));
        round_trip->run(iterations);
        return 0;
    }
    // The VM lane's serial console drops empty lines (report.hpp).
    if (std::getenv("TEXSHARE_VM_GUEST") != nullptr) blank_line = " ";
    print_machine("texshare benchmark");
    if (sections.find('1') != std::string::npos) {
        print_table(round_trip_section(scale, true));
        print_table(round_trip_section(scale, false));
    }
    if (sections.find('2') != std::string::npos) print_table(first_share_section(scale));
    if (sections.find('3') != std::string::npos) print_table(zero_copy_section(scale));
    if (sections.find('4') != std::string::npos) print_table(throughput_section(scale));
    if (sections.find("guest") != std::string::npos) guest_section(scale, require_guest);
    return 0;
}
