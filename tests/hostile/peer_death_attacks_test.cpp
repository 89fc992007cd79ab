// Attacks on how a host learns that its renderer died. The socket alone says only that
// every copy of the renderer's channel end is closed: a renderer that forks and exits
// leaves a process holding its end, and the host that waits for EOF waits as long as that
// process likes. The host here runs the README's loop (ChildProcess::wait_for_event on the
// channel and the child's pidfd, dispatch(), close() on the child's exit) against renderers
// that are shell scripts with the channel on fd 3, and must see each death within
// death_seen_within, whoever holds the channel, and leave its own images ready for the
// next renderer (resume()).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "support/fd_count.hpp"
#include "support/frame_pair.hpp"
#include "texshare/child_process.hpp"
#include "texshare/frame/protocol.hpp"

namespace texshare::hostile {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto death_seen_within = 500ms;

// How the README's loop ended.
struct Ending {
    bool exited = false;          // the child's pidfd said so
    bool channel_closed = false;  // dispatch() said peer_closed: every copy of the end is closed
    Clock::duration after{};      // since the renderer was spawned
};

class PeerDeath : public testing::FdLeakTest {
protected:
    // Spawns `script` with the host's channel end on fd 3 and `hold`'s read end on fd 4
    // (a grandchild that reads it keeps the channel until the test closes hold.write_end).
    void spawn(const std::string& script) {
        hold_.emplace();
        auto pair = FrameChannel::create_pair();
        ASSERT_TRUE(pair);
        auto host = FrameReceiver::create(std::move(pair->first), {.keep_last_frame = true});
        ASSERT_TRUE(host);
        host_.emplace(std::move(*host));
        for (int i = 0; i < 3; ++i) ASSERT_TRUE(host_->add_image(testing::allocate(16, 16)));
        std::vector<UniqueFd> inherited;
        inherited.push_back(pair->second.take_socket());
        inherited.push_back(std::move(hold_->read_end));
        started_ = Clock::now();
        auto child = ChildProcess::spawn("/bin/sh", {"-c", script}, inherited);
        ASSERT_TRUE(child) << child.error().message;
        child_.emplace(std::move(*child));
    }

    // The README's host loop, until the renderer is gone.
    Ending serve() {
        while (true) {
            auto ready = child_->wait_for_event(host_->native_handle(), 5s);
            if (!ready) {
                ADD_FAILURE() << "the host did not see its renderer die: " << ready.error().message;
                return {};
            }
            auto handled = host_->dispatch();  // what it sent before dying is read first
            if (!handled && handled.error().code != Errc::peer_closed) {
                ADD_FAILURE() << handled.error().message;
                return {};
            }
            if (!handled || ready->exited) {
                host_->close();  // dead, even if some other process still holds its end
                return Ending{ready->exited, !handled, Clock::now() - started_};
            }
        }
    }

    // After the death: the host's images are all there, free, and go to the next renderer.
    void expect_ready_for_the_next_renderer() {
        EXPECT_FALSE(host_->is_open());
        EXPECT_EQ(host_->image_count(), 3U);
        auto pair = FrameChannel::create_pair();
        ASSERT_TRUE(pair);
        ASSERT_TRUE(host_->resume(std::move(pair->first)));
        auto next = FrameSender::create(std::move(pair->second));
        ASSERT_TRUE(next);
        ASSERT_TRUE(next->dispatch());
        EXPECT_EQ(next->image_count(), 3U) << "the next renderer did not get the host's images";
    }

    void TearDown() override {
        hold_.reset();  // any grandchild lets go now
        child_.reset();           // kills and reaps a child still running
        host_.reset();
        FdLeakTest::TearDown();
    }

    std::optional<testing::Pipe> hold_;
    std::optional<FrameReceiver> host_;
    std::optional<ChildProcess> child_;
    Clock::time_point started_;
};

TEST_F(PeerDeath, RendererThatForksAndExitsIsDeadAtOnceThoughItsChildHoldsTheChannel) {
    // The case: the grandchild (cat) keeps fd 3 open as long as it likes.
    spawn("cat <&4 >/dev/null & exit 0");
    const Ending ending = serve();
    EXPECT_TRUE(ending.exited);
    EXPECT_FALSE(ending.channel_closed) << "the grandchild should still hold the channel end";
    EXPECT_LT(ending.after, death_seen_within);
    auto status = child_->wait(1s);
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_TRUE(status->ok()) << status->describe();
    expect_ready_for_the_next_renderer();
}

TEST_F(PeerDeath, RendererThatExecsAProgramThatForksAndExitsIsDeadAtOnce) {
    // exec keeps the process (and its pidfd) and its fds: the new program's exit is the
    // renderer's death, while what it forked holds the channel.
    spawn("exec /bin/sh -c 'cat <&4 >/dev/null & sleep 0.2'");
    const Ending ending = serve();
    EXPECT_TRUE(ending.exited);
    EXPECT_FALSE(ending.channel_closed);
    EXPECT_GE(ending.after, 150ms) << "an exec is not a death: the host saw one too early";
    EXPECT_LT(ending.after, 200ms + death_seen_within);
    expect_ready_for_the_next_renderer();
}

TEST_F(PeerDeath, RendererThatClosesTheChannelButLivesIsGoneAtOnce) {
    spawn("exec 3>&-; exec cat <&4 >/dev/null");
    const Ending ending = serve();
    EXPECT_TRUE(ending.channel_closed);
    EXPECT_FALSE(ending.exited);
    EXPECT_LT(ending.after, death_seen_within);
    EXPECT_FALSE(child_->has_exited()) << "the renderer lives on: the host decides (here: kill it)";
    ASSERT_TRUE(child_->signal(SIGKILL));
    auto status = child_->wait(5s);
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_EQ(status->describe(), "killed by signal 9 (Killed)");
    expect_ready_for_the_next_renderer();
}

TEST_F(PeerDeath, RendererKilledBySignalIsDeadAtOnce) {
    spawn("kill -9 $$");
    const Ending ending = serve();
    EXPECT_TRUE(ending.exited || ending.channel_closed);
    EXPECT_LT(ending.after, death_seen_within);
    auto status = child_->wait(5s);
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_FALSE(status->exited);
    EXPECT_EQ(status->code, SIGKILL);
    expect_ready_for_the_next_renderer();
}

TEST_F(PeerDeath, RendererKilledWhileItsChildHoldsTheChannelIsDeadAtOnce) {
    spawn("cat <&4 >/dev/null & kill -9 $$");
    const Ending ending = serve();
    EXPECT_TRUE(ending.exited);
    EXPECT_FALSE(ending.channel_closed);
    EXPECT_LT(ending.after, death_seen_within);
    expect_ready_for_the_next_renderer();
}

// Makes this process's next child get `pid` (root: /proc/sys/kernel/ns_last_pid); the
// child exits on its own after 3 s. Returns its pid (== pid on success; other processes on
// the machine fork too, so it retries), or -1 where pids cannot be steered.
pid_t fork_with_pid(pid_t pid) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        FILE* last = std::fopen("/proc/sys/kernel/ns_last_pid", "w");
        if (last == nullptr) return -1;
        const bool written = std::fprintf(last, "%d", pid - 1) > 0;
        if (std::fclose(last) != 0 || !written) return -1;
        const pid_t child = ::fork();
        if (child == 0) {
            ::alarm(3);
            ::pause();
            ::_exit(0);
        }
        if (child == pid || child < 0) return child;
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
    }
    return -1;
}

TEST_F(PeerDeath, PidReuseCannotMakeTheHostSignalOrReapAnotherProcess) {
    // Something else in the host reaped the renderer (a SIGCHLD handler's waitpid(-1)) and
    // the kernel gave its pid to a new child of the host. ChildProcess works on the pidfd,
    // which still names the dead renderer: nothing it does reaches the new process.
    auto renderer = ChildProcess::spawn("/bin/sh", {"-c", "exit 0"});
    ASSERT_TRUE(renderer);
    const pid_t pid = renderer->pid();
    ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
    const pid_t stranger = fork_with_pid(pid);
    if (stranger != pid) {
        if (stranger > 0) ::waitpid(stranger, nullptr, 0);
        GTEST_SKIP() << "could not give pid " << pid << " to a new process (needs root to write "
                     << "/proc/sys/kernel/ns_last_pid)";
    }
    EXPECT_TRUE(renderer->has_exited());
    auto signalled = renderer->signal(SIGKILL);
    ASSERT_FALSE(signalled) << "a signal went to pid " << pid << ", which is another process now";
    EXPECT_EQ(signalled.error().sys_errno, ESRCH);
    auto waited = renderer->wait(1s);
    ASSERT_FALSE(waited) << "wait() reaped another process that got the renderer's pid";
    EXPECT_EQ(waited.error().sys_errno, ECHILD);
    renderer = ChildProcess();  // the destructor must not touch the stranger either
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(stranger), &info, WEXITED | WNOHANG), 0);
    EXPECT_EQ(info.si_pid, 0) << "the stranger was killed or reaped through the renderer's pid";
    ::kill(stranger, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(stranger, &status, 0), stranger);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "someone else reaped the stranger";
}

}  // namespace
}  // namespace texshare::hostile
