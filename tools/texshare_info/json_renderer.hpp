// texshare-info --json: the Report and its verdicts as one JSON document, for machines.
//
// Use it where a program or CI job reads texshare-info's findings. Field names are stable;
// fourccs and modifiers come both as names and as hex strings (a 64-bit modifier does not
// fit a JSON number that JavaScript reads exactly). An empty "why" is null, not "".
#pragma once

#include <string>

#include "report.hpp"

namespace texshare::info {

std::string render_json(const Report& report);

}  // namespace texshare::info
