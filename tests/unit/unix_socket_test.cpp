#include "texshare/unix_socket.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "support/fd_count.hpp"

namespace texshare {
namespace {

class UnixSocketTest : public testing::FdLeakTest {
protected:
    void SetUp() override {
        FdLeakTest::SetUp();
        char pattern[] = "/tmp/texshare-socket-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        directory_ = pattern;
    }
    void TearDown() override {
        std::filesystem::remove_all(directory_);
        FdLeakTest::TearDown();
    }
    std::string path(const char* name) const { return directory_ + "/" + name; }

    std::string directory_;
};

TEST_F(UnixSocketTest, AddressesValidateTheirNames) {
    EXPECT_FALSE(SocketAddress::filesystem(""));
    EXPECT_FALSE(SocketAddress::abstract(std::string_view("a\0b", 3)));
    auto too_long = SocketAddress::filesystem(std::string(200, 'x'));
    ASSERT_FALSE(too_long);
    EXPECT_EQ(too_long.error().message, "socket name of 200 bytes exceeds the 107-byte limit");
    auto abstract = SocketAddress::abstract("texshare-test");
    ASSERT_TRUE(abstract);
    EXPECT_EQ(abstract->to_string(), "@texshare-test");
    EXPECT_TRUE(abstract->is_abstract());
}

TEST_F(UnixSocketTest, FilesystemSocketIsPrivateEvenWithPermissiveUmask) {
    const mode_t old_umask = ::umask(0);
    auto listener = UnixListener::listen(*SocketAddress::filesystem(path("s")));
    ::umask(old_umask);
    ASSERT_TRUE(listener) << listener.error().message;
    struct stat info {};
    ASSERT_EQ(::stat(path("s").c_str(), &info), 0);
    EXPECT_TRUE(S_ISSOCK(info.st_mode));
    EXPECT_EQ(info.st_mode & 0777, 0600U);
}

TEST_F(UnixSocketTest, ConnectAcceptAndPeerCredentials) {
    auto address = *SocketAddress::filesystem(path("s"));
    auto listener = UnixListener::listen(address);
    ASSERT_TRUE(listener);
    auto client = connect_unix(address);
    ASSERT_TRUE(client) << client.error().message;
    auto server = listener->accept();
    ASSERT_TRUE(server) << server.error().message;
    auto credentials = peer_credentials(server->borrow());
    ASSERT_TRUE(credentials);
    EXPECT_EQ(credentials->pid, ::getpid());
    EXPECT_EQ(credentials->uid, ::getuid());
}

TEST_F(UnixSocketTest, StaleSocketFileIsReplaced) {
    auto address = *SocketAddress::filesystem(path("s"));
    {
        // Leave a socket file behind with nobody listening, as a crashed server would.
        UniqueFd stale(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        ASSERT_EQ(::bind(stale.get(), address.native(), address.native_length()), 0);
    }
    auto listener = UnixListener::listen(address);
    ASSERT_TRUE(listener) << listener.error().message;
    EXPECT_TRUE(connect_unix(address));
    EXPECT_TRUE(listener->accept());
}

TEST_F(UnixSocketTest, LiveListenerIsNotStolen) {
    auto address = *SocketAddress::filesystem(path("s"));
    auto first = UnixListener::listen(address);
    ASSERT_TRUE(first);
    auto second = UnixListener::listen(address);
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message.find("another process is listening"), std::string::npos);
}

TEST_F(UnixSocketTest, NonSocketFileIsNeverRemoved) {
    { UniqueFd file(::open(path("f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)); }
    auto listener = UnixListener::listen(*SocketAddress::filesystem(path("f")));
    ASSERT_FALSE(listener);
    EXPECT_EQ(listener.error().code, Errc::invalid_argument);
    EXPECT_NE(listener.error().message.find("is a regular file (owner uid"), std::string::npos) << listener.error().message;
    EXPECT_NE(listener.error().message.find("not a socket; refusing to remove it"), std::string::npos);
    EXPECT_TRUE(std::filesystem::is_regular_file(path("f")));
}

TEST_F(UnixSocketTest, SymlinkIsNeitherFollowedNorRemoved) {
    // A link to a stale socket elsewhere: replacing "the stale socket" would follow it.
    auto target = *SocketAddress::filesystem(path("target"));
    UniqueFd stale(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::bind(stale.get(), target.native(), target.native_length()), 0);
    stale.reset();
    ASSERT_EQ(::symlink(path("target").c_str(), path("link").c_str()), 0);
    auto listener = UnixListener::listen(*SocketAddress::filesystem(path("link")));
    ASSERT_FALSE(listener);
    EXPECT_EQ(listener.error().code, Errc::invalid_argument);
    EXPECT_NE(listener.error().message.find("is a symbolic link"), std::string::npos) << listener.error().message;
    EXPECT_TRUE(std::filesystem::is_symlink(path("link")));
    EXPECT_TRUE(std::filesystem::is_socket(path("target")));
}

TEST_F(UnixSocketTest, LiveListenerIsReportedWithItsUidAndPid) {
    auto address = *SocketAddress::filesystem(path("s"));
    auto first = UnixListener::listen(address);
    ASSERT_TRUE(first);
    auto second = UnixListener::listen(address);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().sys_errno, EADDRINUSE);
    EXPECT_NE(second.error().message.find(fmt::format("(uid {}, pid {})", ::getuid(), ::getpid())), std::string::npos)
        << second.error().message;
}

// listen() in a child with a 5 s alarm, so a listen() that blocks fails the test instead
// of hanging it. Gives the error's text, or "listening" on success, and the time it took.
std::pair<std::string, std::chrono::milliseconds> listen_in_child(const SocketAddress& address) {
    int ends[2] = {-1, -1};
    EXPECT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    UniqueFd read_end(ends[0]), write_end(ends[1]);
    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(5);
        auto listener = UnixListener::listen(address);
        const std::string text = listener ? std::string("listening") : listener.error().message;
        (void)!::write(write_end.get(), text.data(), text.size());
        ::_exit(0);
    }
    write_end.reset();
    std::string text;
    char buffer[512];
    for (ssize_t n = 0; (n = ::read(read_end.get(), buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status)) << "listen() blocked until the alarm killed it";
    return {text, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)};
}

TEST_F(UnixSocketTest, ListenerWithAFullBacklogIsReportedNotWaitedFor) {
    auto address = *SocketAddress::filesystem(path("s"));
    UniqueFd squatter(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::bind(squatter.get(), address.native(), address.native_length()), 0);
    ASSERT_EQ(::listen(squatter.get(), 0), 0);
    UniqueFd queued(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    ASSERT_EQ(::connect(queued.get(), address.native(), address.native_length()), 0);  // the backlog's one place
    auto [text, took] = listen_in_child(address);
    EXPECT_NE(text.find("another process is listening there with its backlog full"), std::string::npos) << text;
    EXPECT_NE(text.find(fmt::format("the socket file's owner: uid {}", ::getuid())), std::string::npos) << text;
    EXPECT_LT(took, std::chrono::milliseconds(1000));
    EXPECT_TRUE(std::filesystem::is_socket(path("s"))) << "a live listener's file was removed";
}

TEST_F(UnixSocketTest, AbstractNameInUseNamesItsHolder) {
    auto address = *SocketAddress::abstract(fmt::format("texshare-test-holder-{}", ::getpid()));
    auto first = UnixListener::listen(address);
    ASSERT_TRUE(first);
    auto second = UnixListener::listen(address);
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message.find(fmt::format("(uid {}, pid {})", ::getuid(), ::getpid())), std::string::npos)
        << second.error().message;
}

TEST_F(UnixSocketTest, StaleSocketOfAnotherUserIsNotRemoved) {
    auto address = *SocketAddress::filesystem(path("s"));
    UniqueFd stale(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::bind(stale.get(), address.native(), address.native_length()), 0);
    stale.reset();
    if (::lchown(path("s").c_str(), 65534, 65534) != 0) GTEST_SKIP() << "cannot chown (not root): " << std::strerror(errno);
    auto listener = UnixListener::listen(address);
    ASSERT_FALSE(listener);
    EXPECT_EQ(listener.error().sys_errno, EADDRINUSE);
    EXPECT_NE(listener.error().message.find("a socket of uid 65534 that nobody listens on"), std::string::npos)
        << listener.error().message;
    EXPECT_TRUE(std::filesystem::is_socket(path("s")));
}

TEST_F(UnixSocketTest, StaleSocketIsRemovedOnlyWhereNobodyElseCanSwapIt) {
    const auto stale_in = [this](const char* name, mode_t mode) {
        std::filesystem::create_directory(path(name));
        EXPECT_EQ(::chmod(path(name).c_str(), mode), 0);
        auto address = *SocketAddress::filesystem(path(name) + "/s");
        UniqueFd stale(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        EXPECT_EQ(::bind(stale.get(), address.native(), address.native_length()), 0);
        return address;
    };
    // Writable by others without the sticky bit: another user could swap the file between
    // the check and the unlink.
    auto open_address = stale_in("open", 0777);
    auto refused = UnixListener::listen(open_address);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("(mode 0777) that others may write without the sticky bit"), std::string::npos)
        << refused.error().message;
    EXPECT_TRUE(std::filesystem::is_socket(open_address.name()));
    // Sticky, like /tmp: others cannot touch our file there.
    auto sticky_address = stale_in("sticky", 01777);
    auto replaced = UnixListener::listen(sticky_address);
    ASSERT_TRUE(replaced) << replaced.error().message;
    EXPECT_TRUE(connect_unix(sticky_address));
    EXPECT_TRUE(replaced->accept());
}

TEST_F(UnixSocketTest, ListenerRemovesItsSocketFile) {
    {
        auto listener = UnixListener::listen(*SocketAddress::filesystem(path("s")));
        ASSERT_TRUE(listener);
    }
    EXPECT_FALSE(std::filesystem::exists(path("s")));
}

TEST_F(UnixSocketTest, AbstractAddressesWork) {
    const auto name = fmt::format("texshare-test-{}", ::getpid());
    auto address = *SocketAddress::abstract(name);
    auto listener = UnixListener::listen(address);
    ASSERT_TRUE(listener) << listener.error().message;
    EXPECT_FALSE(UnixListener::listen(address)) << "abstract names are never 'stale'";
    EXPECT_TRUE(connect_unix(address));
}

TEST_F(UnixSocketTest, ConnectingToNobodyIsConnectionRefusedNotAPeerThatLeft) {
    auto missing = connect_unix(*SocketAddress::filesystem(path("nobody")));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, Errc::connection_refused);
    EXPECT_EQ(missing.error().sys_errno, ENOENT);
    // A socket file whose server never listened (or is gone): the file is there, nobody listens.
    UniqueFd stale(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    auto address = *SocketAddress::filesystem(path("stale"));
    ASSERT_EQ(::bind(stale.get(), address.native(), address.native_length()), 0);  // bound, never listening
    auto refused = connect_unix(address);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::connection_refused);
    EXPECT_EQ(refused.error().sys_errno, ECONNREFUSED);
    stale.reset();
    ::unlink(address.name().c_str());
}

TEST_F(UnixSocketTest, NonBlockingAcceptReportsWouldBlock) {
    auto listener = UnixListener::listen(*SocketAddress::filesystem(path("s")));
    ASSERT_TRUE(listener);
    ASSERT_TRUE(set_nonblocking(listener->native_handle(), true));
    auto none = listener->accept();
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, Errc::would_block);
}

}  // namespace
}  // namespace texshare
