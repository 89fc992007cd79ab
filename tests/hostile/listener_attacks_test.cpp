// Attacks on UnixListener::listen() by another user of the machine, in a shared directory
// (mode 1777, like /tmp): a squatter listening at the host's path with a full backlog, and
// files put where the host's socket goes. The host runs as an ordinary user (victim_uid),
// the squatter as nobody: as root both would bypass the permission checks under test.
// listen() must return at once with an error naming the squatter, and never remove a file
// that is not the host's own stale socket in a place nobody else can swap it.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "hostile/unprivileged.hpp"
#include "support/fd_count.hpp"
#include "texshare/unix_socket.hpp"

namespace texshare::hostile {
namespace {

using Clock = std::chrono::steady_clock;

class ListenerAttack : public testing::FdLeakTest {
protected:
    void SetUp() override {
        FdLeakTest::SetUp();
        if (!can_switch_users()) GTEST_SKIP() << "needs root to run the host and the squatter as two ordinary users";
        char pattern[] = "/tmp/texshare-listener-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        shared_ = pattern;
        ASSERT_EQ(::chmod(shared_.c_str(), 01777), 0);  // like /tmp
    }
    void TearDown() override {
        if (!shared_.empty()) std::filesystem::remove_all(shared_);
        FdLeakTest::TearDown();
    }
    std::string path(const char* name) const { return shared_ + "/" + name; }

    // Runs `setup` as nobody (the squatter); it stays alive, holding what it made, until
    // the host's part (`host`, as victim_uid) is done.
    void squat_then(const std::function<void()>& setup, const std::function<void()>& host) {
        int ready[2] = {-1, -1}, done[2] = {-1, -1};
        ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
        ASSERT_EQ(::pipe2(done, O_CLOEXEC), 0);
        const pid_t squatter = ::fork();
        ASSERT_GE(squatter, 0);
        if (squatter == 0) {
            ::close(ready[0]);
            ::close(done[1]);
            ::alarm(30);
            if (!become(nobody_uid)) ::_exit(2);
            ::umask(0);  // its sockets as open as it likes: anyone may connect
            setup();
            char byte = ::testing::Test::HasFailure() ? 'f' : 'r';
            (void)!::write(ready[1], &byte, 1);
            (void)!::read(done[0], &byte, 1);  // EOF: the host is done
            ::_exit(0);
        }
        ::close(ready[1]);
        ::close(done[0]);
        char byte = 0;
        EXPECT_EQ(::read(ready[0], &byte, 1), 1);
        EXPECT_EQ(byte, 'r') << "the squatter's setup failed";
        ::close(ready[0]);
        if (byte == 'r') run_as(victim_uid, host);
        ::close(done[1]);
        int status = 0;
        EXPECT_EQ(::waitpid(squatter, &status, 0), squatter);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    std::string shared_;
};

// A socket of nobody's at `address`, connectable by anyone; listening with `backlog`, or
// just bound (a stale file) when backlog < 0. Leaked on purpose: it lives as long as the
// squatter process.
void squat_socket(const SocketAddress& address, int backlog) {
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fchmod(fd, 0666), 0);
    ASSERT_EQ(::bind(fd, address.native(), address.native_length()), 0);
    if (backlog < 0) {
        ::close(fd);  // the file stays, nobody listens
        return;
    }
    ASSERT_EQ(::listen(fd, backlog), 0);
    // Fill the backlog: non-blocking connects until the kernel says it is full.
    for (int i = 0; i < 64; ++i) {
        const int client = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (::connect(client, address.native(), address.native_length()) != 0) {
            ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
            ::close(client);
            return;
        }
    }
    FAIL() << "the backlog never filled";
}

// The host's listen(), timed: it must fail, fast, with `needle` in the message, and leave
// the squatter's file where it was.
void expect_refused_fast(const std::string& path, const std::string& needle, Errc code = Errc::system) {
    const int fds_before = testing::open_fd_count();
    const auto start = Clock::now();
    auto listener = UnixListener::listen(*SocketAddress::filesystem(path));
    const auto took = Clock::now() - start;
    ASSERT_FALSE(listener) << "listen() took over a path that was not its to take";
    EXPECT_EQ(listener.error().code, code);
    EXPECT_NE(listener.error().message.find(needle), std::string::npos) << listener.error().message;
    EXPECT_LT(took, listener_probe_timeout + std::chrono::milliseconds(400)) << "listen() waited on the squatter";
    struct stat info {};
    EXPECT_EQ(::lstat(path.c_str(), &info), 0) << "the squatter's file was removed";
    EXPECT_EQ(testing::open_fd_count(), fds_before);
}

TEST_F(ListenerAttack, SquatterWithAFullBacklogDoesNotBlockListen) {
    const std::string host_path = path("host.sock");
    squat_then([&] { squat_socket(*SocketAddress::filesystem(host_path), 0); },
               [&] {
                   expect_refused_fast(host_path, fmt::format("another process is listening there with its backlog "
                                                              "full (the socket file's owner: uid {})",
                                                              nobody_uid));
               });
}

TEST_F(ListenerAttack, SquatterWithRoomInItsBacklogIsNamedByUidAndPid) {
    const std::string host_path = path("host.sock");
    squat_then(
        [&] {
            const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
            ASSERT_EQ(::fchmod(fd, 0666), 0);
            auto address = *SocketAddress::filesystem(host_path);
            ASSERT_EQ(::bind(fd, address.native(), address.native_length()), 0);
            ASSERT_EQ(::listen(fd, 16), 0);
        },
        [&] { expect_refused_fast(host_path, fmt::format("another process is listening there (uid {}, pid", nobody_uid)); });
}

TEST_F(ListenerAttack, SquattersPrivateSocketIsRefusedNotRemoved) {
    // Mode 0600: the host cannot even connect to find out (EACCES).
    const std::string host_path = path("host.sock");
    squat_then(
        [&] {
            const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
            ASSERT_EQ(::fchmod(fd, 0600), 0);
            auto address = *SocketAddress::filesystem(host_path);
            ASSERT_EQ(::bind(fd, address.native(), address.native_length()), 0);
            ASSERT_EQ(::listen(fd, 16), 0);
        },
        [&] {
            expect_refused_fast(host_path, fmt::format("a connect there fails with Permission denied (the socket "
                                                       "file's owner: uid {})",
                                                       nobody_uid));
        });
}

TEST_F(ListenerAttack, StaleSocketOfAnotherUserIsNotRemoved) {
    const std::string host_path = path("host.sock");
    squat_then([&] { squat_socket(*SocketAddress::filesystem(host_path), -1); },
               [&] {
                   expect_refused_fast(host_path, fmt::format("a socket of uid {} that nobody listens on is in the way; "
                                                              "refusing to remove another user's file",
                                                              nobody_uid));
               });
}

TEST_F(ListenerAttack, SymlinkToTheHostsOwnStaleSocketIsNotFollowed) {
    // The host's stale socket elsewhere, and nobody's symlink to it at the path: replacing
    // "the stale socket" through the link would remove the host's file by another's say.
    const std::string host_path = path("host.sock");
    const std::string private_dir = path("host-private");
    run_as(victim_uid, [&] {
        ASSERT_EQ(::mkdir(private_dir.c_str(), 0700), 0);
        auto stale = *SocketAddress::filesystem(private_dir + "/s");
        const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ASSERT_EQ(::bind(fd, stale.native(), stale.native_length()), 0);
        ::close(fd);
    });
    squat_then([&] { ASSERT_EQ(::symlink((private_dir + "/s").c_str(), host_path.c_str()), 0); },
               [&] {
                   expect_refused_fast(host_path, "is a symbolic link (owner uid 65534), not a socket; refusing to remove it",
                                       Errc::invalid_argument);
                   struct stat info {};
                   EXPECT_EQ(::lstat((private_dir + "/s").c_str(), &info), 0);
               });
}

TEST_F(ListenerAttack, RegularFileAtThePathIsNotRemoved) {
    const std::string host_path = path("host.sock");
    squat_then([&] { ASSERT_EQ(::close(::open(host_path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644)), 0); },
               [&] {
                   expect_refused_fast(host_path, "is a regular file (owner uid 65534), not a socket",
                                       Errc::invalid_argument);
               });
}

TEST_F(ListenerAttack, HostsStaleSocketInADirectoryOfAnotherUserIsNotRemoved) {
    // nobody's directory, writable by all: nobody can swap the host's stale file for another
    // between listen()'s check and its unlink, sticky bit or not.
    for (const mode_t mode : {mode_t{0777}, mode_t{01777}}) {
        const std::string directory = path(mode == 0777 ? "nobodys-open" : "nobodys-sticky");
        const std::string host_path = directory + "/host.sock";
        squat_then(
            [&] {
                ASSERT_EQ(::mkdir(directory.c_str(), 0700), 0);
                ASSERT_EQ(::chmod(directory.c_str(), mode), 0);
            },
            [&] {
                auto address = *SocketAddress::filesystem(host_path);
                const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                ASSERT_EQ(::bind(fd, address.native(), address.native_length()), 0);
                ::close(fd);  // the host's own stale socket
                expect_refused_fast(host_path, fmt::format("in directory {} of uid {}, who could swap it", directory,
                                                           nobody_uid));
            });
    }
}

TEST_F(ListenerAttack, HostsOwnStaleSocketInTheSharedDirectoryIsReplaced) {
    // The control: what listen() may replace, it does, as the ordinary user.
    const std::string host_path = path("host.sock");
    run_as(victim_uid, [&] {
        auto address = *SocketAddress::filesystem(host_path);
        {
            const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
            ASSERT_EQ(::bind(fd, address.native(), address.native_length()), 0);
            ::close(fd);
        }
        auto listener = UnixListener::listen(address);
        ASSERT_TRUE(listener) << listener.error().message;
        auto client = connect_unix(address);
        ASSERT_TRUE(client) << client.error().message;
        EXPECT_TRUE(listener->accept());
    });
}

}  // namespace
}  // namespace texshare::hostile
