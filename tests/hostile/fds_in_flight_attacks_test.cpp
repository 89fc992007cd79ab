// An attack on the kernel's per-user quota of fds in flight. Every fd sent with SCM_RIGHTS
// and not yet received counts against the sending user, all its processes together, and
// once the count exceeds the sender's RLIMIT_NOFILE the kernel refuses every further send
// of fds (ETOOMANYREFS; root is exempt, so this runs as an ordinary uid). A process of the
// host's own uid that sends fds nobody reads can keep the quota full: the host's next send
// of fds (an image shared with a new renderer on resume(), any AuxChannel send with fds)
// fails. texshare cannot prevent that within one uid; it must say so clearly
// (Errc::fds_in_flight_limit, naming the quota and the remedy: renderers under their own
// uid), send nothing, and work again once the quota frees.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "hostile/unprivileged.hpp"
#include "support/fd_count.hpp"
#include "support/frame_pair.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/image_wire.hpp"

namespace texshare::hostile {
namespace {

constexpr rlim_t fd_limit = 64;  // small, so the quota fills in a few messages

// A process of the same uid that fills the quota: it sends copies of one fd over a socket
// pair it never reads until the kernel says ETOOMANYREFS, then holds them until `done`
// closes. Returns its pid once the quota is full (-1 if it could not fill it).
pid_t fill_quota(testing::Pipe& done) {
    testing::Pipe full;
    const pid_t attacker = ::fork();
    if (attacker < 0) return -1;
    if (attacker == 0) {
        ::alarm(30);  // never outlives a broken test
        done.write_end.reset();  // only the test's copy may keep it open
        full.read_end.reset();
        int ends[2] = {-1, -1};
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) ::_exit(2);
        // Not a socket: a socket in flight in its own pair's queue would be a cycle that
        // only the kernel's unix GC frees, later, and the next test would find the quota full.
        const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0) ::_exit(2);
        std::vector<int> copies(16, null);
        char byte = 0;
        for (int sent = 0; sent < 1000; ++sent) {
            iovec data{&byte, 1};
            alignas(cmsghdr) char control[CMSG_SPACE(16 * sizeof(int))] = {};
            msghdr message{};
            message.msg_iov = &data;
            message.msg_iovlen = 1;
            message.msg_control = control;
            message.msg_controllen = sizeof control;
            cmsghdr* header = CMSG_FIRSTHDR(&message);
            header->cmsg_level = SOL_SOCKET;
            header->cmsg_type = SCM_RIGHTS;
            header->cmsg_len = CMSG_LEN(16 * sizeof(int));
            std::memcpy(CMSG_DATA(header), copies.data(), 16 * sizeof(int));
            if (::sendmsg(ends[0], &message, MSG_DONTWAIT) < 0) {
                if (errno != ETOOMANYREFS) ::_exit(3);
                byte = 'f';
                (void)!::write(full.write_end.get(), &byte, 1);
                (void)!::read(done.read_end.get(), &byte, 1);  // EOF: let go (exit closes the pair)
                ::_exit(0);
            }
        }
        ::_exit(4);
    }
    full.write_end.reset();
    char byte = 0;
    if (::read(full.read_end.get(), &byte, 1) != 1) return -1;
    return attacker;
}

void set_fd_limit() {
    rlimit limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
    limit.rlim_cur = fd_limit;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
}

void expect_quota_error(const Error& error) {
    EXPECT_EQ(error.code, Errc::fds_in_flight_limit) << error.message;
    EXPECT_EQ(error.sys_errno, ETOOMANYREFS);
    for (const std::string& needle :
         {fmt::format("uid {} has more fds in flight", ::getuid()), fmt::format("RLIMIT_NOFILE ({})", fd_limit),
          std::string("the kernel's per-user limit; nothing was sent"),
          std::string("run renderers under a uid of their own")}) {
        EXPECT_NE(error.message.find(needle), std::string::npos) << "no \"" << needle << "\" in: " << error.message;
    }
}

void reap(pid_t attacker) {
    int status = 0;
    EXPECT_EQ(::waitpid(attacker, &status, 0), attacker);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the attacker failed: status " << status;
}

class FdsInFlight : public testing::FdLeakTest {};

// One uid per test: the quota is per uid, and ctest runs tests in parallel.
constexpr uid_t aux_channel_uid = victim_uid + 101;
constexpr uid_t resume_uid = victim_uid + 102;

TEST_F(FdsInFlight, FullQuotaFailsAnAuxChannelSendClearlyAndFreesAgain) {
    run_as(aux_channel_uid, [] {
        set_fd_limit();
        const int fds_before = testing::open_fd_count();
        {
            auto pair = ImageChannel::create_pair();
            ASSERT_TRUE(pair);
            auto image = testing::allocate(16, 16);
            std::optional<testing::Pipe> done(std::in_place);
            const pid_t attacker = fill_quota(*done);
            ASSERT_GT(attacker, 0) << "the attacker could not fill the quota";
            auto sent = send_image(pair->first, 1, image);
            ASSERT_FALSE(sent) << "an fd went out past a full quota";
            expect_quota_error(sent.error());
            EXPECT_TRUE(pair->second.set_nonblocking(true));
            auto nothing = receive_image(pair->second);
            ASSERT_FALSE(nothing);
            EXPECT_EQ(nothing.error().code, Errc::would_block) << "a refused send wrote something";
            done.reset();  // the attacker lets go: the quota frees
            reap(attacker);
            ASSERT_TRUE(send_image(pair->first, 1, image)) << "the channel did not work again";
            EXPECT_TRUE(receive_image(pair->second));
        }
        EXPECT_EQ(testing::open_fd_count(), fds_before);
    });
}

TEST_F(FdsInFlight, FullQuotaFailsResumeClearlyAndTheHostKeepsItsImages) {
    // The case: the renderer died, and the host's resume() must share its images
    // again with the next one while another process of the host's uid holds the quota.
    run_as(resume_uid, [] {
        set_fd_limit();
        const int fds_before = testing::open_fd_count();
        {
            auto first = FrameChannel::create_pair();
            ASSERT_TRUE(first);
            auto host = FrameReceiver::create(std::move(first->first));
            ASSERT_TRUE(host);
            for (int i = 0; i < 3; ++i) ASSERT_TRUE(host->add_image(testing::allocate(16, 16)));
            first->second.close();  // the renderer dies
            auto gone = host->dispatch();
            ASSERT_FALSE(gone);
            ASSERT_EQ(gone.error().code, Errc::peer_closed);
            std::optional<testing::Pipe> done(std::in_place);
            const pid_t attacker = fill_quota(*done);
            ASSERT_GT(attacker, 0) << "the attacker could not fill the quota";
            auto next = FrameChannel::create_pair();
            ASSERT_TRUE(next);
            auto resumed = host->resume(std::move(next->first));
            ASSERT_FALSE(resumed) << "images went out past a full quota";
            expect_quota_error(resumed.error());
            EXPECT_EQ(host->image_count(), 3U) << "the host lost its images to a refused send";
            done.reset();
            reap(attacker);
        }
        EXPECT_EQ(testing::open_fd_count(), fds_before);
    });
}

}  // namespace
}  // namespace texshare::hostile
