// Which guest of the VM lane a test runs in, for the tests whose facts differ between them.
//
// scripts/vm/prepare.sh writes TEXSHARE_VM_STACK into each guest's environment: "bookworm"
// (Debian 12's 6.1 kernel, Mesa 22.3) or "backports" (6.12, Mesa 25). A test that asserts a
// stack's fact asks here; outside the guest, or with any other value, the test fails rather
// than guessing (docs/vm-lane-facts.md lists what differs).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace texshare::testing {

enum class VmStack { bookworm, backports, unknown };

inline VmStack vm_stack() {
    const char* value = std::getenv("TEXSHARE_VM_STACK");
    const std::string_view name = value != nullptr ? value : "";
    if (name == "bookworm") return VmStack::bookworm;
    if (name == "backports") return VmStack::backports;
    ADD_FAILURE() << "TEXSHARE_VM_STACK is '" << name << "': run this test in a VM lane guest (scripts/vm/)";
    return VmStack::unknown;
}

// Mesa 25 and kernel 6.12 (bookworm-backports).
inline bool on_backports() { return vm_stack() == VmStack::backports; }

}  // namespace texshare::testing
