// detail/fd_closer.hpp: a peer's fd of unproven kind is closed on the closer thread, and the
// caller never waits for that close.
#include "texshare/detail/fd_closer.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include <sys/eventfd.h>

#include "support/fd_count.hpp"
#include "support/lingering_socket.hpp"

namespace texshare {
namespace {

using Clock = std::chrono::steady_clock;

class FdCloserTest : public testing::FdLeakTest {};

TEST_F(FdCloserTest, ClosesWhatItIsHandedOnItsOwnThread) {
    const int before = testing::open_fd_count();
    std::vector<UniqueFd> fds;
    for (int i = 0; i < 100; ++i) {
        int ends[2];
        ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
        fds.emplace_back(ends[0]);
        fds.emplace_back(ends[1]);
    }
    detail::close_peer_fds(fds);
    for (const UniqueFd& fd : fds) EXPECT_FALSE(fd.valid()) << "handed over: the caller owns it no more";
    ASSERT_TRUE(detail::drain_peer_fd_closes(std::chrono::seconds(5)));
    EXPECT_EQ(detail::pending_peer_fd_closes(), 0U);
    EXPECT_EQ(testing::open_fd_count(), before);
    UniqueFd empty;
    detail::close_peer_fd(empty);  // nothing to hand over
    EXPECT_EQ(detail::pending_peer_fd_closes(), 0U);
}

// A close that blocks (a TCP socket lingering 30 s on a stuck send queue) blocks the closer
// thread only: the caller goes on at once, fds handed over meanwhile wait in the queue,
// and all are closed once the close returns.
TEST_F(FdCloserTest, ACloseThatBlocksHoldsUpOnlyTheCloser) {
    const int before = testing::open_fd_count();
    testing::LingeringSocket socket;
    const auto start = Clock::now();
    detail::close_peer_fd(socket.lingering);
    for (int i = 0; i < 100; ++i) {
        UniqueFd copy(::fcntl(socket.stuck_reader.get(), F_DUPFD_CLOEXEC, 3));
        detail::close_peer_fd(copy);
    }
    EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500)) << "the caller waited for a close";
    EXPECT_FALSE(detail::drain_peer_fd_closes(std::chrono::milliseconds(200))) << "the lingering close did not block";
    EXPECT_GE(detail::pending_peer_fd_closes(), 1U);
    socket.unstick();
    ASSERT_TRUE(detail::drain_peer_fd_closes(std::chrono::seconds(10)));
    socket.stuck_reader.reset();
    EXPECT_EQ(testing::open_fd_count(), before);
}

// Many threads hand fds over at once (run under TSan by scripts/sanitize.sh).
TEST_F(FdCloserTest, ManyThreadsHandOverAtOnce) {
    const int before = testing::open_fd_count();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([] {
            for (int i = 0; i < 200; ++i) {
                UniqueFd fd(::fcntl(0, F_DUPFD_CLOEXEC, 3));
                if (!fd) fd.reset(::eventfd(0, EFD_CLOEXEC));
                detail::close_peer_fd(fd);
            }
        });
    }
    for (std::thread& thread : threads) thread.join();
    ASSERT_TRUE(detail::drain_peer_fd_closes(std::chrono::seconds(5)));
    EXPECT_EQ(testing::open_fd_count(), before);
}

}  // namespace
}  // namespace texshare
