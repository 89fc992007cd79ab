// A refused message leaves no trace (issue 13, item 3): table-driven over every message
// kind, against both endpoints. Each case builds a rich state (local and peer images, a
// current frame with its acquire fence, a released image with its release fence, a retiring
// image, an id refused for quota, the peer's format table), takes a summary of the whole
// endpoint (tests/support/frame_state.hpp), sends one message the endpoint must refuse (or
// makes one call that must fail: the peer gone, its socket full), and checks the error,
// that the summary is equal, that the peer was told nothing, and that the endpoint still
// works afterwards. Named cases from the issue follow the tables.
#include <sys/socket.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "hostile/hostile_peer.hpp"
#include "support/frame_fd_limit.hpp"
#include "support/frame_state.hpp"

namespace texshare::hostile {
namespace {

using testing::state_of;

// What the attacker read from the victim: (kind, image id) per frame message; the victim's
// filler records (see fill_send_buffer) are skipped, fds closed.
using Told = std::vector<std::pair<FrameKind, std::uint64_t>>;

template <typename Victim>
struct RefusalFixture : testing::FdLeakTest {
    void SetUp() override {
        FdLeakTest::SetUp();
        connect();
    }
    void TearDown() override {
        victim_.reset();
        attacker_.reset();
        FdLeakTest::TearDown();
    }

    // features: what the attacker's hello offers (pacing only: no feedback is agreed, and
    // the endpoints answer as before protocol 2; the protocol 2 tables offer both).
    void connect(typename Victim::Options options = quota_options(),
                 std::uint64_t features = hello_feature_pacing) {
        victim_.reset();
        int ends[2] = {-1, -1};
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
        attacker_.reset(ends[0]);
        auto channel = FrameChannel::adopt(UniqueFd(ends[1]));
        ASSERT_TRUE(channel);
        auto victim = Victim::create(std::move(*channel), options);
        ASSERT_TRUE(victim) << victim.error().message;
        victim_.emplace(std::move(*victim));
        say_hello(attacker_.get(), attacker_role<Victim>, features);
        pump();
        (void)told();  // the victim's hello
    }
    // Five images of the peer's at a time, so the rich state can use the quota.
    static typename Victim::Options quota_options();

    void send(const FrameMessage& message, std::uint8_t mask = 0, const std::vector<int>& fds = {}) {
        const auto bytes = frame_bytes(message, mask);
        ASSERT_EQ(send_raw(attacker_.get(), bytes, fds.empty() ? std::vector<ControlMessage>{} : std::vector{rights(fds)}),
                  static_cast<ssize_t>(bytes.size()));
    }
    void send_image(std::uint64_t id, std::uint32_t width = 16) {
        UniqueFd memory = sealed_memfd(16 * 16 * 4);
        send(add_image_message(id, width), 1, {memory.get()});
    }
    Result<void> dispatched() {
        auto handled = victim_->dispatch();
        if (!handled) return std::move(handled).error();
        return {};
    }
    void pump() {
        auto handled = victim_->dispatch();
        ASSERT_TRUE(handled) << handled.error().message;
    }

    Told told() {
        Told out;
        while (true) {
            std::byte buffer[512];
            alignas(cmsghdr) std::byte control[256];
            iovec io{buffer, sizeof buffer};
            msghdr header{};
            header.msg_iov = &io;
            header.msg_iovlen = 1;
            header.msg_control = control;
            header.msg_controllen = sizeof control;
            const ssize_t got = ::recvmsg(attacker_.get(), &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
            if (got <= 0) return out;
            for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
                for (std::size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
                    int fd = -1;
                    std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    ::close(fd);
                }
            }
            constexpr std::size_t header_bytes = 8 + 1;  // magic, size, slot mask
            if (static_cast<std::size_t>(got) != header_bytes + sizeof(FrameMessage)) continue;  // filler
            FrameMessage message;
            std::memcpy(&message, buffer + header_bytes, sizeof message);
            out.emplace_back(static_cast<FrameKind>(message.kind), message.image_id);
        }
    }

    // Fills the victim's socket send buffer with one-byte records (the attacker does not
    // read them): every send of the victim then fails with EAGAIN, as against a peer that
    // stopped reading. Returns how many went in.
    int fill_send_buffer() {
        int records = 0;
        while (::send(victim_->native_handle().get(), "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) ++records;
        EXPECT_EQ(errno, EAGAIN);
        return records;
    }
    // Then room for exactly one more message: the kernel admits a send while the buffer's
    // use is below its size, and one filler record read brings it just below.
    void leave_room_for_one() {
        char byte;
        EXPECT_EQ(::recv(attacker_.get(), &byte, 1, MSG_DONTWAIT), 1);
    }

    void probe_usable();

    UniqueFd attacker_;
    std::optional<Victim> victim_;
    std::uint64_t local_a_ = 0, local_b_ = 0, local_c_ = 0, local_d_ = 0;
};

template <>
FrameReceiver::Options RefusalFixture<FrameReceiver>::quota_options() {
    return {.max_producer_images = 5};
}
template <>
FrameSender::Options RefusalFixture<FrameSender>::quota_options() {
    return {.max_consumer_images = 5};
}

// A consumer that survived: a fresh image and a present of it (after every frame so far) work.
template <>
void RefusalFixture<FrameReceiver>::probe_usable() {
    send_image(900);
    send(make_frame_message(FrameKind::present, 900, 1'000'000));
    pump();
    ASSERT_TRUE(victim_->current());
    EXPECT_EQ(victim_->current()->image_id, 900U);
    EXPECT_EQ(victim_->current()->frame_number, 1'000'000U);
}
// A producer that survived: it adds an image of its own and presents it.
template <>
void RefusalFixture<FrameSender>::probe_usable() {
    auto id = victim_->add_image(MemfdAllocator().allocate(8, 8, DRM_FORMAT_ARGB8888).value());
    ASSERT_TRUE(id) << id.error().message;
    auto presented = victim_->present(*id);
    ASSERT_TRUE(presented) << presented.error().message;
}

using ConsumerFixture = RefusalFixture<FrameReceiver>;
using ProducerFixture = RefusalFixture<FrameSender>;

DmaBufImage small_image() { return MemfdAllocator().allocate(8, 8, DRM_FORMAT_ARGB8888).value(); }

// presented for the present of `id` as `frame`, shown at time 5 (zero-copy), answering
// begin_frame `sequence`; tamper changes a field of the feedback.
FrameMessage presented_message(std::uint64_t id, std::uint64_t frame, std::uint64_t sequence = 0,
                               void (*tamper)(PresentationFeedback&) = nullptr,
                               FrameKind kind = FrameKind::presented) {
    FrameMessage m = make_frame_message(kind, id, frame);
    PresentationFeedback feedback{kind == FrameKind::presented ? 5 : 0, sequence,
                                  kind == FrameKind::presented ? presented_flag_zero_copy : 0U, 0};
    if (tamper != nullptr) tamper(feedback);
    m.set_payload(feedback);
    return m;
}

// The consumer's rich state: its own images A (shared) and B (retiring); the producer's
// images 1, 2, 3 (4 and 5 came and were retired, 6 refused for quota); frame 5 of image 2
// current with an acquire fence; image 1 shown before and released.
void consumer_state(ConsumerFixture& f) {
    f.local_a_ = f.victim_->add_image(small_image()).value();
    f.local_b_ = f.victim_->add_image(small_image()).value();
    ASSERT_TRUE(f.victim_->retire(f.local_b_));
    for (std::uint64_t id = 1; id <= 5; ++id) f.send_image(id);
    f.send(make_frame_message(FrameKind::present, 1, 1));
    testing::Fence fence;
    f.send(as_sync_file(make_frame_message(FrameKind::present, 2, 5)), 1 << frame_fence_slot, {fence.read_end.get()});
    f.pump();
    f.send_image(6);
    auto refused = f.dispatched();
    ASSERT_FALSE(refused);
    testing::expect_error(refused.error(), Errc::rejected, "its quota (FrameReceiverOptions::max_producer_images) is 5");
    f.send(make_frame_message(FrameKind::retire, 4));
    f.send(make_frame_message(FrameKind::retire, 5));
    f.pump();
    (void)f.told();
    ASSERT_EQ(f.victim_->current()->image_id, 2U);
}

// The producer's rich state: its own images A (released with an untaken release fence),
// B (presented), C (retiring), D (free); the consumer's images c1, c2, c3 (c4 and c5 came
// and were retired, c6 refused for quota) and its format table.
constexpr std::uint64_t c(std::uint64_t n) { return consumer_image_id_bit | n; }

void producer_state(ProducerFixture& f) {
    f.local_a_ = f.victim_->add_image(small_image()).value();
    f.local_b_ = f.victim_->add_image(small_image()).value();
    f.local_c_ = f.victim_->add_image(small_image()).value();
    f.local_d_ = f.victim_->add_image(small_image()).value();
    ASSERT_TRUE(f.victim_->present(f.local_a_));
    ASSERT_TRUE(f.victim_->present(f.local_b_));
    ASSERT_TRUE(f.victim_->retire(f.local_c_));
    testing::Fence fence;
    if (f.victim_->has_feedback()) f.send(presented_message(f.local_a_, 1));  // protocol 2: feedback first
    f.send(as_sync_file(make_frame_message(FrameKind::release, f.local_a_)), 1 << frame_fence_slot, {fence.read_end.get()});
    for (std::uint64_t n = 1; n <= 5; ++n) f.send_image(c(n));
    auto table = encode_format_table(FormatTable{0xe200, {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}}});
    ASSERT_TRUE(table);
    f.send(make_frame_message(FrameKind::capabilities, 0), 1, {table->get()});
    f.pump();
    f.send_image(c(6));
    auto refused = f.dispatched();
    ASSERT_FALSE(refused);
    testing::expect_error(refused.error(), Errc::rejected, "its quota (FrameSenderOptions::max_consumer_images) is 5");
    f.send(make_frame_message(FrameKind::retire, c(4)));
    f.send(make_frame_message(FrameKind::retire, c(5)));
    f.pump();
    (void)f.told();
    ASSERT_EQ(f.victim_->state(f.local_b_), FrameImageState::presented);
}

template <typename Fixture>
struct RefusalCase {
    const char* name;
    FrameKind kind;  // the message kind the case is about (for local calls: the one the call sends)
    std::function<void(Fixture&)> prelude;  // more state first (must succeed); may be empty
    std::function<Result<void>(Fixture&)> attack;  // sends and dispatches, or calls
    Errc code;
    std::string needle;
    bool peer_gone = false;  // the attack closed the peer: no probe afterwards
    std::function<void(Fixture&)> before_probe = {};  // makes room for the probe's image

    friend void PrintTo(const RefusalCase& test, std::ostream* out) { *out << test.name; }
};

template <typename Fixture>
std::string case_name(const ::testing::TestParamInfo<RefusalCase<Fixture>>& info) {
    return info.param.name;
}

// One message, then dispatch.
template <typename Fixture>
std::function<Result<void>(Fixture&)> message(FrameMessage m, std::uint8_t mask = 0, int fd_kind = 0) {
    return [m, mask, fd_kind](Fixture& f) {
        std::vector<UniqueFd> owned;
        std::vector<int> fds;
        for (int slot = 0; slot < 8; ++slot) {
            if ((mask >> slot & 1U) == 0) continue;
            owned.push_back(fd_kind == 0 ? sealed_memfd(16 * 16 * 4) : UniqueFd(::memfd_create("x", MFD_CLOEXEC)));
            fds.push_back(owned.back().get());
        }
        f.send(m, mask, fds);
        return f.dispatched();
    };
}
template <typename Fixture>
std::function<Result<void>(Fixture&)> image(std::uint64_t id, std::uint32_t width = 16) {
    return [id, width](Fixture& f) {
        f.send_image(id, width);
        return f.dispatched();
    };
}
template <typename Fixture>
std::function<Result<void>(Fixture&)> with_full_buffer(std::function<Result<void>(Fixture&)> attack) {
    return [attack](Fixture& f) {
        f.fill_send_buffer();
        return attack(f);
    };
}
template <typename Fixture>
std::function<Result<void>(Fixture&)> with_peer_gone(std::function<Result<void>(Fixture&)> attack) {
    return [attack](Fixture& f) {
        f.attacker_.reset();
        return attack(f);
    };
}

FrameMessage with_reserved(FrameMessage m) {
    m.reserved = 7;
    return m;
}
FrameMessage with_frame(FrameMessage m, std::uint64_t frame) {
    m.frame_number = frame;
    return m;
}
FrameMessage with_payload_tail_byte(FrameMessage m) {
    m.payload[frame_payload_bytes - 1] = std::byte{1};
    return m;
}
// An add_image whose colour (descriptor version 3, color_info.hpp) `edit` tampers with.
template <typename Edit>
FrameMessage with_colour(std::uint64_t id, Edit edit) {
    FrameMessage m = add_image_message(id);
    m.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { edit(d.color); });
    return m;
}
FrameMessage of_kind(std::uint32_t kind, std::uint64_t id) {
    FrameMessage m = make_frame_message(FrameKind::bye, id);
    m.kind = kind;
    return m;
}
// Timeline sync (issue 16 item 6): the timeline message and a point on present / release.
FrameMessage timeline_message() {
    FrameMessage m = make_frame_message(FrameKind::timeline, 0);
    m.fence_kind = static_cast<std::uint8_t>(FenceKind::drm_syncobj_timeline);
    return m;
}
FrameMessage with_point(FrameMessage m, std::uint64_t point) {
    m.fence_kind = static_cast<std::uint8_t>(FenceKind::drm_syncobj_timeline);
    m.fence_point = point;
    return m;
}
FrameMessage misnamed_image(std::uint64_t id) {
    FrameMessage m = add_image_message(id);
    m.edit_payload<ImageDescriptor>([&](ImageDescriptor& d) { d.image_id = id + 1; });
    return m;
}

constexpr std::uint8_t fence_slot = 1 << frame_fence_slot;
constexpr auto does_not_read = "does not read its messages";

// A present of `id` as `frame` whose metadata `tamper` sets (one damage rect, the whole
// 16x16 image, to start from).
FrameMessage present_with(std::uint64_t id, std::uint64_t frame, void (*tamper)(PresentMetadata&)) {
    FrameMessage m = make_frame_message(FrameKind::present, id, frame);
    PresentMetadata metadata;
    metadata.damage_count = 1;
    metadata.damage[0] = DamageRect{0, 0, 16, 16};
    tamper(metadata);
    m.set_payload(metadata);
    return m;
}
FrameMessage begin_frame_message(std::uint64_t sequence, std::int64_t target = 100, std::uint64_t id = 0) {
    FrameMessage m = make_frame_message(FrameKind::begin_frame, id);
    m.set_payload(BeginFrame{sequence, target, 16'666'667});
    return m;
}
FrameMessage with_fence_point(FrameMessage m) {
    m.fence_point = 5;
    return m;
}
FrameMessage second_hello(HelloRole role) { return make_hello_message(role, hello_feature_pacing); }

// ---- the consumer (FrameReceiver) against a hostile producer ----------------------------

using ConsumerCase = RefusalCase<ConsumerFixture>;
using C = ConsumerFixture;
template <typename Call>
std::function<Result<void>(C&)> call_c(Call make) {
    return [make](C& f) -> Result<void> {
        auto result = make(f);
        if (!result) return std::move(result).error();
        return {};
    };
}
const auto hold_retiring = [](C& f) {  // the producer retires image 2 while it is shown
    f.send(make_frame_message(FrameKind::retire, 2));
    f.pump();
};
const auto producer_at_quota = [](C& f) {  // 7 and 8: five images of the producer's
    f.send_image(7);
    f.send_image(8);
    f.pump();
};
const auto retire_7_and_8 = [](C& f) {  // room again for the probe's image
    f.send(make_frame_message(FrameKind::retire, 7));
    f.send(make_frame_message(FrameKind::retire, 8));
    f.pump();
};

const ConsumerCase consumer_cases[] = {
    // add_image
    {"AddImageOfAnIdInUse", FrameKind::add_image, {}, image<C>(1), Errc::protocol, "already in use"},
    {"AddImageOfIdZero", FrameKind::add_image, {}, image<C>(0), Errc::protocol, "image id 0"},
    {"AddImageInTheConsumersIdSpace", FrameKind::add_image, {}, image<C>(c(9)), Errc::protocol,
     "not in the peer's id space"},
    {"AddImageOfTheRetainedId", FrameKind::add_image, {}, image<C>(retained_image_id), Errc::protocol,
     "not in the peer's id space"},
    {"AddImageWhosePlaneIsLargerThanItsFd", FrameKind::add_image, {}, image<C>(8, 64), Errc::rejected,
     "but its fd holds"},
    {"AddImageWhoseDescriptorNamesAnotherId", FrameKind::add_image, {}, message<C>(misnamed_image(8), 1),
     Errc::protocol, "its descriptor names image 9"},
    {"AddImageWithAFenceSlotFd", FrameKind::add_image, {}, message<C>(add_image_message(8), 1 | fence_slot),
     Errc::protocol, "carries an fd in slot 4"},
    {"AddImageWithReservedSet", FrameKind::add_image, {}, message<C>(with_reserved(add_image_message(8)), 1),
     Errc::protocol, "reserved field is 7"},
    {"AddImageRefusedForQuotaWithTheSocketFull", FrameKind::add_image, producer_at_quota,
     with_full_buffer<C>(image<C>(9)), Errc::protocol, does_not_read, false, retire_7_and_8},
    {"AddImageWithAnUnknownColourMatrix", FrameKind::add_image, {},
     message<C>(with_colour(8, [](ColorInfo& c) { c.matrix = static_cast<YuvMatrix>(9); }), 1), Errc::protocol,
     "image 8: colour matrix 9 is unknown"},
    {"AddImageOfRgbWithAYuvRange", FrameKind::add_image, {},
     message<C>(with_colour(8, [](ColorInfo& c) { c.range = YuvRange::full; }), 1), Errc::protocol,
     "are for YUV formats only"},
    // present
    {"PresentOfAnUnknownId", FrameKind::present, {}, message<C>(make_frame_message(FrameKind::present, 77, 9)),
     Errc::protocol, "present of image 77, which is unknown"},
    {"PresentOfTheLastFrameNumberAgain", FrameKind::present, {},
     message<C>(make_frame_message(FrameKind::present, 1, 5)), Errc::protocol, "not after frame 5"},
    {"PresentOfAnEarlierFrameNumber", FrameKind::present, {},
     message<C>(make_frame_message(FrameKind::present, 1, 3)), Errc::protocol, "as frame 3, not after frame 5"},
    {"PresentOfTheHeldImageWithALaterFrame", FrameKind::present, {},
     message<C>(make_frame_message(FrameKind::present, 2, 9)), Errc::protocol, "which this side still holds"},
    {"PresentOfAnImageItRetiresWhileHeld", FrameKind::present, hold_retiring,
     message<C>(make_frame_message(FrameKind::present, 2, 9)), Errc::protocol, "which is retiring"},
    {"PresentOfTheRetainedId", FrameKind::present, {},
     message<C>(make_frame_message(FrameKind::present, retained_image_id, 9)), Errc::protocol, "which is unknown"},
    {"PresentWithAPlaneSlotFd", FrameKind::present, {}, message<C>(make_frame_message(FrameKind::present, 1, 9), 1),
     Errc::protocol, "carries an fd in slot 0"},
    {"PresentWithPayloadBytesPastItsMetadata", FrameKind::present, {},
     message<C>(with_payload_tail_byte(make_frame_message(FrameKind::present, 1, 9))), Errc::protocol,
     "payload byte"},
    {"PresentWhoseReleaseOfTheShownImageCannotBeSent", FrameKind::present, {},
     with_full_buffer<C>(message<C>(make_frame_message(FrameKind::present, 1, 9))), Errc::protocol,
     does_not_read},
    {"PresentOfARefusedImageWhoseReleaseCannotBeSent", FrameKind::present, {},
     with_full_buffer<C>(message<C>(make_frame_message(FrameKind::present, 6, 9))), Errc::protocol,
     does_not_read},
    // release, capabilities: the producer's messages only
    {"ReleaseSentToAConsumer", FrameKind::release, {}, message<C>(make_frame_message(FrameKind::release, 2)),
     Errc::protocol, "release of image 2 sent to a consumer"},
    {"ReleaseWithAFenceSentToAConsumer", FrameKind::release, {},
     message<C>(as_sync_file(make_frame_message(FrameKind::release, 2)), fence_slot), Errc::protocol, "sent to a consumer"},
    {"CapabilitiesSentToAConsumer", FrameKind::capabilities, {},
     message<C>(make_frame_message(FrameKind::capabilities, 0), 1), Errc::protocol, "sent to a consumer"},
    // retire
    {"RetireOfAnUnknownId", FrameKind::retire, {}, message<C>(make_frame_message(FrameKind::retire, 9)),
     Errc::protocol, "retire of image 9, which is unknown"},
    {"RetireOfTheConsumersOwnImage", FrameKind::retire, {},
     [](C& f) { return message<C>(make_frame_message(FrameKind::retire, f.local_a_))(f); }, Errc::protocol,
     "the consumer's own"},
    {"RetireTwiceWhileHeld", FrameKind::retire, hold_retiring, message<C>(make_frame_message(FrameKind::retire, 2)),
     Errc::protocol, "already retiring"},
    {"RetireWithAFrameNumber", FrameKind::retire, {}, message<C>(with_frame(make_frame_message(FrameKind::retire, 3), 3)),
     Errc::protocol, "frame number 3 where none belongs"},
    {"RetireWhoseRetiredCannotBeSent", FrameKind::retire, {},
     with_full_buffer<C>(message<C>(make_frame_message(FrameKind::retire, 3))), Errc::protocol, does_not_read},
    {"RetireOfARefusedImageWhoseRetiredCannotBeSent", FrameKind::retire, {},
     with_full_buffer<C>(message<C>(make_frame_message(FrameKind::retire, 6))), Errc::protocol, does_not_read},
    // retired
    {"RetiredOfAProducersImage", FrameKind::retired, {}, message<C>(make_frame_message(FrameKind::retired, 1)),
     Errc::protocol, "which this side was not retiring"},
    {"RetiredOfAnImageNotRetiring", FrameKind::retired, {},
     [](C& f) { return message<C>(make_frame_message(FrameKind::retired, f.local_a_))(f); }, Errc::protocol,
     "which this side was not retiring"},
    {"RetiredWithAFence", FrameKind::retired, {},
     [](C& f) { return message<C>(make_frame_message(FrameKind::retired, f.local_b_), fence_slot)(f); },
     Errc::protocol, "carries an fd in slot 4"},
    // refused
    {"RefusedOfAnUnknownId", FrameKind::refused, {}, message<C>(make_frame_message(FrameKind::refused, c(40))),
     Errc::protocol, "is unknown"},
    {"RefusedOfAProducersImage", FrameKind::refused, {}, message<C>(make_frame_message(FrameKind::refused, 1)),
     Errc::protocol, "this side did not add"},
    {"RefusedOfAnImageItPresented", FrameKind::refused,
     [](C& f) {
         f.send(make_frame_message(FrameKind::present, f.local_a_, 6));
         f.pump();
     },
     [](C& f) { return message<C>(make_frame_message(FrameKind::refused, f.local_a_))(f); }, Errc::protocol,
     "which the producer presented"},
    // bye, unknown kinds: refused by the envelope check
    {"ByeWithReservedSet", FrameKind::bye, {}, message<C>(with_reserved(make_frame_message(FrameKind::bye, 0))),
     Errc::protocol, "reserved field is 7"},
    {"ByeWithAnFd", FrameKind::bye, {}, message<C>(make_frame_message(FrameKind::bye, 0), fence_slot), Errc::protocol,
     "carries an fd in slot 4"},
    // timeline (this fixture accepts sync_files only)
    {"TimelineOfAKindNotAccepted", FrameKind::timeline, {}, message<C>(timeline_message(), fence_slot),
     Errc::rejected, "timeline of the producer: a fence of kind drm_syncobj_timeline, which this side does not"},
    {"TimelineWithoutItsFd", FrameKind::timeline, {}, message<C>(timeline_message()), Errc::protocol,
     "timeline without the syncobj fd"},
    {"TimelineWithAPoint", FrameKind::timeline, {}, message<C>(with_point(timeline_message(), 3), fence_slot),
     Errc::protocol, "timeline with fence point 3"},
    {"PresentWithAPointOfAKindNotAccepted", FrameKind::present, {},
     message<C>(with_point(make_frame_message(FrameKind::present, 1, 9), 4)), Errc::rejected,
     "a fence of kind drm_syncobj_timeline, which this side does not accept"},
    {"PresentWithAPointAndAnFd", FrameKind::present, {},
     message<C>(with_point(make_frame_message(FrameKind::present, 1, 9), 4), fence_slot), Errc::protocol,
     "which carries a point, not an fd"},
    {"PresentWithTheTimelineKindAndNoPoint", FrameKind::present, {},
     message<C>(with_point(make_frame_message(FrameKind::present, 1, 9), 0)), Errc::protocol,
     "drm_syncobj_timeline without a point"},
    {"KindZero", FrameKind::bye, {}, message<C>(of_kind(0, 1)), Errc::protocol, "unknown kind 0"},
    {"KindFourteen", FrameKind::bye, {}, message<C>(of_kind(14, 1)), Errc::protocol, "unknown kind 14"},
    // the consumer's own calls whose send fails, or that are refused
    {"CallReleaseWithTheSocketFull", FrameKind::release, {},
     with_full_buffer<C>([](C& f) { return f.victim_->release(2); }), Errc::protocol, does_not_read},
    {"CallReleaseWithTheProducerGone", FrameKind::release, {},
     with_peer_gone<C>([](C& f) { return f.victim_->release(2); }), Errc::peer_closed, "the producer is gone", true},
    {"CallReleaseWithAClosedFence", FrameKind::release, {},
     [](C& f) {
         int closed = -1;
         {
             testing::Pipe pipe;
             closed = pipe.read_end.get();
         }
         return f.victim_->release(2, BorrowedFd(closed));
     },
     Errc::fd_not_open, "slot 4"},
    {"CallReleaseOfAnImageNotHeld", FrameKind::release, {}, [](C& f) { return f.victim_->release(1); },
     Errc::invalid_argument, "not held"},
    {"CallRetireWithTheSocketFull", FrameKind::retire, {},
     with_full_buffer<C>([](C& f) { return f.victim_->retire(f.local_a_); }), Errc::protocol, does_not_read},
    {"CallRetireWithTheProducerGone", FrameKind::retire, {},
     with_peer_gone<C>([](C& f) { return f.victim_->retire(f.local_a_); }), Errc::peer_closed, "is gone", true},
    {"CallRetireOfAProducersImage", FrameKind::retire, {}, [](C& f) { return f.victim_->retire(1); },
     Errc::invalid_argument, "only the producer retires it"},
    {"CallRetireTwice", FrameKind::retire, {}, [](C& f) { return f.victim_->retire(f.local_b_); },
     Errc::invalid_argument, "already being retired"},
    {"CallAddImageWithTheSocketFull", FrameKind::add_image, {},
     with_full_buffer<C>([](C& f) -> Result<void> {
         auto id = f.victim_->add_image(small_image());
         if (!id) return std::move(id).error();
         return {};
     }),
     Errc::protocol, does_not_read},
    {"CallAdvertiseWithTheSocketFull", FrameKind::capabilities, {},
     with_full_buffer<C>([](C& f) { return f.victim_->advertise(FormatTable{}); }), Errc::protocol, does_not_read},
    {"CallResumeWhileConnected", FrameKind::add_image, {},
     [](C& f) -> Result<void> {
         auto pair = FrameChannel::create_pair();
         if (!pair) return std::move(pair).error();
         return f.victim_->resume(std::move(pair->first));
     },
     Errc::invalid_argument, "still has a peer"},
};

class ConsumerRefusals : public ConsumerFixture, public ::testing::WithParamInterface<ConsumerCase> {};

TEST_P(ConsumerRefusals, LeaveNoTrace) {
    const ConsumerCase& test = GetParam();
    consumer_state(*this);
    if (test.prelude) test.prelude(*this);
    ASSERT_FALSE(HasFatalFailure());
    (void)told();
    const std::string before = state_of(*victim_);
    auto refused = test.attack(*this);
    ASSERT_FALSE(refused) << "refused nothing; state now:\n" << state_of(*victim_);
    testing::expect_error(refused.error(), test.code, test.needle);
    EXPECT_EQ(state_of(*victim_), before) << "the refused " << to_string(test.kind) << " changed the consumer";
    if (test.peer_gone) return;
    EXPECT_EQ(told(), Told{}) << "the producer was told of a refused " << to_string(test.kind);
    auto pending = victim_->dispatch();
    ASSERT_TRUE(pending) << pending.error().message;
    EXPECT_EQ(*pending, 0U);
    if (test.before_probe) test.before_probe(*this);
    probe_usable();
}

INSTANTIATE_TEST_SUITE_P(EveryKind, ConsumerRefusals, ::testing::ValuesIn(consumer_cases), case_name<ConsumerFixture>);

// ---- the producer (FrameSender) against a hostile consumer ------------------------------

using ProducerCase = RefusalCase<ProducerFixture>;
using P = ProducerFixture;
const auto consumer_at_quota = [](P& f) {  // c7 and c8: five images of the consumer's
    f.send_image(c(7));
    f.send_image(c(8));
    f.pump();
};
template <typename Call>
std::function<Result<void>(P&)> call(Call make) {
    return [make](P& f) -> Result<void> {
        auto result = make(f);
        if (!result) return std::move(result).error();
        return {};
    };
}

const ProducerCase producer_cases[] = {
    // release
    {"ReleaseOfAnUnknownId", FrameKind::release, {}, message<P>(make_frame_message(FrameKind::release, 99)),
     Errc::protocol, "release of image 99, which the consumer does not hold"},
    {"ReleaseOfAnImageNeverPresented", FrameKind::release, {},
     [](P& f) { return message<P>(make_frame_message(FrameKind::release, f.local_d_))(f); }, Errc::protocol,
     "which the consumer does not hold"},
    {"ReleaseTwice", FrameKind::release, {},
     [](P& f) { return message<P>(as_sync_file(make_frame_message(FrameKind::release, f.local_a_)), fence_slot)(f); },
     Errc::protocol, "which the consumer does not hold"},
    {"ReleaseOfTheConsumersOwnImage", FrameKind::release, {}, message<P>(make_frame_message(FrameKind::release, c(1))),
     Errc::protocol, "which the consumer does not hold"},
    {"ReleaseOfARetiringImageNeverHeld", FrameKind::release, {},
     [](P& f) { return message<P>(make_frame_message(FrameKind::release, f.local_c_))(f); }, Errc::protocol,
     "which the consumer does not hold"},
    {"ReleaseWithAPlaneSlotFd", FrameKind::release, {},
     [](P& f) { return message<P>(make_frame_message(FrameKind::release, f.local_b_), 1)(f); }, Errc::protocol,
     "carries an fd in slot 0"},
    {"ReleaseWithAFrameNumber", FrameKind::release, {},
     [](P& f) { return message<P>(with_frame(make_frame_message(FrameKind::release, f.local_b_), 4))(f); },
     Errc::protocol, "frame number 4 where none belongs"},
    // add_image
    {"AddImageInTheProducersIdSpace", FrameKind::add_image, {}, image<P>(40), Errc::protocol,
     "not in the peer's id space"},
    {"AddImageOfAnIdInUse", FrameKind::add_image, {}, image<P>(c(1)), Errc::protocol, "already in use"},
    {"AddImageWhosePlaneIsLargerThanItsFd", FrameKind::add_image, {}, image<P>(c(9), 64), Errc::rejected,
     "but its fd holds"},
    {"AddImageWithAFenceSlotFd", FrameKind::add_image, {}, message<P>(add_image_message(c(9)), 1 | fence_slot),
     Errc::protocol, "carries an fd in slot 4"},
    {"AddImageRefusedForQuotaWithTheSocketFull", FrameKind::add_image, consumer_at_quota,
     with_full_buffer<P>(image<P>(c(9))), Errc::protocol, does_not_read},
    {"AddImageWithAnUnknownTransferFunction", FrameKind::add_image, {},
     message<P>(with_colour(c(9), [](ColorInfo& c) { c.transfer = static_cast<TransferFunction>(6); }), 1),
     Errc::protocol, "colour transfer 6 is unknown"},
    // retire
    {"RetireOfAnUnknownId", FrameKind::retire, {}, message<P>(make_frame_message(FrameKind::retire, c(30))),
     Errc::protocol, "which is unknown"},
    {"RetireOfTheProducersOwnImage", FrameKind::retire, {},
     [](P& f) { return message<P>(make_frame_message(FrameKind::retire, f.local_b_))(f); }, Errc::protocol,
     "the producer's own"},
    {"RetireWhoseRetiredCannotBeSent", FrameKind::retire, {},
     with_full_buffer<P>(message<P>(make_frame_message(FrameKind::retire, c(1)))), Errc::protocol, does_not_read},
    {"RetireOfARefusedImageWhoseRetiredCannotBeSent", FrameKind::retire, {},
     with_full_buffer<P>(message<P>(make_frame_message(FrameKind::retire, c(6)))), Errc::protocol, does_not_read},
    // retired
    {"RetiredOfAnImageNotRetiring", FrameKind::retired, {},
     [](P& f) { return message<P>(make_frame_message(FrameKind::retired, f.local_d_))(f); }, Errc::protocol,
     "which was not retiring"},
    {"RetiredOfTheConsumersImage", FrameKind::retired, {}, message<P>(make_frame_message(FrameKind::retired, c(1))),
     Errc::protocol, "which was not retiring"},
    {"RetiredOfAnUnknownId", FrameKind::retired, {}, message<P>(make_frame_message(FrameKind::retired, 77)),
     Errc::protocol, "which was not retiring"},
    // capabilities
    {"CapabilitiesWithoutATable", FrameKind::capabilities, {},
     message<P>(make_frame_message(FrameKind::capabilities, 0)), Errc::protocol, "without a format table fd"},
    {"CapabilitiesWithAnUnsealedTable", FrameKind::capabilities, {},
     message<P>(make_frame_message(FrameKind::capabilities, 0), 1, 1), Errc::rejected, "missing 0xe"},
    {"CapabilitiesWithAFence", FrameKind::capabilities, {},
     message<P>(make_frame_message(FrameKind::capabilities, 0), fence_slot), Errc::protocol, "carries an fd in slot 4"},
    // refused
    {"RefusedOfAnUnknownId", FrameKind::refused, {}, message<P>(make_frame_message(FrameKind::refused, 55)),
     Errc::protocol, "is unknown"},
    {"RefusedOfTheConsumersImage", FrameKind::refused, {}, message<P>(make_frame_message(FrameKind::refused, c(1))),
     Errc::protocol, "this side did not add"},
    // present, bye, unknown kinds
    {"PresentSentToAProducer", FrameKind::present, {}, message<P>(make_frame_message(FrameKind::present, 1, 1)),
     Errc::protocol, "sent to a producer"},
    {"ByeWithReservedSet", FrameKind::bye, {}, message<P>(with_reserved(make_frame_message(FrameKind::bye, 0))),
     Errc::protocol, "reserved field is 7"},
    {"ByeWithAFrameNumber", FrameKind::bye, {}, message<P>(with_frame(make_frame_message(FrameKind::bye, 0), 1)),
     Errc::protocol, "where none belongs"},
    // timeline (this fixture accepts sync_files only)
    {"TimelineOfAKindNotAccepted", FrameKind::timeline, {}, message<P>(timeline_message(), fence_slot),
     Errc::rejected, "timeline of the consumer: a fence of kind drm_syncobj_timeline, which this side does not"},
    {"ReleaseWithAPointOfAKindNotAccepted", FrameKind::release, {},
     [](P& f) { return message<P>(with_point(make_frame_message(FrameKind::release, f.local_b_), 4))(f); },
     Errc::rejected, "a fence of kind drm_syncobj_timeline, which this side does not accept"},
    {"ReleaseWithAPointOnASyncFileKind", FrameKind::release, {},
     [](P& f) {
         FrameMessage m = with_point(make_frame_message(FrameKind::release, f.local_b_), 4);
         m.fence_kind = static_cast<std::uint8_t>(FenceKind::sync_file);
         return message<P>(m, fence_slot)(f);
     },
     Errc::protocol, "fence point 4 with fence kind sync_file, which has no points"},
    {"KindZero", FrameKind::bye, {}, message<P>(of_kind(0, 1)), Errc::protocol, "unknown kind 0"},
    {"KindFourteen", FrameKind::bye, {}, message<P>(of_kind(14, 1)), Errc::protocol, "unknown kind 14"},
    // the producer's own calls whose send fails, or that are refused
    {"CallPresentWithTheSocketFull", FrameKind::present, {},
     with_full_buffer<P>(call([](P& f) { return f.victim_->present(f.local_d_); })), Errc::protocol, does_not_read},
    {"CallPresentWithTheConsumerGone", FrameKind::present, {},
     with_peer_gone<P>(call([](P& f) { return f.victim_->present(f.local_d_); })), Errc::peer_closed,
     "the consumer is gone", true},
    {"CallPresentWithAClosedFence", FrameKind::present, {},
     call([](P& f) {
         int closed = -1;
         {
             testing::Pipe pipe;
             closed = pipe.read_end.get();
         }
         return f.victim_->present(f.local_d_, BorrowedFd(closed));
     }),
     Errc::fd_not_open, "slot 4"},
    {"CallPresentOfAHeldImage", FrameKind::present, {}, call([](P& f) { return f.victim_->present(f.local_b_); }),
     Errc::invalid_argument, "still held"},
    {"CallPresentWithAnUntakenFence", FrameKind::present, {},
     call([](P& f) { return f.victim_->present(f.local_a_); }), Errc::invalid_argument, "release fence nobody took"},
    {"CallPresentOfARetiringImage", FrameKind::present, {},
     call([](P& f) { return f.victim_->present(f.local_c_); }), Errc::invalid_argument, "being retired"},
    {"CallRetireWithTheSocketFull", FrameKind::retire, {},
     with_full_buffer<P>([](P& f) { return f.victim_->retire(f.local_d_); }), Errc::protocol, does_not_read},
    {"CallRetireWithTheConsumerGone", FrameKind::retire, {},
     with_peer_gone<P>([](P& f) { return f.victim_->retire(f.local_d_); }), Errc::peer_closed, "is gone", true},
    {"CallRetireOfTheConsumersImage", FrameKind::retire, {}, [](P& f) { return f.victim_->retire(c(1)); },
     Errc::invalid_argument, "only the consumer retires it"},
    {"CallAddImageWithTheSocketFull", FrameKind::add_image, {},
     with_full_buffer<P>(call([](P& f) { return f.victim_->add_image(small_image()); })), Errc::protocol,
     does_not_read},
    {"CallAddImageWithTheConsumerGone", FrameKind::add_image, {},
     with_peer_gone<P>(call([](P& f) { return f.victim_->add_image(small_image()); })), Errc::peer_closed, "is gone",
     true},
};

class ProducerRefusals : public ProducerFixture, public ::testing::WithParamInterface<ProducerCase> {};

TEST_P(ProducerRefusals, LeaveNoTrace) {
    const ProducerCase& test = GetParam();
    producer_state(*this);
    if (test.prelude) test.prelude(*this);
    ASSERT_FALSE(HasFatalFailure());
    (void)told();
    const std::string before = state_of(*victim_);
    auto refused = test.attack(*this);
    ASSERT_FALSE(refused) << "refused nothing; state now:\n" << state_of(*victim_);
    testing::expect_error(refused.error(), test.code, test.needle);
    EXPECT_EQ(state_of(*victim_), before) << "the refused " << to_string(test.kind) << " changed the producer";
    if (test.peer_gone) return;
    EXPECT_EQ(told(), Told{}) << "the consumer was told of a refused " << to_string(test.kind);
    auto pending = victim_->dispatch();
    ASSERT_TRUE(pending) << pending.error().message;
    EXPECT_EQ(*pending, 0U);
    probe_usable();
}

INSTANTIATE_TEST_SUITE_P(EveryKind, ProducerRefusals, ::testing::ValuesIn(producer_cases), case_name<ProducerFixture>);

// ---- protocol 2 (pacing, feedback, metadata, hello) against both endpoints ------------------
// The same rich states, with both features agreed (the attacker's hello offers them, the
// producer asked to be paced), and a pacing state on top: the consumer sent begin_frames 1
// and 2 and shows frame 6 of image 3, which answered 1 (its frame 5 of image 2 went back
// discarded); the producer's B (frame 2) awaits feedback and begin_frame 3 is pending.

void consumer_state_2(ConsumerFixture& f) {
    f.connect({.max_producer_images = 5}, hello_feature_pacing | hello_feature_feedback);
    consumer_state(f);
    ASSERT_TRUE(f.victim_->begin_frame(1'000, 16'666'667));
    ASSERT_TRUE(f.victim_->begin_frame(2'000, 16'666'667));
    f.send(present_with(3, 6, [](PresentMetadata& m) { m.begin_frame_sequence = 1; }));
    f.pump();
    (void)f.told();
    ASSERT_EQ(f.victim_->current()->image_id, 3U);
}

void producer_state_2(ProducerFixture& f) {
    f.connect({.max_consumer_images = 5, .paced = true}, hello_feature_pacing | hello_feature_feedback);
    producer_state(f);
    f.send(begin_frame_message(3));
    f.pump();
    (void)f.told();
    ASSERT_EQ(f.victim_->latest_begin_frame().sequence, 3U);
}

const ConsumerCase consumer_cases_2[] = {
    {"HelloAgain", FrameKind::hello, {}, message<C>(second_hello(HelloRole::producer)), Errc::protocol,
     "a second hello from the producer"},
    {"HelloWithAnImageId", FrameKind::hello, {}, message<C>(make_frame_message(FrameKind::hello, 4)),
     Errc::protocol, "hello: image id 4 where none belongs"},
    {"PresentWithUnknownFlags", FrameKind::present, {},
     message<C>(present_with(1, 9, [](PresentMetadata& m) { m.flags = 0x6; })), Errc::protocol,
     "present flags 0x6 has unknown bits 0x6"},
    {"PresentWithANegativeContentTime", FrameKind::present, {},
     message<C>(present_with(1, 9, [](PresentMetadata& m) { m.content_time_ns = -5; })), Errc::protocol,
     "content time -5 ns is negative"},
    {"PresentWithNineRectangles", FrameKind::present, {},
     message<C>(present_with(1, 9, [](PresentMetadata& m) { m.damage_count = 9; })), Errc::protocol,
     "9 damage rectangles, more than 8"},
    {"PresentWithARectangleOutsideTheImage", FrameKind::present, {},
     message<C>(present_with(1, 9, [](PresentMetadata& m) { m.damage[0] = {10, 0, 7, 1}; })), Errc::protocol,
     "damage rectangle 0 (10,0 7x1) is empty or outside the 16x16 image"},
    {"PresentWithARectangleThatWrapsIn32Bits", FrameKind::present, {},
     message<C>(present_with(1, 9, [](PresentMetadata& m) { m.damage[0] = {0xfffffff8U, 0, 16, 1}; })),
     Errc::protocol, "outside the 16x16 image"},
    {"PresentWithAnEmptyRectangle", FrameKind::present, {},
     message<C>(present_with(1, 9, [](PresentMetadata& m) { m.damage[0] = {1, 1, 0, 1}; })), Errc::protocol,
     "is empty or outside"},
    {"PresentWithARectanglePastItsCount", FrameKind::present, {},
     message<C>(present_with(1, 9, [](PresentMetadata& m) { m.damage[5] = {1, 1, 1, 1}; })), Errc::protocol,
     "damage rectangle 5 is set, but the count is 1"},
    {"PresentAnsweringABeginFrameNeverSent", FrameKind::present, {},
     message<C>(present_with(1, 9, [](PresentMetadata& m) { m.begin_frame_sequence = 3; })), Errc::protocol,
     "answers begin_frame 3, which this side never sent (the last is 2)"},
    {"PresentAnsweringABeginFrameAnsweredAlready", FrameKind::present, {},
     message<C>(present_with(1, 9, [](PresentMetadata& m) { m.begin_frame_sequence = 1; })), Errc::protocol,
     "answers begin_frame 1, which is answered already (up to 1)"},
    {"PresentWithAFencePoint", FrameKind::present, {},
     message<C>(with_fence_point(make_frame_message(FrameKind::present, 1, 9))), Errc::protocol,
     "fence point 5 with fence kind none, which has no points"},
    {"PresentWhoseDiscardedOfTheUnshownFrameCannotBeSent", FrameKind::present, {},
     with_full_buffer<C>(message<C>(make_frame_message(FrameKind::present, 1, 9))), Errc::protocol, does_not_read},
    {"BeginFrameSentToAConsumer", FrameKind::begin_frame, {}, message<C>(begin_frame_message(3)), Errc::protocol,
     "begin_frame of image 0 sent to a consumer"},
    {"BeginFrameWithAnImageId", FrameKind::begin_frame, {}, message<C>(begin_frame_message(3, 100, 4)),
     Errc::protocol, "begin_frame: image id 4 where none belongs"},
    {"PresentedSentToAConsumer", FrameKind::presented, {}, message<C>(presented_message(3, 6)), Errc::protocol,
     "presented of image 3 sent to a consumer"},
    {"DiscardedSentToAConsumer", FrameKind::discarded, {},
     message<C>(presented_message(3, 6, 0, nullptr, FrameKind::discarded)), Errc::protocol,
     "discarded of image 3 sent to a consumer"},
    {"TimelineWithoutItsFenceKind", FrameKind::timeline, {}, message<C>(make_frame_message(FrameKind::timeline, 0)),
     Errc::protocol, "timeline with fence kind none, not drm_syncobj_timeline"},
    // the consumer's own protocol 2 calls
    {"CallBeginFrameWithTheSocketFull", FrameKind::begin_frame, {},
     with_full_buffer<C>(call_c([](C& f) { return f.victim_->begin_frame(3'000, 1); })), Errc::protocol,
     does_not_read},
    {"CallBeginFrameWithTheProducerGone", FrameKind::begin_frame, {},
     with_peer_gone<C>(call_c([](C& f) { return f.victim_->begin_frame(3'000, 1); })), Errc::peer_closed,
     "the producer is gone", true},
    {"CallBeginFrameWithoutATargetTime", FrameKind::begin_frame, {},
     call_c([](C& f) { return f.victim_->begin_frame(-1, 1); }), Errc::invalid_argument, "target time -1 ns"},
    {"CallPresentedWithTheSocketFull", FrameKind::presented, {},
     with_full_buffer<C>([](C& f) { return f.victim_->presented(10); }), Errc::protocol, does_not_read},
    {"CallPresentedTwice", FrameKind::presented, [](C& f) { ASSERT_TRUE(f.victim_->presented(10)); },
     [](C& f) { return f.victim_->presented(11); }, Errc::invalid_argument, "frame 6 was reported already"},
    {"CallPresentedWithBothFlags", FrameKind::presented, {}, [](C& f) { return f.victim_->presented(10, 3); },
     Errc::invalid_argument, "flags 0x3"},
    {"CallReleaseWhoseDiscardedCannotBeSent", FrameKind::discarded, {},
     with_full_buffer<C>([](C& f) { return f.victim_->release(3); }), Errc::protocol, does_not_read},
};

class ConsumerRefusals2 : public ConsumerFixture, public ::testing::WithParamInterface<ConsumerCase> {};

TEST_P(ConsumerRefusals2, LeaveNoTrace) {
    const ConsumerCase& test = GetParam();
    consumer_state_2(*this);
    if (test.prelude) test.prelude(*this);
    ASSERT_FALSE(HasFatalFailure());
    (void)told();
    const std::string before = state_of(*victim_);
    auto refused = test.attack(*this);
    ASSERT_FALSE(refused) << "refused nothing; state now:\n" << state_of(*victim_);
    testing::expect_error(refused.error(), test.code, test.needle);
    EXPECT_EQ(state_of(*victim_), before) << "the refused " << to_string(test.kind) << " changed the consumer";
    if (test.peer_gone) return;
    EXPECT_EQ(told(), Told{}) << "the producer was told of a refused " << to_string(test.kind);
    auto pending = victim_->dispatch();
    ASSERT_TRUE(pending) << pending.error().message;
    EXPECT_EQ(*pending, 0U);
    probe_usable();
}

INSTANTIATE_TEST_SUITE_P(ProtocolTwo, ConsumerRefusals2, ::testing::ValuesIn(consumer_cases_2),
                         case_name<ConsumerFixture>);

FrameMessage feedback_for_b(ProducerFixture& f, void (*tamper)(PresentationFeedback&),
                            FrameKind kind = FrameKind::presented, std::uint64_t frame = 2) {
    return presented_message(f.local_b_, frame, 0, tamper, kind);
}
std::function<Result<void>(P&)> feedback_attack(void (*tamper)(PresentationFeedback&),
                                                FrameKind kind = FrameKind::presented, std::uint64_t frame = 2) {
    return [tamper, kind, frame](P& f) { return message<P>(feedback_for_b(f, tamper, kind, frame))(f); };
}

const ProducerCase producer_cases_2[] = {
    {"HelloAgain", FrameKind::hello, {}, message<P>(second_hello(HelloRole::consumer)), Errc::protocol,
     "a second hello from the consumer"},
    {"BeginFrameNotAfterTheLast", FrameKind::begin_frame, {}, message<P>(begin_frame_message(3)), Errc::protocol,
     "begin_frame 3: its sequence is not after 3"},
    {"BeginFrameWithAnOlderSequence", FrameKind::begin_frame, {}, message<P>(begin_frame_message(1)),
     Errc::protocol, "begin_frame 1: its sequence is not after 3"},
    {"BeginFrameWithoutATargetTime", FrameKind::begin_frame, {}, message<P>(begin_frame_message(4, 0)),
     Errc::protocol, "begin_frame 4: target time 0 ns is not a CLOCK_MONOTONIC time"},
    {"BeginFrameWithANegativeTargetTime", FrameKind::begin_frame, {}, message<P>(begin_frame_message(4, -9)),
     Errc::protocol, "target time -9 ns"},
    {"BeginFrameWithAnImageId", FrameKind::begin_frame, {}, message<P>(begin_frame_message(4, 100, 2)),
     Errc::protocol, "begin_frame: image id 2 where none belongs"},
    {"BeginFrameWithAFrameNumber", FrameKind::begin_frame, {},
     message<P>(with_frame(begin_frame_message(4), 4)), Errc::protocol, "frame number 4 where none belongs"},
    {"BeginFrameWithBytesPastIt", FrameKind::begin_frame, {},
     message<P>(with_payload_tail_byte(begin_frame_message(4))), Errc::protocol, "payload byte"},
    {"BeginFrameWithAFence", FrameKind::begin_frame, {},
     message<P>(as_sync_file(begin_frame_message(4)), fence_slot), Errc::protocol,
     "fence kind 1 on a message that carries no fence"},
    {"PresentedOfAnImageNeverPresented", FrameKind::presented, {},
     [](P& f) { return message<P>(presented_message(f.local_d_, 2))(f); }, Errc::protocol,
     "no present of it awaits feedback"},
    {"PresentedOfAnUnknownImage", FrameKind::presented, {}, message<P>(presented_message(77, 2)), Errc::protocol,
     "presented of image 77 frame 2: no present of it awaits feedback"},
    {"PresentedWithTheWrongFrame", FrameKind::presented, {}, feedback_attack(nullptr, FrameKind::presented, 1),
     Errc::protocol, "frame 1: no present of it awaits feedback"},
    {"PresentedWithTheWrongBeginFrame", FrameKind::presented, {},
     feedback_attack([](PresentationFeedback& x) { x.begin_frame_sequence = 7; }), Errc::protocol,
     "says begin_frame 7, the present answered 0"},
    {"PresentedWithoutATime", FrameKind::presented, {},
     feedback_attack([](PresentationFeedback& x) { x.time_ns = 0; }), Errc::protocol,
     "time 0 ns is not a CLOCK_MONOTONIC time"},
    {"PresentedWithBothFlags", FrameKind::presented, {},
     feedback_attack([](PresentationFeedback& x) { x.flags = 3; }), Errc::protocol, "flags 0x3"},
    {"PresentedWithUnknownFlags", FrameKind::presented, {},
     feedback_attack([](PresentationFeedback& x) { x.flags = 4; }), Errc::protocol, "flags 0x4"},
    {"PresentedWithReservedSet", FrameKind::presented, {},
     feedback_attack([](PresentationFeedback& x) { x.reserved = 1; }), Errc::protocol, "reserved field is 1"},
    {"PresentedTwice", FrameKind::presented,
     [](P& f) {
         f.send(feedback_for_b(f, nullptr));
         f.pump();
     },
     feedback_attack(nullptr), Errc::protocol, "no present of it awaits feedback"},
    {"PresentedWithBytesPastIt", FrameKind::presented, {},
     [](P& f) { return message<P>(with_payload_tail_byte(feedback_for_b(f, nullptr)))(f); }, Errc::protocol,
     "payload byte"},
    {"PresentedWithAFencePoint", FrameKind::presented, {},
     [](P& f) { return message<P>(with_fence_point(feedback_for_b(f, nullptr)))(f); }, Errc::protocol,
     "fence point 5"},
    {"DiscardedWithATime", FrameKind::discarded, {},
     feedback_attack([](PresentationFeedback& x) { x.time_ns = 3; }, FrameKind::discarded), Errc::protocol,
     "a discarded frame was never shown"},
    {"DiscardedWithFlags", FrameKind::discarded, {},
     feedback_attack([](PresentationFeedback& x) { x.flags = 1; }, FrameKind::discarded), Errc::protocol,
     "time 0 ns, flags 0x1"},
    {"DiscardedOfAnUnknownImage", FrameKind::discarded, {},
     message<P>(presented_message(66, 1, 0, nullptr, FrameKind::discarded)), Errc::protocol,
     "discarded of image 66 frame 1: no present of it awaits feedback"},
    {"ReleaseBeforeFeedback", FrameKind::release, {},
     [](P& f) { return message<P>(make_frame_message(FrameKind::release, f.local_b_))(f); }, Errc::protocol,
     "before presented or discarded for its frame 2"},
    {"ReleaseWithAFencePoint", FrameKind::release, {},
     [](P& f) { return message<P>(with_fence_point(make_frame_message(FrameKind::release, f.local_b_)))(f); },
     Errc::protocol, "fence point 5"},
    {"TimelineWithoutItsFenceKind", FrameKind::timeline, {}, message<P>(make_frame_message(FrameKind::timeline, 0)),
     Errc::protocol, "timeline with fence kind none, not drm_syncobj_timeline"},
    // the producer's own protocol 2 calls
    {"CallPresentWithDamageOutsideTheImage", FrameKind::present, {},
     call([](P& f) {
         static constexpr DamageRect outside{0, 0, 9, 1};
         PresentInfo info;
         info.damage = {&outside, 1};
         return f.victim_->present(f.local_d_, info);
     }),
     Errc::invalid_argument, "outside the 8x8 image"},
    {"CallPresentWithUnknownFlags", FrameKind::present, {},
     call([](P& f) {
         PresentInfo info;
         info.flags = 0x100;
         return f.victim_->present(f.local_d_, info);
     }),
     Errc::invalid_argument, "flags 0x100"},
    {"CallPresentWithMetadataAndTheSocketFull", FrameKind::present, {},
     with_full_buffer<P>(call([](P& f) {
         PresentInfo info;
         info.content_time_ns = 7;
         return f.victim_->present(f.local_d_, info);
     })),
     Errc::protocol, does_not_read},
};

class ProducerRefusals2 : public ProducerFixture, public ::testing::WithParamInterface<ProducerCase> {};

TEST_P(ProducerRefusals2, LeaveNoTrace) {
    const ProducerCase& test = GetParam();
    producer_state_2(*this);
    if (test.prelude) test.prelude(*this);
    ASSERT_FALSE(HasFatalFailure());
    (void)told();
    const std::string before = state_of(*victim_);
    auto refused = test.attack(*this);
    ASSERT_FALSE(refused) << "refused nothing; state now:\n" << state_of(*victim_);
    testing::expect_error(refused.error(), test.code, test.needle);
    EXPECT_EQ(state_of(*victim_), before) << "the refused " << to_string(test.kind) << " changed the producer";
    if (test.peer_gone) return;
    EXPECT_EQ(told(), Told{}) << "the consumer was told of a refused " << to_string(test.kind);
    auto pending = victim_->dispatch();
    ASSERT_TRUE(pending) << pending.error().message;
    EXPECT_EQ(*pending, 0U);
    probe_usable();
}

INSTANTIATE_TEST_SUITE_P(ProtocolTwo, ProducerRefusals2, ::testing::ValuesIn(producer_cases_2),
                         case_name<ProducerFixture>);

// Every message kind has at least one refusal case on each side it can reach.
TEST(RefusalTables, CoverEveryMessageKind) {
    for (std::uint32_t kind = 1; kind <= static_cast<std::uint32_t>(last_frame_kind); ++kind) {
        const auto k = static_cast<FrameKind>(kind);
        const auto of_kind = [k](const auto& entry) { return entry.kind == k; };
        EXPECT_TRUE(std::any_of(std::begin(consumer_cases), std::end(consumer_cases), of_kind) ||
                    std::any_of(std::begin(consumer_cases_2), std::end(consumer_cases_2), of_kind))
            << to_string(k) << " has no case against the consumer";
        EXPECT_TRUE(std::any_of(std::begin(producer_cases), std::end(producer_cases), of_kind) ||
                    std::any_of(std::begin(producer_cases_2), std::end(producer_cases_2), of_kind))
            << to_string(k) << " has no case against the producer";
    }
}

// ---- the cases named in the issue, and their siblings -------------------------------------

class ConsumerStateAttacks : public ConsumerFixture {};
class ProducerStateAttacks : public ProducerFixture {};

// present(A, 1); present(A, 5) refused (still held); present(B, 2) is then after frame 1,
// not after the refused 5.
TEST_F(ConsumerStateAttacks, ARefusedPresentDoesNotMoveTheFrameCounter) {
    send_image(1);
    send_image(2);
    send(make_frame_message(FrameKind::present, 1, 1));
    pump();
    const std::string before = state_of(*victim_);
    send(make_frame_message(FrameKind::present, 1, 5));
    auto refused = dispatched();
    ASSERT_FALSE(refused);
    testing::expect_error(refused.error(), Errc::protocol, "present of image 1, which this side still holds");
    EXPECT_EQ(state_of(*victim_), before);
    send(make_frame_message(FrameKind::present, 2, 2));
    pump();
    ASSERT_TRUE(victim_->current());
    EXPECT_EQ(victim_->current()->image_id, 2U);
    EXPECT_EQ(victim_->current()->frame_number, 2U);
}

// The last frame is set only once the present takes effect: a present refused because the
// release of the shown image cannot be sent leaves its frame number unused.
TEST_F(ConsumerStateAttacks, ThePresentsFrameNumberIsNotTakenWhenItsReleaseCannotBeSent) {
    send_image(1);
    send_image(2);
    send(make_frame_message(FrameKind::present, 1, 1));
    pump();
    fill_send_buffer();
    send(make_frame_message(FrameKind::present, 2, 6));
    auto refused = dispatched();
    ASSERT_FALSE(refused);
    testing::expect_error(refused.error(), Errc::protocol, "does not read its messages");
    EXPECT_EQ(victim_->current()->image_id, 1U);
    (void)told();
    send(make_frame_message(FrameKind::present, 2, 6));
    pump();
    EXPECT_EQ(victim_->current()->frame_number, 6U);
    EXPECT_EQ(told(), (Told{{FrameKind::release, 1}}));
}

// The producer retires an image; the consumer's `retired` cannot be sent: the image stays
// (it was dropped before the send). Both endpoints, and the retire of an image refused
// earlier (its id stays remembered).
TEST_F(ConsumerStateAttacks, AnImageIsNotDroppedBeforeItsRetiredIsSent) {
    send_image(1);
    pump();
    fill_send_buffer();
    send(make_frame_message(FrameKind::retire, 1));
    ASSERT_FALSE(dispatched());
    EXPECT_NE(victim_->image(1), nullptr) << "dropped, and the producer never told";
    (void)told();
    send(make_frame_message(FrameKind::retire, 1));
    pump();
    EXPECT_EQ(victim_->image(1), nullptr);
    EXPECT_EQ(told(), (Told{{FrameKind::retired, 1}}));
}

TEST_F(ProducerStateAttacks, AnImageIsNotDroppedBeforeItsRetiredIsSent) {
    send_image(c(1));
    pump();
    fill_send_buffer();
    send(make_frame_message(FrameKind::retire, c(1)));
    ASSERT_FALSE(dispatched());
    EXPECT_NE(victim_->image(c(1)), nullptr) << "dropped, and the consumer never told";
    (void)told();
    send(make_frame_message(FrameKind::retire, c(1)));
    pump();
    EXPECT_EQ(victim_->image(c(1)), nullptr);
    EXPECT_EQ(told(), (Told{{FrameKind::retired, c(1)}}));
}

// An image the producer retired while the consumer showed it is let go with one message
// (`retired`), so there is no second send to fail after the first changed the state. With
// room for exactly one message in the socket, the next present takes effect whole.
TEST_F(ConsumerStateAttacks, AHeldRetiringImageIsLetGoInOneMessage) {
    send_image(1);
    send_image(2);
    send(make_frame_message(FrameKind::present, 1, 1));
    send(make_frame_message(FrameKind::retire, 1));
    pump();
    (void)told();
    fill_send_buffer();
    leave_room_for_one();
    send(make_frame_message(FrameKind::present, 2, 2));
    auto handled = dispatched();
    ASSERT_TRUE(handled) << handled.error().message << "\n" << state_of(*victim_);
    EXPECT_EQ(victim_->current()->image_id, 2U);
    EXPECT_EQ(victim_->image(1), nullptr);
    EXPECT_EQ(told(), (Told{{FrameKind::retired, 1}}));
}

TEST_F(ConsumerStateAttacks, AHeldRetiringImageReleasedByTheHostIsLetGoInOneMessage) {
    send_image(1);
    send(make_frame_message(FrameKind::present, 1, 1));
    send(make_frame_message(FrameKind::retire, 1));
    pump();
    (void)told();
    fill_send_buffer();
    leave_room_for_one();
    testing::Fence fence;
    auto released = victim_->release(1, fence.read_end.borrow());
    ASSERT_TRUE(released) << released.error().message;
    EXPECT_FALSE(victim_->current());
    EXPECT_EQ(victim_->image(1), nullptr);
    EXPECT_EQ(told(), (Told{{FrameKind::retired, 1}}));
}

// A producer that hears `retired` alone for an image the consumer held drops it and counts
// it released (and still takes the older pair: release, then retired).
TEST_F(ProducerStateAttacks, RetiredAloneLetsGoOfAHeldRetiringImage) {
    const std::uint64_t a = victim_->add_image(small_image()).value();
    const std::uint64_t b = victim_->add_image(small_image()).value();
    ASSERT_TRUE(victim_->present(a));
    ASSERT_TRUE(victim_->present(b));
    ASSERT_TRUE(victim_->retire(a));
    ASSERT_TRUE(victim_->retire(b));
    send(make_frame_message(FrameKind::retired, a));
    send(make_frame_message(FrameKind::release, b));
    send(make_frame_message(FrameKind::retired, b));
    pump();
    EXPECT_EQ(victim_->image_count(), 0U);
    EXPECT_EQ(victim_->released_count(), 2U);
}

// An older consumer lets go of a held retiring image with release, then retired. When that
// release's fence is cut (this process at its fd limit) the image is still let go (the fence
// was moot), not refused as a release of an image the consumer does not hold.
TEST_F(ProducerStateAttacks, ACutReleaseOfAHeldRetiringImageLetsGoOfIt) {
    const std::uint64_t a = victim_->add_image(small_image()).value();
    ASSERT_TRUE(victim_->present(a));
    ASSERT_TRUE(victim_->retire(a));
    testing::Fence fence;
    send(as_sync_file(make_frame_message(FrameKind::release, a)), fence_slot, {fence.read_end.get()});
    {
        testing::AtFdLimit at_limit;
        auto handled = dispatched();
        ASSERT_FALSE(handled);
        testing::expect_error(handled.error(), Errc::truncated, "its release fence was cut off");
    }
    EXPECT_EQ(victim_->released_count(), 1U);
    send(make_frame_message(FrameKind::retired, a));
    pump();
    EXPECT_EQ(victim_->image(a), nullptr);
    EXPECT_EQ(victim_->released_count(), 1U) << "released once";
}

// keep_last_frame: the consumer's own image, shown when the producer died, is shared with the
// next producer once released. If that share cannot be sent, the frame stays held.
TEST_F(ConsumerStateAttacks, AKeptFrameIsNotLetGoWhenItsShareCannotBeSent) {
    connect({.keep_last_frame = true, .max_producer_images = 5});
    const std::uint64_t mine = victim_->add_image(small_image()).value();
    send(make_frame_message(FrameKind::present, mine, 1));
    pump();
    attacker_.reset();
    ASSERT_FALSE(victim_->dispatch());
    ASSERT_TRUE(victim_->current());
    int ends[2] = {-1, -1};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
    attacker_.reset(ends[0]);
    ASSERT_TRUE(victim_->resume(FrameChannel::adopt(UniqueFd(ends[1])).value()));
    EXPECT_EQ(told(), (Told{{FrameKind::hello, 0}})) << "a held frame is shared once released";
    say_hello(attacker_.get(), HelloRole::producer);
    pump();
    fill_send_buffer();
    const std::string before = state_of(*victim_);
    auto refused = victim_->release(mine);
    ASSERT_FALSE(refused);
    testing::expect_error(refused.error(), Errc::protocol, "does not read its messages");
    EXPECT_EQ(state_of(*victim_), before);
    ASSERT_TRUE(victim_->current()) << "let go, and never shared";
    (void)told();
    ASSERT_TRUE(victim_->release(mine));
    EXPECT_FALSE(victim_->current());
    EXPECT_EQ(told(), (Told{{FrameKind::add_image, mine}}));
}

// resume() whose greeting cannot be sent (the new peer gone already; in the field also
// ETOOMANYREFS) leaves the endpoint as it was, without a peer, and a second resume works.
template <typename Fixture>
void failed_resume_leaves_no_trace(Fixture& f, std::size_t images, std::size_t greeting) {
    for (std::size_t i = 0; i < images; ++i) ASSERT_TRUE(f.victim_->add_image(small_image()));
    f.attacker_.reset();
    ASSERT_FALSE(f.victim_->dispatch());
    const std::string before = state_of(*f.victim_);
    int ends[2] = {-1, -1};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
    ::close(ends[0]);  // gone before it hears anything
    auto resumed = f.victim_->resume(FrameChannel::adopt(UniqueFd(ends[1])).value());
    ASSERT_FALSE(resumed);
    testing::expect_error(resumed.error(), Errc::peer_closed, "is gone");
    EXPECT_EQ(state_of(*f.victim_), before);
    EXPECT_FALSE(f.victim_->is_open());
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
    f.attacker_.reset(ends[0]);
    ASSERT_TRUE(f.victim_->resume(FrameChannel::adopt(UniqueFd(ends[1])).value()));
    EXPECT_EQ(f.told().size(), greeting + 1) << "the hello, every image shared with the new peer (and the format table)";
}

TEST_F(ConsumerStateAttacks, AFailedResumeLeavesNoTrace) {
    ASSERT_TRUE(victim_->advertise(FormatTable{}));
    failed_resume_leaves_no_trace(*this, 2, 3);
}
TEST_F(ProducerStateAttacks, AFailedResumeLeavesNoTrace) { failed_resume_leaves_no_trace(*this, 2, 2); }

}  // namespace
}  // namespace texshare::hostile
