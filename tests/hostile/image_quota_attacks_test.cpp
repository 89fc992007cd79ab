// A peer filling the other side's image table (issue 13, item 4): each side decides how many
// images the other may add (FrameReceiverOptions::max_producer_images,
// FrameSenderOptions::max_consumer_images), so the slots of its own images are never
// taken. Beyond the quota an add_image is refused (Errc::rejected, naming quota and count),
// its fds closed, and the peer told (FrameKind::refused).
#include <sys/socket.h>

#include "hostile/hostile_peer.hpp"
#include "support/frame_state.hpp"

namespace texshare::hostile {
namespace {

using testing::open_fd_count;

DmaBufImage small_image() { return MemfdAllocator().allocate(8, 8, DRM_FORMAT_ARGB8888).value(); }

// The victim's answers the attacker reads: (kind, image id), fds closed.
std::vector<std::pair<FrameKind, std::uint64_t>> answers(int socket) {
    std::vector<std::pair<FrameKind, std::uint64_t>> out;
    while (true) {
        std::byte buffer[512];
        alignas(cmsghdr) std::byte control[256];
        iovec io{buffer, sizeof buffer};
        msghdr header{};
        header.msg_iov = &io;
        header.msg_iovlen = 1;
        header.msg_control = control;
        header.msg_controllen = sizeof control;
        const ssize_t got = ::recvmsg(socket, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (got <= 0) return out;
        for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
            for (std::size_t i = 0; c->cmsg_type == SCM_RIGHTS && i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
                int fd = -1;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                ::close(fd);
            }
        }
        FrameMessage message;
        if (static_cast<std::size_t>(got) != 9 + sizeof message) continue;
        std::memcpy(&message, buffer + 9, sizeof message);
        out.emplace_back(static_cast<FrameKind>(message.kind), message.image_id);
    }
}

template <typename Victim>
class QuotaAttack : public HostilePeerTest<Victim> {
protected:
    // A victim with these options instead of the fixture's default one.
    void recreate(typename Victim::Options options) {
        this->victim_.reset();
        int ends[2] = {-1, -1};
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
        this->attacker_.reset(ends[0]);
        auto victim = Victim::create(FrameChannel::adopt(UniqueFd(ends[1])).value(), options);
        ASSERT_TRUE(victim) << victim.error().message;
        this->victim_.emplace(std::move(*victim));
        this->greet();
    }
    // Sends `count` images from `first` on, dispatching after each; returns how many the
    // victim refused (each with Errc::rejected naming `needle`).
    int flood(std::uint64_t first, int count, const std::string& needle) {
        int refused = 0;
        for (std::uint64_t id = first; id < first + static_cast<std::uint64_t>(count); ++id) {
            this->send_image(id);
            auto handled = this->victim_->dispatch();
            if (handled) continue;
            testing::expect_error(handled.error(), Errc::rejected, needle);
            ++refused;
        }
        return refused;
    }
    std::size_t fill_with_own_images() {
        std::size_t added = 0;
        while (this->victim_->add_image(small_image())) ++added;
        return added;
    }
};

using HostileProducer = QuotaAttack<FrameReceiver>;
using HostileConsumer = QuotaAttack<FrameSender>;

// The case: a renderer adds 13 images (of 16 slots) and never answers; the host's
// own add_image must still find its slots.
TEST_F(HostileProducer, ThirteenImagesLeaveTheHostItsOwnSlots) {
    const int fds_before = open_fd_count();
    EXPECT_EQ(flood(1, 13, "the producer already has 8 images here, its quota "
                           "(FrameReceiverOptions::max_producer_images) is 8; refused, and the producer told so"),
              5);
    EXPECT_EQ(victim_->image_count(), 8U);
    EXPECT_EQ(open_fd_count(), fds_before + 8) << "one fd per accepted image, the refused ones closed";
    const auto told = answers(attacker_.get());
    ASSERT_EQ(told.size(), 5U);
    for (std::size_t i = 0; i < told.size(); ++i) {
        EXPECT_EQ(told[i], std::make_pair(FrameKind::refused, std::uint64_t{9 + i}));
    }
    EXPECT_EQ(fill_with_own_images(), max_frame_images - 8) << "the host's own slots were taken";
}

TEST_F(HostileProducer, QuotaZeroRefusesEveryImageOfTheProducer) {
    recreate({.max_producer_images = 0});
    const int fds_before = open_fd_count();
    EXPECT_EQ(flood(1, 3, "its quota (FrameReceiverOptions::max_producer_images) is 0"), 3);
    EXPECT_EQ(victim_->image_count(), 0U);
    EXPECT_EQ(open_fd_count(), fds_before);
    EXPECT_EQ(fill_with_own_images(), max_frame_images);
}

// A present of an image refused for quota that crossed the refusal is released back, not
// blamed; a retire of it is answered.
TEST_F(HostileProducer, PresentAndRetireOfAnImageRefusedForQuotaAreAnswered) {
    recreate({.max_producer_images = 1});
    send_image(1);
    send_image(2);
    ASSERT_FALSE(victim_->dispatch());  // 2 refused
    send(make_frame_message(FrameKind::present, 2, 1));
    send(make_frame_message(FrameKind::retire, 2));
    auto handled = victim_->dispatch();
    ASSERT_TRUE(handled) << handled.error().message;
    EXPECT_EQ(victim_->skipped_count(), 1U);
    EXPECT_FALSE(victim_->current());
    const auto told = answers(attacker_.get());
    EXPECT_EQ(told, (std::vector<std::pair<FrameKind, std::uint64_t>>{
                        {FrameKind::refused, 2}, {FrameKind::release, 2}, {FrameKind::retired, 2}}));
}

TEST_F(HostileProducer, QuotaReachedThenARetiredImageFreesAPlace) {
    recreate({.max_producer_images = 2});
    EXPECT_EQ(flood(1, 3, "the producer already has 2 images here"), 1);
    send(make_frame_message(FrameKind::retire, 1));
    ASSERT_TRUE(victim_->dispatch());
    EXPECT_EQ(flood(4, 1, ""), 0) << "the retired image's place is free again";
    EXPECT_NE(victim_->image(4), nullptr);
    EXPECT_EQ(flood(5, 1, "the producer already has 2 images here"), 1);
    send(make_frame_message(FrameKind::retire, 4));
    ASSERT_TRUE(victim_->dispatch());
    expect_still_usable();
}

// The quota counts the current producer's images only: a dead producer's kept frame does
// not stop the next one from adding the image whose present replaces it.
TEST_F(HostileProducer, AKeptFrameDoesNotCountAgainstTheNextProducer) {
    recreate({.keep_last_frame = true, .max_producer_images = 1});
    send_image(1);
    send(make_frame_message(FrameKind::present, 1, 1));
    ASSERT_TRUE(victim_->dispatch());
    attacker_.reset();
    ASSERT_FALSE(victim_->dispatch());
    ASSERT_EQ(victim_->current()->image_id, retained_image_id);
    int ends[2] = {-1, -1};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
    attacker_.reset(ends[0]);
    ASSERT_TRUE(victim_->resume(FrameChannel::adopt(UniqueFd(ends[1])).value()));
    say_hello(attacker_.get(), HelloRole::producer);
    send_image(1);
    send(make_frame_message(FrameKind::present, 1, 1));
    auto handled = victim_->dispatch();
    ASSERT_TRUE(handled) << handled.error().message;
    EXPECT_EQ(victim_->current()->image_id, 1U);
    EXPECT_EQ(victim_->image(retained_image_id), nullptr) << "the kept frame went with the new present";
}

// The same attack the other way: a consumer filling a producer's table.
TEST_F(HostileConsumer, ThirteenImagesLeaveTheProducerItsOwnSlots) {
    const int fds_before = open_fd_count();
    EXPECT_EQ(flood(consumer_image_id_bit | 1, 13,
                    "the consumer already has 8 images here, its quota (FrameSenderOptions::max_consumer_images) is 8"),
              5);
    EXPECT_EQ(open_fd_count(), fds_before + 8);
    EXPECT_EQ(answers(attacker_.get()).size(), 5U);
    EXPECT_EQ(fill_with_own_images(), max_frame_images - 8);
}

TEST_F(HostileConsumer, QuotaZeroRefusesEveryImageOfTheConsumer) {
    recreate({.max_consumer_images = 0});
    EXPECT_EQ(flood(consumer_image_id_bit | 1, 2, "is 0"), 2);
    EXPECT_EQ(fill_with_own_images(), max_frame_images);
}

// The host's own images beyond 16 - quota fill the table: then a peer image under its quota
// finds no slot, and is refused the same way (told, fds closed), not taken as a broken peer.
TEST_F(HostileProducer, AFullTableRefusesThePeerUnderItsQuotaToo) {
    EXPECT_EQ(fill_with_own_images(), max_frame_images);
    const int fds_before = open_fd_count();
    EXPECT_EQ(flood(1, 1, "all 16 image slots are in use (0 of them the producer's)"), 1);
    EXPECT_EQ(open_fd_count(), fds_before);
    EXPECT_EQ(answers(attacker_.get()).back(), std::make_pair(FrameKind::refused, std::uint64_t{1}));
}

TEST(FrameQuotaOptions, AQuotaAboveTheTableIsRefused) {
    auto pair = FrameChannel::create_pair();
    ASSERT_TRUE(pair);
    auto receiver = FrameReceiver::create(std::move(pair->first), {.max_producer_images = max_frame_images + 1});
    ASSERT_FALSE(receiver);
    testing::expect_error(receiver.error(), Errc::invalid_argument, "max_producer_images 17 is more than the table's 16");
    auto sender = FrameSender::create(std::move(pair->second), {.max_consumer_images = 100});
    ASSERT_FALSE(sender);
    testing::expect_error(sender.error(), Errc::invalid_argument, "max_consumer_images 100");
}

}  // namespace
}  // namespace texshare::hostile
