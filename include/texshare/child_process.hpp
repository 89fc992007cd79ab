// ChildProcess: spawning a renderer child that inherits its channel ends and nothing else,
// watching it through a pidfd, and checking who is on the other end of a named socket.
//
// Use spawn() in a host that starts its renderers itself: the channel ends land on fds 3,
// 4, ... in the child (posix_spawn file actions), every other fd of the host is closed
// there, and the host keeps no copy of the child's ends. The child finds its ends with
// take_inherited_fd(). For a renderer that connects to a named socket instead, check_peer()
// compares SO_PEERCRED with the process the host expects (a socketpair's credentials name
// its creator, so it is only meaningful for accepted connections).
//
// Peer death: the channel alone tells the host only that every copy of the child's end is
// closed. A child that forked (a helper, a crash reporter, a daemon it started) or that
// passed its end on keeps the channel open after it exits, for as long as the other holder
// likes. The child's pidfd tells the truth about the child itself: it becomes readable when
// the child exits, whoever holds its fds, and it names that process, never a later one that
// got the same pid. So a host waits on both (wait_for_event(), or its own poll/epoll on
// pidfd() beside the channel) and treats the child's exit as the peer's death at once.
//
// A ChildProcess still running when destroyed is killed (SIGKILL) and reaped: no orphan
// renderers, no zombies. Its grandchildren are not its business: a host that must be rid of
// them runs renderers in their own cgroup or PID namespace.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "texshare/detail/poll_wait.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"
#include "texshare/unix_socket.hpp"

extern char** environ;

namespace texshare {

// Where the first inherited fd lands in a spawned child (the next ones follow).
inline constexpr int first_inherited_fd = 3;

struct ExitStatus {
    bool exited = false;  // false: killed by a signal
    int code = 0;         // exit code, or the signal number
    bool ok() const noexcept { return exited && code == 0; }
    std::string describe() const {
        return exited ? fmt::format("exit {}", code) : fmt::format("killed by signal {} ({})", code, ::strsignal(code));
    }
};

struct SpawnOptions {
    // argv[0] the child sees (a name for ps and its own messages); empty: the program's path.
    std::string argv0;
};

class ChildProcess {
public:
    ChildProcess() = default;
    ChildProcess(ChildProcess&& other) noexcept
        : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)) {}
    ChildProcess& operator=(ChildProcess&& other) noexcept {
        if (this != &other) {
            kill_and_reap();
            pid_ = std::exchange(other.pid_, -1);
            pidfd_ = std::move(other.pidfd_);
        }
        return *this;
    }
    ~ChildProcess() { kill_and_reap(); }

    // Runs `program` (a path, not searched in PATH) with `args` as its arguments (argv[1]...)
    // and argv[0] = options.argv0, or the path when that is empty (what a shell passes);
    // inherited[i] lands on fd first_inherited_fd + i, with the host's stdio, default signal
    // handling and an empty signal mask. Takes the inherited fds: the host keeps no copy,
    // on success and on error alike once the spawn was attempted.
    // Errors: Errc::invalid_argument for an empty inherited fd; Errc::system (with errno)
    // when the fds cannot be moved or posix_spawn fails (ENOENT for a missing program);
    // Errc::unsupported (ENOSYS, before Linux 5.3) or Errc::system when pidfd_open fails:
    // the child is killed and reaped then, since its exit could not be watched.
    static Result<ChildProcess> spawn(const std::string& program, const std::vector<std::string>& args = {},
                                      std::span<UniqueFd> inherited = {}, const SpawnOptions& options = {}) {
        const int first_free = first_inherited_fd + static_cast<int>(inherited.size());
        // dup2(a, 3) would clobber a source that is itself 3 or 4..., and dup2(fd, fd) keeps
        // CLOEXEC: so every source moves above every target first (still CLOEXEC here).
        std::vector<UniqueFd> sources;
        for (UniqueFd& fd : inherited) {
            if (!fd) return make_error(Errc::invalid_argument, "spawn {}: inherited fd {} is empty", program, sources.size());
            UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, first_free + 8));
            if (!moved) return make_sys_error(errno, "spawn {}: fcntl(F_DUPFD_CLOEXEC) of fd {}", program, fd.get());
            sources.push_back(std::move(moved));
        }
        posix_spawn_file_actions_t actions;
        if (int error = ::posix_spawn_file_actions_init(&actions)) {
            return make_sys_error(error, "posix_spawn_file_actions_init");
        }
        posix_spawnattr_t attributes;
        if (int error = ::posix_spawnattr_init(&attributes)) {
            ::posix_spawn_file_actions_destroy(&actions);
            return make_sys_error(error, "posix_spawnattr_init");
        }
        int error = 0;
        for (std::size_t i = 0; i < sources.size() && error == 0; ++i) {
            error = ::posix_spawn_file_actions_adddup2(&actions, sources[i].get(), first_inherited_fd + static_cast<int>(i));
        }
        // Our fds are CLOEXEC, but the process that started the host may have leaked some
        // to it; they are not the renderer's business.
        if (error == 0) error = ::posix_spawn_file_actions_addclosefrom_np(&actions, first_free);
        sigset_t all, none;
        sigfillset(&all);
        sigemptyset(&none);
        if (error == 0) error = ::posix_spawnattr_setsigdefault(&attributes, &all);
        if (error == 0) error = ::posix_spawnattr_setsigmask(&attributes, &none);
        if (error == 0) error = ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        std::vector<std::string> argument_copies;
        argument_copies.reserve(args.size() + 1);
        argument_copies.push_back(options.argv0.empty() ? program : options.argv0);
        argument_copies.insert(argument_copies.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (std::string& argument : argument_copies) argv.push_back(argument.data());
        argv.push_back(nullptr);
        pid_t pid = -1;
        if (error == 0) error = ::posix_spawn(&pid, program.c_str(), &actions, &attributes, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&actions);
        ::posix_spawnattr_destroy(&attributes);
        if (error != 0) return make_sys_error(error, "posix_spawn of {}", program);
        for (UniqueFd& fd : inherited) fd.reset();
        // Safe from pid reuse: the child cannot be reaped before this process waits for it.
        // pidfds are close-on-exec from birth (pidfd_open(2)).
        const long pidfd = ::syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
            // Without it the host could learn of the child's death only from the channel,
            // which a grandchild can hold open: refuse rather than promise that. The pid is
            // still ours (not reaped), so kill() cannot hit another process.
            const int err = errno;
            (void)::kill(pid, SIGKILL);
            while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
            }
            return make_sys_error_as(err == ENOSYS ? Errc::unsupported : Errc::system, err,
                                     "pidfd_open of child {} (Linux 5.3+; the host watches its renderer's exit "
                                     "through it); the child was killed",
                                     pid);
        }
        ChildProcess child;
        child.pid_ = pid;
        child.pidfd_.reset(static_cast<int>(pidfd));
        return child;
    }

    pid_t pid() const noexcept { return pid_; }
    // Not yet reaped (wait()): true also for a child that has exited but was not waited for.
    bool running() const noexcept { return pid_ > 0; }
    // Readable (POLLIN) once the child has exited, whoever still holds its channel ends, and
    // from then on until it is reaped (pidfd_open(2)). Put it beside the child's channel in
    // the host's poll/epoll set; after wait() reaps the child it is closed (take it out of
    // an epoll set first). Empty for a ChildProcess without a child.
    BorrowedFd pidfd() const noexcept { return pidfd_.borrow(); }

    // Whether the child has exited (or was reaped): one poll of the pidfd, no wait.
    bool has_exited() const noexcept {
        if (pid_ <= 0) return true;
        pollfd entry{pidfd_.get(), POLLIN, 0};
        int ready = 0;
        do {
            ready = ::poll(&entry, 1, 0);
        } while (ready < 0 && errno == EINTR);
        return ready > 0;
    }

    // What wait_for_event() saw; both may be true.
    struct Event {
        bool channel = false;  // the channel is readable: a message, or every copy of the child's end closed
        bool exited = false;   // the child exited: its peer is dead, whether or not the channel says so yet
    };

    // The host's wait on a renderer: until `channel` is readable or the child exits, at most
    // `timeout` (> 0 waits that long, 0 only looks, < 0 is Errc::invalid_argument; a signal
    // neither ends the wait early nor stretches it). On `exited`, read what the child sent
    // before (the kernel queued it before the pidfd turned readable: dispatch() once), then
    // treat the peer as dead (FrameReceiver/FrameSender::close()) even if the channel is
    // still open. Errc::timed_out when neither happened in time (a stuck renderer);
    // Errc::invalid_argument without a child; Errc::system if poll fails.
    Result<Event> wait_for_event(BorrowedFd channel, std::chrono::milliseconds timeout) const {
        if (pid_ <= 0) return make_error(Errc::invalid_argument, "wait_for_event: no child (never spawned, or reaped)");
        if (timeout.count() < 0) {
            return make_error(Errc::invalid_argument, "wait_for_event: timeout {} ms is negative", timeout.count());
        }
        const auto deadline = detail::deadline_after(timeout);
        while (true) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - detail::Clock::now());
            const int timeout_ms = static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(left.count(), 0, 1 << 30));
            std::array<pollfd, 2> entries{{{channel.get(), POLLIN, 0}, {pidfd_.get(), POLLIN, 0}}};
            const int ready = ::poll(entries.data(), entries.size(), timeout_ms);
            if (ready < 0 && errno == EINTR) continue;
            if (ready < 0) return make_sys_error(errno, "poll of channel fd {} and child {}'s pidfd", channel.get(), pid_);
            if ((entries[0].revents & POLLNVAL) != 0) {
                return make_error(Errc::invalid_argument, "wait_for_event: channel fd {} is not open", channel.get());
            }
            if (ready > 0) return Event{entries[0].revents != 0, entries[1].revents != 0};
            if (timeout_ms == 0) {
                return make_error(Errc::timed_out, "child {} neither wrote to fd {} nor exited within {} ms", pid_,
                                  channel.get(), timeout.count());
            }
        }
    }

    Result<void> signal(int number) const {
        if (pid_ <= 0) return make_error(Errc::invalid_argument, "signal {}: no child", number);
        // Through the pidfd, never kill(pid): if something else in this process reaped the
        // child (a SIGCHLD handler's waitpid(-1)) and its pid went to a new process, the
        // pidfd still names the old one (ESRCH) and the new one is left alone.
        if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), number, nullptr, 0) != 0) {
            return make_sys_error(errno, "signal {} to child {}", number, pid_);
        }
        return {};
    }

    // Reaps the child and says how it ended; Errc::timed_out if it is still running after
    // `timeout` (milliseconds; 2^30 ms or more, e.g. milliseconds::max(), waits for as long as it
    // takes). Errc::system with ECHILD if something else in this process
    // reaped it first; the ChildProcess then holds no child.
    Result<ExitStatus> wait(std::chrono::milliseconds timeout) {
        if (pid_ <= 0) return make_error(Errc::invalid_argument, "wait: no child");
        const auto deadline = detail::deadline_after(timeout);
        while (true) {
            auto status = reap(WNOHANG);
            if (!status || status->has_value()) {
                if (!status) return std::move(status).error();
                return **status;
            }
            if (detail::Clock::now() >= deadline) {
                return make_error(Errc::timed_out, "child {} still running after {} ms", pid_, timeout.count());
            }
            if (auto ready = detail::wait_readable(pidfd_.borrow(), deadline); !ready) return std::move(ready).error();
        }
    }

private:
    // Waits on the pidfd (waitid P_PIDFD, Linux 5.4), not on the pid: if the child was
    // reaped elsewhere and its pid went to another child of this process, waitpid(pid)
    // would reap (or wait for) that one.
    Result<std::optional<ExitStatus>> reap(int flags) {
        siginfo_t info{};
        int rc = 0;
        do {
            rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | flags);
        } while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            const int err = errno;
            const pid_t pid = pid_;
            if (err == ECHILD) forget();  // gone for good: nothing left to signal or wait for
            return make_sys_error(err, "waitid of child {}{}", pid,
                                  err == ECHILD ? " (reaped elsewhere: a waitpid(-1) or SIGCHLD set to SIG_IGN in "
                                                  "this process; its exit status is lost)"
                                                : "");
        }
        if (info.si_pid == 0) return std::optional<ExitStatus>();  // WNOHANG, still running
        forget();
        if (info.si_code == CLD_EXITED) return std::optional(ExitStatus{true, info.si_status});
        return std::optional(ExitStatus{false, info.si_status});  // CLD_KILLED or CLD_DUMPED
    }

    void forget() noexcept {
        pid_ = -1;
        pidfd_.reset();
    }

    void kill_and_reap() noexcept {
        if (pid_ <= 0) return;
        (void)signal(SIGKILL);
        (void)reap(0);
    }

    pid_t pid_ = -1;
    UniqueFd pidfd_;
};

// In the child: takes the fd its host placed at `fd` (first_inherited_fd + i), checks that it
// is a connected AF_UNIX socket, and marks it close-on-exec so the child's own children do
// not inherit it.
inline Result<UniqueFd> take_inherited_fd(int fd) {
    int type = 0;
    socklen_t length = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0) {
        return make_sys_error(errno, "inherited fd {} is not a socket (was this process spawned by a texshare host?)", fd);
    }
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return make_sys_error(errno, "F_SETFD on inherited fd {}", fd);
    return UniqueFd(fd);
}

// For an accepted connection on a named socket: the peer must be process `pid` run by `uid`.
inline Result<void> check_peer(BorrowedFd socket, pid_t pid, uid_t uid) {
    auto peer = peer_credentials(socket);
    if (!peer) return std::move(peer).error();
    if (peer->pid != pid || peer->uid != uid) {
        return make_error(Errc::rejected, "peer on fd {} is pid {} uid {}, expected pid {} uid {}", socket.get(),
                          peer->pid, peer->uid, pid, uid);
    }
    return {};
}

}  // namespace texshare
