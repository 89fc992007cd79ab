#include "texshare/unix_socket.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

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
    EXPECT_NE(listener.error().message.find("is not a socket; refusing to remove it"), std::string::npos);
    EXPECT_TRUE(std::filesystem::is_regular_file(path("f")));
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
