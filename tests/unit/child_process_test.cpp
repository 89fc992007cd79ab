#include "texshare/child_process.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "support/fd_count.hpp"
#include "texshare/aux_channel.hpp"

namespace texshare {
namespace {

using namespace std::chrono_literals;

class ChildProcessTest : public testing::FdLeakTest {};

struct Pipe {
    UniqueFd read_end, write_end;
    explicit Pipe(int flags = O_CLOEXEC) {
        int ends[2] = {-1, -1};
        EXPECT_EQ(::pipe2(ends, flags), 0);
        read_end.reset(ends[0]);
        write_end.reset(ends[1]);
    }
};

std::string read_all(BorrowedFd fd) {
    std::string text;
    char buffer[256];
    ssize_t n = 0;
    while ((n = ::read(fd.get(), buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
    return text;
}

ChildProcess spawn_shell(const std::string& script, std::span<UniqueFd> inherited = {}) {
    auto child = ChildProcess::spawn("/bin/sh", {"-c", script}, inherited);
    EXPECT_TRUE(child) << child.error().message;
    return child ? std::move(*child) : ChildProcess();
}

TEST_F(ChildProcessTest, ChildGetsItsFdsOn3AndUpAndNothingElse) {
    Pipe report;
    Pipe second;
    Pipe leaked(0);  // no CLOEXEC: what a careless host (or its parent) leaves open
    const std::string script = fmt::format(
        "for n in 3 4 5 {} {}; do if [ -e /proc/$$/fd/$n ]; then echo open $n; else echo closed $n; fi; done >&3",
        leaked.read_end.get(), leaked.write_end.get());
    std::vector<UniqueFd> inherited;
    inherited.push_back(std::move(report.write_end));
    inherited.push_back(std::move(second.read_end));
    ChildProcess child = spawn_shell(script, inherited);
    EXPECT_FALSE(inherited[0].valid()) << "spawn takes the fds: the host keeps no copy";
    // EOF comes only because no copy of the write end is left in this process.
    const std::string text = read_all(report.read_end.borrow());
    EXPECT_EQ(text, fmt::format("open 3\nopen 4\nclosed 5\nclosed {}\nclosed {}\n", leaked.read_end.get(),
                                leaked.write_end.get()));
    auto status = child.wait(5s);
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_TRUE(status->ok()) << status->describe();
    EXPECT_FALSE(child.running());
}

TEST_F(ChildProcessTest, PidfdBecomesReadableWhenTheChildExits) {
    ChildProcess child = spawn_shell("exit 7");
    ASSERT_TRUE(child.pidfd().valid()) << "pidfd_open is available on every kernel texshare supports here";
    auto readable = detail::wait_readable(child.pidfd(), detail::Clock::now() + 5s);
    ASSERT_TRUE(readable && *readable);
    auto status = child.wait(1s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->exited);
    EXPECT_EQ(status->code, 7);
    EXPECT_EQ(status->describe(), "exit 7");
}

TEST_F(ChildProcessTest, WaitTimesOutOnARunningChildAndSignalEndsIt) {
    ChildProcess child = spawn_shell("exec sleep 30");
    auto early = child.wait(50ms);
    ASSERT_FALSE(early);
    EXPECT_EQ(early.error().code, Errc::timed_out);
    ASSERT_TRUE(child.signal(SIGKILL));
    auto status = child.wait(5s);
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_FALSE(status->exited);
    EXPECT_EQ(status->code, SIGKILL);
}

TEST_F(ChildProcessTest, DestroyingARunningChildKillsAndReapsIt) {
    pid_t pid = -1;
    {
        ChildProcess child = spawn_shell("exec sleep 30");
        pid = child.pid();
        ASSERT_GT(pid, 0);
    }
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1) << "already reaped: no zombie left";
    EXPECT_EQ(errno, ECHILD);
}

TEST_F(ChildProcessTest, HasExitedFollowsTheChildNotItsReaping) {
    ChildProcess child = spawn_shell("exec sleep 30");
    EXPECT_FALSE(child.has_exited());
    ASSERT_TRUE(child.signal(SIGKILL));
    auto readable = detail::wait_readable(child.pidfd(), detail::Clock::now() + 5s);
    ASSERT_TRUE(readable && *readable);
    EXPECT_TRUE(child.has_exited()) << "exited, not yet reaped";
    EXPECT_TRUE(child.running());
    ASSERT_TRUE(child.wait(1s));
    EXPECT_TRUE(child.has_exited());
    EXPECT_FALSE(child.pidfd().valid()) << "closed once reaped";
}

TEST_F(ChildProcessTest, WaitForEventSeesTheExitWhileAGrandchildHoldsTheChannel) {
    auto channel = AuxChannel<int, 0>::create_pair();
    ASSERT_TRUE(channel);
    Pipe hold;  // the grandchild keeps the channel end until this pipe's write end closes
    std::vector<UniqueFd> inherited;
    inherited.push_back(channel->second.take_socket());
    inherited.push_back(std::move(hold.read_end));
    ChildProcess child = spawn_shell("cat <&4 >/dev/null & exit 0", inherited);
    auto event = child.wait_for_event(channel->first.native_handle(), 5s);
    ASSERT_TRUE(event) << event.error().message;
    EXPECT_TRUE(event->exited);
    EXPECT_FALSE(event->channel) << "the grandchild still holds the channel end";
    auto status = child.wait(1s);
    ASSERT_TRUE(status && status->ok());
    EXPECT_FALSE(child.wait_for_event(channel->first.native_handle(), 0ms)) << "no child after the reap";
    hold.write_end.reset();  // the grandchild lets go: now the channel says so too
    ASSERT_TRUE(detail::wait_readable(channel->first.native_handle(), detail::Clock::now() + 5s));
}

TEST_F(ChildProcessTest, WaitForEventKeepsTheTimeoutRule) {
    auto channel = AuxChannel<int, 0>::create_pair();
    ASSERT_TRUE(channel);
    ChildProcess child = spawn_shell("exec sleep 30");
    auto looked = child.wait_for_event(channel->first.native_handle(), 0ms);
    ASSERT_FALSE(looked);
    EXPECT_EQ(looked.error().code, Errc::timed_out);
    const auto start = detail::Clock::now();
    auto waited = child.wait_for_event(channel->first.native_handle(), 50ms);
    ASSERT_FALSE(waited);
    EXPECT_EQ(waited.error().code, Errc::timed_out);
    EXPECT_GE(detail::Clock::now() - start, 50ms);
    EXPECT_EQ(child.wait_for_event(channel->first.native_handle(), -1ms).error().code, Errc::invalid_argument);
    ASSERT_TRUE(channel->second.send(1));
    auto message = child.wait_for_event(channel->first.native_handle(), 5s);
    ASSERT_TRUE(message);
    EXPECT_TRUE(message->channel);
    EXPECT_FALSE(message->exited);
}

// milliseconds::max() is "wait for as long as it takes", not a deadline that overflowed
// into the past (which returned timed_out at once).
TEST_F(ChildProcessTest, TheLongestTimeoutWaitsForTheEvent) {
    auto channel = AuxChannel<int, 0>::create_pair();
    ASSERT_TRUE(channel);
    ChildProcess child = spawn_shell("sleep 0.2; exit 0");
    auto event = child.wait_for_event(channel->first.native_handle(), std::chrono::milliseconds::max());
    ASSERT_TRUE(event) << event.error().message;
    EXPECT_TRUE(event->exited);
    auto status = child.wait(std::chrono::milliseconds::max());
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_TRUE(status->ok());
}

TEST_F(ChildProcessTest, AChildReapedElsewhereIsReportedAndForgotten) {
    ChildProcess child = spawn_shell("exit 3");
    int status = 0;
    ASSERT_EQ(::waitpid(child.pid(), &status, 0), child.pid());  // a host's SIGCHLD handler, say
    EXPECT_TRUE(child.has_exited());
    auto lost = child.wait(1s);
    ASSERT_FALSE(lost);
    EXPECT_EQ(lost.error().sys_errno, ECHILD);
    EXPECT_NE(lost.error().message.find("reaped elsewhere"), std::string::npos) << lost.error().message;
    EXPECT_FALSE(child.running());
    EXPECT_EQ(child.signal(SIGKILL).error().code, Errc::invalid_argument);
}

// The child's stdout goes to a pipe for the length of one spawn (the child inherits the
// host's stdio), so what it prints can be compared.
std::string stdout_of(const std::string& program, const std::vector<std::string>& args, SpawnOptions options = {}) {
    Pipe out;
    UniqueFd saved(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 10));
    EXPECT_TRUE(saved);
    std::fflush(stdout);
    EXPECT_EQ(::dup2(out.write_end.get(), STDOUT_FILENO), STDOUT_FILENO);
    auto child = ChildProcess::spawn(program, args, {}, options);
    EXPECT_EQ(::dup2(saved.get(), STDOUT_FILENO), STDOUT_FILENO);
    out.write_end.reset();
    EXPECT_TRUE(child) << child.error().message;
    if (!child) return {};
    const std::string text = read_all(out.read_end.borrow());
    EXPECT_TRUE(child->wait(10s));
    return text;
}

TEST_F(ChildProcessTest, ArgumentsAreTheArgumentsAfterArgvZero) {
    // The case a new user hit: the first argument was taken as argv[0] and never seen.
    EXPECT_EQ(stdout_of("/bin/echo", {"--frames=60"}), "--frames=60\n");
    EXPECT_EQ(stdout_of("/bin/echo", {"a", "b"}), "a b\n");
    EXPECT_EQ(stdout_of("/bin/echo", {}), "\n");
}

TEST_F(ChildProcessTest, ArgvZeroIsTheProgramPathUnlessSet) {
    // /proc/<pid>/cmdline is the argv the child got, NUL-separated.
    const std::string script = "cat /proc/$$/cmdline";
    EXPECT_EQ(stdout_of("/bin/sh", {"-c", script}), std::string("/bin/sh\0-c\0", 11) + script + '\0');
    EXPECT_EQ(stdout_of("/bin/sh", {"-c", script}, {.argv0 = "my-renderer"}),
              std::string("my-renderer\0-c\0", 15) + script + '\0');
}

TEST_F(ChildProcessTest, SpawnOfAMissingProgramIsAnErrorAndKeepsNoFd) {
    Pipe pipe;
    std::vector<UniqueFd> inherited;
    inherited.push_back(std::move(pipe.write_end));
    auto child = ChildProcess::spawn("/nonexistent/renderer", {}, inherited);
    ASSERT_FALSE(child);
    EXPECT_NE(child.error().message.find("/nonexistent/renderer"), std::string::npos) << child.error().message;
}

TEST_F(ChildProcessTest, TakeInheritedFdRefusesWhatIsNotASocket) {
    Pipe pipe;
    auto taken = take_inherited_fd(pipe.read_end.get());
    ASSERT_FALSE(taken);
    EXPECT_NE(taken.error().message.find("not a socket"), std::string::npos);
}

TEST_F(ChildProcessTest, CheckPeerComparesSoPeercredWithTheExpectedProcess) {
    auto address = SocketAddress::abstract(fmt::format("texshare-child-process-test-{}", ::getpid()));
    ASSERT_TRUE(address);
    auto listener = UnixListener::listen(*address);
    ASSERT_TRUE(listener) << listener.error().message;
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        auto socket = connect_unix(*address);
        char byte = 0;
        if (socket) (void)::read(socket->get(), &byte, 1);  // until the test is done with us
        ::_exit(socket ? 0 : 1);
    }
    auto accepted = listener->accept();
    ASSERT_TRUE(accepted) << accepted.error().message;
    EXPECT_TRUE(check_peer(accepted->borrow(), pid, ::getuid()));
    auto wrong = check_peer(accepted->borrow(), pid + 1, ::getuid());
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().code, Errc::rejected);
    EXPECT_NE(wrong.error().message.find(fmt::format("is pid {}", pid)), std::string::npos) << wrong.error().message;
    accepted->reset();
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace texshare
