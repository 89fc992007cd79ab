// VM-lane support: which guest a test runs in, for the tests that assert the facts in which
// the two guests differ (docs/vm-lane-facts.md): "bookworm" (Debian 12's 6.1 kernel, Mesa
// 22.3: no /dev/udmabuf, no DMA-BUF heaps) or "backports" (6.12, Mesa 25: both, and an EGL
// that refuses foreign DMA-BUFs). The lane sets TEXSHARE_VM_STACK; without it (a guest
// booted by hand) the kernel release decides, and anything else is a failure, not a guess.
#pragma once

#include <sys/utsname.h>

#include <cstdlib>
#include <string>

namespace texshare::testing {

inline std::string vm_stack() {
    if (const char* stack = std::getenv("TEXSHARE_VM_STACK"); stack != nullptr && *stack != '\0')
        return stack;
    utsname names{};
    if (::uname(&names) != 0) return "unknown";
    const std::string release = names.release;
    if (release.starts_with("6.1.")) return "bookworm";
    if (release.starts_with("6.12.")) return "backports";
    return "unknown (kernel " + release + ", TEXSHARE_VM_STACK unset)";
}

}  // namespace texshare::testing
