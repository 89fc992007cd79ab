// The sections of the benchmark, each measured in one go and returned as a table.
// `scale` multiplies iteration counts and durations (1 for the real run, less to try it out).
#pragma once

#include <sched.h>

#include <cstddef>
#include <string_view>

#include "report.hpp"

namespace bench {

// 1: texshare against raw sockets and libwayland; pinned: this process and its children on one CPU.
Table round_trip_section(double scale, bool pinned);
Table first_share_section(double scale);  // 2: sharing an image once, validation included
Table zero_copy_section(double scale);    // 3: a 4K frame by id against copying its pixels
Table throughput_section(double scale);   // 4: one pipelined channel, and 64 renderer children
// guest: a CPU-rendered frame to a Vulkan GPU, staging copy against udmabuf import
// (guest_section.cpp). Prints its table, or why it skipped (no /dev/udmabuf, no Vulkan
// device with VK_EXT_external_memory_dma_buf, built without Vulkan); with `required` a
// skip fails the run instead.
void guest_section(double scale, bool required = false);
// One of the guest section's rows alone, `frames` times (--cost=guest_copy|guest_udmabuf, for
// bench/count_instructions.sh); false for another name.
bool guest_cost(std::string_view row, std::size_t frames);

// This process (and the children it spawns meanwhile) on the first CPU it may use, for the
// scope; the affinity it had comes back afterwards.
class PinnedToOneCpu {
public:
    PinnedToOneCpu();
    ~PinnedToOneCpu();
    PinnedToOneCpu(const PinnedToOneCpu&) = delete;
    PinnedToOneCpu& operator=(const PinnedToOneCpu&) = delete;
    int cpu() const noexcept { return cpu_; }

private:
    cpu_set_t previous_{};
    int cpu_ = 0;
};

// Section 4's two halves (throughput.cpp, scale.cpp).
void measure_one_channel(Table& table, double scale);
void measure_many_children(Table& table, double scale);

}  // namespace bench
