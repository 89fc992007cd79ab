// texshare-info's default output: the Report as text for a person, verdicts last.
//
// Use it for the terminal and for logs. Sections: DRM nodes (each with what GBM allocates,
// its EGL GBM platform and the round trips), the surfaceless EGL platform, kernel
// features, then one verdict line per sharing path and the best path. A machine without
// DRM gets one plain sentence saying so instead of an empty section.
#pragma once

#include <string>

#include "report.hpp"

namespace texshare::info {

std::string render_text(const Report& report);

}  // namespace texshare::info
