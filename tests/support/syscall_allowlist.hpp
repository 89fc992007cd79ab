// Proving which syscalls a piece of code makes: it runs in a forked child under a seccomp
// filter that kills the child (SIGSYS) on any syscall not on an allow-list. x86_64 only,
// and not under sanitizers, whose runtimes make syscalls of their own.
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

// GCC says a sanitizer is on with __SANITIZE_*__, clang only through __has_feature.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEXSHARE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define TEXSHARE_SANITIZED 1
#endif
#endif

#if !defined(TEXSHARE_SANITIZED) && defined(__x86_64__)
#define TEXSHARE_CAN_CONFINE_SYSCALLS 1

namespace texshare::testing {

// Confines the calling (forked) process to `allowed` and exit_group; exits with status 2 if
// the filter cannot be installed.
inline void allow_only_syscalls(std::initializer_list<int> allowed) {
    std::vector<sock_filter> filter{
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    };
    std::vector<int> numbers(allowed);
    numbers.push_back(__NR_exit_group);
    for (int number : numbers) {  // each: "equal? allow : try the next"
        filter.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(number), 0, 1));
        filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    }
    filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    sock_fprog program{static_cast<unsigned short>(filter.size()), filter.data()};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        ::_exit(2);
    }
}

// Runs `work` (returning true on success) in a child confined to `allowed`; expects it to
// exit 0. `allowed_names` is for the failure message.
template <typename Work>
void expect_only_syscalls(std::initializer_list<int> allowed, const char* allowed_names, Work&& work) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        allow_only_syscalls(allowed);
        ::_exit(work() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << (WIFSIGNALED(status)
                ? fmt::format("killed by signal {} (SIGSYS: a syscall other than {})", WTERMSIG(status), allowed_names)
                : fmt::format("exit {}", WEXITSTATUS(status)));
}

}  // namespace texshare::testing

#endif
