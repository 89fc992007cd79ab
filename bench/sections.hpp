// The five sections of the benchmark, each measured in one go and returned as a table.
// `scale` multiplies iteration counts and durations (1 for the real run, less to try it out).
#pragma once

#include "report.hpp"

namespace bench {

Table round_trip_section(double scale);   // 1: texshare against raw sockets and libwayland
Table first_share_section(double scale);  // 2: sharing an image once, validation included
Table zero_copy_section(double scale);    // 3: a 4K frame by id against copying its pixels
Table throughput_section(double scale);   // 4: one pipelined channel, and 64 renderer children

// Section 4's two halves (throughput.cpp, scale.cpp).
void measure_one_channel(Table& table, double scale);
void measure_many_children(Table& table, double scale);

}  // namespace bench
