// Test support: run a command line through the shell and keep its exit status and stdout,
// for tests that check a tool's real output (stderr passes through to the test's log).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace texshare::testing {

struct CommandResult {
    int status = -1;  // the exit status; -1 when it did not exit normally
    std::string output;
};

inline CommandResult run_command(const std::string& command_line) {
    CommandResult result;
    FILE* pipe = ::popen(command_line.c_str(), "r");  // close-on-exec is popen's own business
    if (pipe == nullptr) return result;
    std::array<char, 4096> buffer{};
    std::size_t got = 0;
    while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
        result.output.append(buffer.data(), got);
    const int wait_status = ::pclose(pipe);
    if (wait_status != -1 && WIFEXITED(wait_status)) result.status = WEXITSTATUS(wait_status);
    return result;
}

}  // namespace texshare::testing
