// Test support: a FrameSender and a FrameReceiver on the two ends of one socket pair in this
// process, with helpers to pump each side, so the protocol's state machine can be driven
// one message at a time. Images are sealed memfds.
#pragma once

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "support/fd_count.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare::testing {

inline DmaBufImage allocate(std::uint32_t w = 32, std::uint32_t h = 16) {
    auto image = MemfdAllocator().allocate(w, h, DRM_FORMAT_ARGB8888);
    EXPECT_TRUE(image) << image.error().message;
    return image ? std::move(*image) : DmaBufImage();
}

struct Pipe {
    UniqueFd read_end, write_end;
    Pipe() {
        int ends[2] = {-1, -1};
        EXPECT_EQ(::pipe2(ends, O_CLOEXEC), 0);
        read_end.reset(ends[0]);
        write_end.reset(ends[1]);
    }
};

// A stand-in fence of a sync_file's kind (the frame endpoints refuse any other): an eventfd,
// "signalled" once written (readable, as a signalled sync_file is). Both ends are the one
// file; same_file() tells which fence arrived.
struct Fence {
    UniqueFd read_end, write_end;
    Fence() {
        read_end.reset(::eventfd(0, EFD_CLOEXEC));
        EXPECT_TRUE(read_end.valid());
        write_end.reset(::fcntl(read_end.get(), F_DUPFD_CLOEXEC, 3));
    }
};

// Whether two fds name one open file (kcmp KCMP_FILE): an fd passed over SCM_RIGHTS does.
inline bool same_file(BorrowedFd a, BorrowedFd b) {
    const pid_t self = ::getpid();
    return ::syscall(SYS_kcmp, self, self, KCMP_FILE, a.get(), b.get()) == 0;
}

inline ino_t inode(BorrowedFd fd) {
    struct stat info {};
    EXPECT_EQ(::fstat(fd.get(), &info), 0);
    return info.st_ino;
}

inline void expect_error(const Error& error, Errc code, const std::string& needle) {
    EXPECT_EQ(error.code, code) << error.message;
    EXPECT_NE(error.message.find(needle), std::string::npos)
        << "\"" << error.message << "\" lacks \"" << needle << "\"";
}

// Records what it hears; refuses images while `refuse` is set.
struct RecordingListener : FrameImageListener {
    std::vector<std::string> events;
    bool refuse = false;
    Result<void> image_added(std::uint64_t id, const DmaBufImage& image, bool by_peer) override {
        if (refuse) return make_error(Errc::unsupported, "format {} not wanted", image.fourcc());
        events.push_back(fmt::format("add {:x}{}", id, by_peer ? " peer" : ""));
        return {};
    }
    void image_removed(std::uint64_t id) noexcept override { events.push_back(fmt::format("remove {:x}", id)); }
    void image_renamed(std::uint64_t from, std::uint64_t to) noexcept override {
        events.push_back(fmt::format("rename {:x} {:x}", from, to));
    }
};

// A FrameSender on one end of a fresh socket pair and a FrameReceiver on the other; which end
// allocates is the test's choice (both directions use the same endpoints).
class FramePairTest : public FdLeakTest {
protected:
    void SetUp() override {
        FdLeakTest::SetUp();
        make_endpoints(false);
    }
    void TearDown() override {
        sender_.reset();
        receiver_.reset();
        FdLeakTest::TearDown();
    }
    void make_endpoints(bool sender_on_second_end, FrameReceiver::Options options = {},
                        FrameSender::Options sender_options = {}) {
        sender_.reset();
        receiver_.reset();
        auto pair = FrameChannel::create_pair();
        ASSERT_TRUE(pair) << pair.error().message;
        auto sender = FrameSender::create(std::move(sender_on_second_end ? pair->second : pair->first), sender_options);
        auto receiver =
            FrameReceiver::create(std::move(sender_on_second_end ? pair->first : pair->second), options);
        ASSERT_TRUE(sender && receiver);
        sender_.emplace(std::move(*sender));
        receiver_.emplace(std::move(*receiver));
    }
    std::uint64_t add() {
        auto id = sender_->add_image(allocate());
        EXPECT_TRUE(id) << id.error().message;
        return id ? *id : 0;
    }
    std::size_t pump_receiver() {
        auto handled = receiver_->dispatch();
        EXPECT_TRUE(handled) << handled.error().message;
        return handled ? *handled : 0;
    }
    std::size_t pump_sender() {
        auto handled = sender_->dispatch();
        EXPECT_TRUE(handled) << handled.error().message;
        return handled ? *handled : 0;
    }
    std::uint64_t add_to_receiver() {
        auto id = receiver_->add_image(allocate());
        EXPECT_TRUE(id) << id.error().message;
        return id ? *id : 0;
    }
    // A fresh channel: the surviving endpoint resumes on one end, `peer` is made on the other.
    template <typename Survivor, typename Peer>
    void reconnect(Survivor& survivor, std::optional<Peer>& peer) {
        auto pair = FrameChannel::create_pair();
        ASSERT_TRUE(pair);
        auto resumed = survivor.resume(std::move(pair->first));
        ASSERT_TRUE(resumed) << resumed.error().message;
        auto created = Peer::create(std::move(pair->second));
        ASSERT_TRUE(created);
        peer.emplace(std::move(*created));
    }

    std::optional<FrameSender> sender_;
    std::optional<FrameReceiver> receiver_;
};

}  // namespace texshare::testing
