// Test support for attacks that need an ordinary user: runs a body in a forked child under
// an unprivileged uid. Root (this machine, CI) skips the kernel's per-user checks
// (CAP_SYS_RESOURCE, CAP_SYS_ADMIN) and every file permission (CAP_DAC_OVERRIDE,
// CAP_FOWNER), so an attack on them proves nothing as root. setresuid() from root to
// non-zero uids drops every capability (capabilities(7)), and a uid needs no passwd entry.
#pragma once

#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>

#include <gtest/gtest.h>

namespace texshare::hostile {

inline constexpr uid_t nobody_uid = 65534;  // the other user: a squatter, an attacker
inline constexpr uid_t victim_uid = 64000;  // the host's own user in these tests

// Becomes `uid` (gid the same number, no supplementary groups) for good. Only in a child.
inline bool become(uid_t uid) {
    if (::geteuid() == uid) return true;
    return ::setgroups(0, nullptr) == 0 && ::setresgid(uid, uid, uid) == 0 && ::setresuid(uid, uid, uid) == 0 &&
           ::geteuid() == uid;
}

// Whether this process can switch users (root); the tests that need two users skip otherwise.
inline bool can_switch_users() { return ::geteuid() == 0; }

// Runs `body` in a forked child as `uid` (as root) or as this process's own uid (already an
// ordinary user). The child's gtest failures fail the test (its exit status); a child still
// running after `limit_s` seconds dies of SIGALRM, which fails the test as a hang.
inline void run_as(uid_t uid, const std::function<void()>& body, unsigned limit_s = 20) {
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0) << std::strerror(errno);
    if (pid == 0) {
        ::alarm(limit_s);
        if (can_switch_users() && !become(uid)) {
            std::fprintf(stderr, "cannot become uid %u: %s\n", uid, std::strerror(errno));
            ::_exit(2);
        }
        body();
        std::fflush(stdout);
        std::fflush(stderr);
        ::_exit(::testing::Test::HasFailure() ? 1 : 0);
    }
    int status = 0;
    pid_t waited = -1;
    do {
        waited = ::waitpid(pid, &status, 0);
    } while (waited < 0 && errno == EINTR);
    ASSERT_EQ(waited, pid);
    if (WIFSIGNALED(status)) {
        ADD_FAILURE() << "the child as uid " << uid << " died of signal " << WTERMSIG(status)
                      << (WTERMSIG(status) == SIGALRM ? " (SIGALRM: it hung)" : "");
    } else {
        EXPECT_EQ(WEXITSTATUS(status), 0) << "the child as uid " << uid << " failed (see above)";
    }
}

}  // namespace texshare::hostile
