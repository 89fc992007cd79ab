// The benchmark's output: Markdown tables of medians and ratios, one per section.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

// A target a row is held to: its ratio must be at most (or at least) `limit`.
struct Target {
    double limit = 0;
    bool at_most = true;
};

struct Row {
    std::string what;
    std::string value;                  // e.g. "27.3 us", "41 200 frames/s"
    std::optional<double> ratio;        // to the section's baseline row
    std::string baseline;               // what the ratio is to (empty: the section's first row)
    std::optional<Target> target;
};

struct Table {
    explicit Table(std::string title_, std::string ratio_header_ = "ratio")
        : title(std::move(title_)), ratio_header(std::move(ratio_header_)) {}
    std::string title;
    std::string ratio_header = "ratio";
    std::vector<Row> rows;
    std::vector<std::string> notes;  // printed under the table
};

// What separates blocks: an empty line, or " " where empty lines get lost (the VM lane's
// serial console drops them, and a Markdown table needs one after it).
inline std::string_view blank_line = "";

// "27.3 us", "4.12 ms", "812 ns": three significant digits in a fitting unit.
std::string format_seconds(double seconds);
// Whether a row's ratio meets its target (true when it has none).
bool meets(const Row& row);
void print_table(const Table& table);
// A "## heading, date" line and one sentence on the machine (CPU, cores, memory, kernel,
// load, and what one syscall costs there: the unit most of these rows are made of).
void print_machine(std::string_view heading);

}  // namespace bench
