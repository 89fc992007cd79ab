// The frame protocol across real processes: this test process is the host, and
// texshare_frame_peer (tests/support/frame_peer.cpp), spawned with ChildProcess, is the
// renderer or the consumer. Each child checks its own open-fd count and exits non-zero on
// any wrong pixel or leak; the fixture checks the host's.
#include <sys/epoll.h>

#include <string>
#include <vector>

#include "support/fd_count.hpp"
#include "support/frame_stamp.hpp"
#include "texshare/child_process.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/sync_file.hpp"

namespace texshare {
namespace {

using namespace std::chrono_literals;

class FrameProcessTest : public testing::FdLeakTest {
protected:
    // Spawns the peer with its end of a fresh channel; returns the host's end.
    FrameChannel spawn_peer(ChildProcess& child, std::vector<std::string> args) {
        auto pair = FrameChannel::create_pair();
        EXPECT_TRUE(pair) << pair.error().message;
        if (!pair) return {};
        std::vector<UniqueFd> inherited;
        inherited.push_back(pair->second.take_socket());
        auto spawned = ChildProcess::spawn(TEXSHARE_FRAME_PEER, args, inherited, {.argv0 = "texshare_frame_peer"});
        EXPECT_TRUE(spawned) << spawned.error().message;
        if (spawned) child = std::move(*spawned);
        return std::move(pair->first);
    }

    static void expect_exit(ChildProcess& child, bool killed = false) {
        auto status = child.wait(10s);
        ASSERT_TRUE(status) << status.error().message;
        if (killed) {
            EXPECT_FALSE(status->exited) << status->describe();
            EXPECT_EQ(status->code, SIGKILL);
        } else {
            EXPECT_TRUE(status->ok()) << "the peer failed: " << status->describe();
        }
    }

    static void expect_stamp(const FrameReceiver::Frame& frame) {
        auto wrong = testing::stamp_mismatches(*frame.image, frame.frame_number);
        ASSERT_TRUE(wrong) << wrong.error().message;
        EXPECT_EQ(*wrong, 0U) << "frame " << frame.frame_number << " is not what the producer wrote";
    }

    // Shows frames until the producer is gone, checking each one it shows (after waiting on
    // its acquire fence); returns the last frame number. Like a compositor it shows only the
    // newest of the frames that arrived together: received_count() counts them all.
    static std::uint64_t show_until_gone(FrameReceiver& receiver, std::uint64_t last = 0) {
        while (true) {
            auto frame = receiver.wait_for_frame(last, 5s);
            if (!frame) {
                EXPECT_EQ(frame.error().code, Errc::peer_closed) << frame.error().message;
                auto kept = receiver.current();  // the frame presented just before bye, if any
                if (kept && kept->frame_number > last) {
                    expect_stamp(*kept);
                    last = kept->frame_number;
                }
                return last;
            }
            UniqueFd fence = receiver.take_acquire_fence();
            EXPECT_TRUE(wait_fence(fence.borrow(), 5s));
            expect_stamp(*frame);
            last = frame->frame_number;
        }
    }

    static DmaBufImage allocate(std::uint32_t w = 64, std::uint32_t h = 32) {
        auto image = MemfdAllocator().allocate(w, h, DRM_FORMAT_ARGB8888);
        EXPECT_TRUE(image) << image.error().message;
        return image ? std::move(*image) : DmaBufImage();
    }

    // Host as producer: renders `frames` stamped frames into free images.
    static void render(FrameSender& sender, std::uint64_t frames) {
        for (std::uint64_t n = 0; n < frames; ++n) {
            auto free_image = sender.wait_for_free_image(5s);
            ASSERT_TRUE(free_image) << free_image.error().message;
            ASSERT_TRUE(testing::stamp_image(*sender.image(free_image->id), sender.next_frame_number()));
            ASSERT_TRUE(sender.present(free_image->id));
        }
    }
};

TEST_F(FrameProcessTest, ChildAllocatesAndRendersHostShows) {  // a video decoder child
    ChildProcess child;
    auto receiver = FrameReceiver::create(spawn_peer(child, {"--role=producer", "--frames=200", "--images=3"}),
                                          {.keep_last_frame = true});
    ASSERT_TRUE(receiver);
    EXPECT_EQ(show_until_gone(*receiver), 200U);
    EXPECT_EQ(receiver->received_count(), 200U);
    expect_exit(child);
}

TEST_F(FrameProcessTest, HostAllocatesChildRendersIntoIt) {  // Makepad's direction
    ChildProcess child;
    auto receiver = FrameReceiver::create(spawn_peer(child, {"--role=producer", "--frames=200", "--images=0"}),
                                          {.keep_last_frame = true});
    ASSERT_TRUE(receiver);
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 3; ++i) {
        auto id = receiver->add_image(allocate());
        ASSERT_TRUE(id) << id.error().message;
        EXPECT_NE(*id & consumer_image_id_bit, 0U);
        ids.push_back(*id);
    }
    EXPECT_EQ(show_until_gone(*receiver), 200U);
    EXPECT_EQ(receiver->received_count(), 200U);
    expect_exit(child);
    EXPECT_EQ(receiver->image_count(), 3U) << "the host's own images stay after the child is gone";
    for (std::uint64_t id : ids) EXPECT_TRUE(receiver->is_local(id));
}

TEST_F(FrameProcessTest, HostRendersChildShows) {
    ChildProcess child;
    auto sender = FrameSender::create(spawn_peer(child, {"--role=consumer", "--frames=100", "--images=0"}));
    ASSERT_TRUE(sender);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(sender->add_image(allocate()));
    render(*sender, 100);
    sender->close();
    expect_exit(child);
}

TEST_F(FrameProcessTest, ChildConsumerAllocatesHostRendersIntoIt) {
    ChildProcess child;
    auto sender = FrameSender::create(spawn_peer(child, {"--role=consumer", "--frames=100", "--images=3"}));
    ASSERT_TRUE(sender);
    render(*sender, 100);
    EXPECT_EQ(sender->image_count(), 3U);
    for (std::uint64_t id = consumer_image_id_bit | 1; id <= (consumer_image_id_bit | 3); ++id) {
        EXPECT_FALSE(sender->is_local(id));
    }
    sender->close();
    EXPECT_EQ(sender->image_count(), 0U) << "the consumer's images leave with it";
    expect_exit(child);
}

TEST_F(FrameProcessTest, AcquireFencesAreWaitedOnBeforeReading) {
    // The producer presents first, writes the pixels 2 ms later and only then signals the
    // fence: reading without waiting would see the previous contents of the image.
    ChildProcess child;
    auto receiver = FrameReceiver::create(spawn_peer(child, {"--role=producer", "--frames=30", "--fence"}),
                                          {.keep_last_frame = true});
    ASSERT_TRUE(receiver);
    EXPECT_EQ(show_until_gone(*receiver), 30U);
    EXPECT_EQ(receiver->received_count(), 30U);
    expect_exit(child);
}

TEST_F(FrameProcessTest, ResizeMidRunRetiresTheOldImagesOnBothSides) {
    ChildProcess child;
    auto receiver = FrameReceiver::create(
        spawn_peer(child, {"--role=producer", "--frames=40", "--images=3", "--resize-at=20"}), {.keep_last_frame = true});
    ASSERT_TRUE(receiver);
    std::uint64_t last = 0;
    std::vector<std::uint32_t> widths;
    while (true) {
        auto frame = receiver->wait_for_frame(last, 5s);
        if (!frame) break;
        expect_stamp(*frame);
        if (widths.empty() || widths.back() != frame->image->width()) widths.push_back(frame->image->width());
        last = frame->frame_number;
    }
    EXPECT_EQ(widths, (std::vector<std::uint32_t>{64, 128}));
    EXPECT_LE(receiver->image_count(), 1U) << "the old set was retired, the new one left with the producer";
    expect_exit(child);
}

TEST_F(FrameProcessTest, ConsumerDeathReclaimsImagesAndAHostCanResumeWithANewOne) {
    ChildProcess child;
    auto sender = FrameSender::create(spawn_peer(child, {"--role=consumer", "--frames=1000", "--images=0", "--die-after=5"}));
    ASSERT_TRUE(sender);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(sender->add_image(allocate()));
    Result<FrameSender::FreeImage> free_image = make_error(Errc::invalid_argument, "not yet");
    while ((free_image = sender->wait_for_free_image(5s))) {
        ASSERT_TRUE(testing::stamp_image(*sender->image(free_image->id), sender->next_frame_number()));
        if (auto presented = sender->present(free_image->id); !presented) {
            // A send never reads: the dispatch after it reads the consumer's end.
            EXPECT_EQ(presented.error().code, Errc::peer_closed) << presented.error().message;
            EXPECT_EQ(sender->dispatch().error().code, Errc::peer_closed);
            break;
        }
    }
    if (!free_image) {
        EXPECT_EQ(free_image.error().code, Errc::peer_closed) << free_image.error().message;
    }
    EXPECT_FALSE(sender->is_open());
    EXPECT_GE(sender->reclaimed_count(), 1U) << "the image the consumer held came back";
    for (std::uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(sender->state(id), FrameImageState::free);
    expect_exit(child, /*killed=*/true);

    ASSERT_TRUE(sender->resume(spawn_peer(child, {"--role=consumer", "--frames=20", "--images=0"})));
    render(*sender, 20);
    sender->close();
    expect_exit(child);
}

TEST_F(FrameProcessTest, ProducerDeathKeepsTheLastFrameUntilANewProducerPresents) {
    ChildProcess child;
    auto receiver = FrameReceiver::create(
        spawn_peer(child, {"--role=producer", "--frames=1000", "--die-after=7"}), {.keep_last_frame = true});
    ASSERT_TRUE(receiver);
    show_until_gone(*receiver);
    expect_exit(child, /*killed=*/true);
    auto kept = receiver->current();
    ASSERT_TRUE(kept);
    EXPECT_TRUE(kept->producer_gone);
    EXPECT_EQ(kept->image_id, retained_image_id);
    EXPECT_EQ(kept->frame_number, 7U);
    expect_stamp(*kept);
    EXPECT_EQ(receiver->image_count(), 1U) << "only the kept frame is left";

    ASSERT_TRUE(receiver->resume(spawn_peer(child, {"--role=producer", "--frames=10"})));
    auto first = receiver->wait_for_frame(0, 5s);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_NE(first->image_id, retained_image_id);
    EXPECT_EQ(receiver->image(retained_image_id), nullptr) << "the kept frame went with the first new one";
    EXPECT_EQ(show_until_gone(*receiver, first->frame_number), 10U);
    expect_exit(child);
}

TEST_F(FrameProcessTest, HostImagesAreSharedAgainWithARespawnedRenderer) {
    ChildProcess child;
    auto receiver = FrameReceiver::create(
        spawn_peer(child, {"--role=producer", "--frames=1000", "--images=0", "--die-after=9"}),
        {.keep_last_frame = true});
    ASSERT_TRUE(receiver);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(receiver->add_image(allocate()));
    show_until_gone(*receiver);
    expect_exit(child, /*killed=*/true);
    ASSERT_TRUE(receiver->current());
    const std::uint64_t kept_id = receiver->current()->image_id;
    EXPECT_TRUE(receiver->is_local(kept_id)) << "the host's own image is kept under its own id";
    EXPECT_EQ(receiver->image_count(), 3U);

    const std::size_t before = receiver->received_count();
    ASSERT_TRUE(receiver->resume(spawn_peer(child, {"--role=producer", "--frames=30", "--images=0"})));
    EXPECT_EQ(show_until_gone(*receiver), 30U);
    EXPECT_EQ(receiver->received_count() - before, 30U);
    EXPECT_EQ(receiver->image_count(), 3U);
    expect_exit(child);
}

TEST_F(FrameProcessTest, AStalledConsumerTimesOutAndItsDeathIsSeenAtOnce) {
    ChildProcess child;
    auto sender = FrameSender::create(spawn_peer(child, {"--role=consumer", "--frames=1000", "--images=0", "--stall-after=2"}));
    ASSERT_TRUE(sender);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(sender->add_image(allocate()));
    Result<FrameSender::FreeImage> free_image = make_error(Errc::invalid_argument, "not yet");
    while ((free_image = sender->wait_for_free_image(300ms))) {
        ASSERT_TRUE(testing::stamp_image(*sender->image(free_image->id), sender->next_frame_number()));
        ASSERT_TRUE(sender->present(free_image->id));
    }
    EXPECT_EQ(free_image.error().code, Errc::timed_out) << free_image.error().message;
    EXPECT_NE(free_image.error().message.find("no release from the consumer within 300 ms"), std::string::npos);
    ASSERT_TRUE(child.signal(SIGKILL));
    auto after_kill = sender->wait_for_free_image(5s);
    ASSERT_FALSE(after_kill);
    EXPECT_EQ(after_kill.error().code, Errc::peer_closed);
    EXPECT_EQ(sender->reclaimed_count(), 3U) << "all three were held or in flight";
    expect_exit(child, /*killed=*/true);
}

TEST_F(FrameProcessTest, AStalledProducerTimesOut) {
    ChildProcess child;
    auto receiver = FrameReceiver::create(spawn_peer(child, {"--role=producer", "--frames=1000", "--stall-after=3"}));
    ASSERT_TRUE(receiver);
    std::uint64_t last = 0;
    Result<FrameReceiver::Frame> frame = make_error(Errc::invalid_argument, "not yet");
    while ((frame = receiver->wait_for_frame(last, 300ms))) last = frame->frame_number;
    EXPECT_EQ(last, 3U);
    EXPECT_EQ(frame.error().code, Errc::timed_out) << frame.error().message;
}

// One host, sixteen renderer children, one epoll loop over their channels and pidfds.
TEST_F(FrameProcessTest, SixteenChildrenServedByOneEpollLoop) {
    constexpr std::size_t children = 16;
    constexpr std::uint64_t frames = 50;
    UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    ASSERT_TRUE(epoll.valid());
    std::vector<ChildProcess> processes(children);
    std::vector<std::optional<FrameReceiver>> receivers(children);
    std::vector<std::uint64_t> last(children, 0);
    for (std::size_t i = 0; i < children; ++i) {
        auto receiver = FrameReceiver::create(
            spawn_peer(processes[i], {"--role=producer", fmt::format("--frames={}", frames), "--images=3"}),
            {.keep_last_frame = true});
        ASSERT_TRUE(receiver);
        receivers[i].emplace(std::move(*receiver));
        epoll_event channel_event{EPOLLIN, {.u64 = i}};
        ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, receivers[i]->native_handle().get(), &channel_event), 0);
        epoll_event exit_event{EPOLLIN, {.u64 = children + i}};
        ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, processes[i].pidfd().get(), &exit_event), 0);
    }
    std::size_t open = children, exited = 0;
    while (open > 0 || exited < children) {
        std::array<epoll_event, 32> events{};
        const int ready = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), 10000);
        ASSERT_GT(ready, 0) << "nothing happened for 10 s";
        for (int e = 0; e < ready; ++e) {
            const std::size_t i = events[e].data.u64;
            if (i >= children) {  // a child exited: reap it, and stop watching its pidfd
                ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, processes[i - children].pidfd().get(), nullptr), 0);
                expect_exit(processes[i - children]);
                ++exited;
                continue;
            }
            FrameReceiver& receiver = *receivers[i];
            auto handled = receiver.dispatch();
            auto frame = receiver.current();
            if (frame && frame->frame_number > last[i]) {
                expect_stamp(*frame);
                last[i] = frame->frame_number;
            }
            if (!handled) {
                ASSERT_EQ(handled.error().code, Errc::peer_closed) << "child " << i << ": " << handled.error().message;
                // The receiver closed the socket: epoll forgets it with the file.
                --open;
            }
        }
    }
    for (std::size_t i = 0; i < children; ++i) {
        EXPECT_EQ(last[i], frames) << "child " << i;
        EXPECT_EQ(receivers[i]->received_count(), frames) << "child " << i;
    }
}

}  // namespace
}  // namespace texshare
