// Attacks on the frame protocol's state machine: ids and frames that do not follow the
// rules, from a hostile producer (victim: FrameReceiver) and a hostile consumer (victim:
// FrameSender). A refused message changes nothing: the state before it stays valid.
#include <functional>
#include <tuple>

#include "hostile/hostile_peer.hpp"
#include "texshare/sync_file.hpp"

namespace texshare::hostile {
namespace {

using HostileProducer = ConsumerUnderAttack;
using HostileConsumer = ProducerUnderAttack;

TEST_F(HostileProducer, DuplicateImageId) {
    send_image(1);
    ASSERT_TRUE(victim_->dispatch());
    const DmaBufImage* first = victim_->image(1);
    send_image(1);
    expect_refused(Errc::protocol, "add_image from the producer with image id 1, which is already in use");
    EXPECT_EQ(victim_->image(1), first) << "the first image stays as it was";
    expect_still_usable();
}

TEST_F(HostileProducer, ImageIdZero) {
    send_image(0);
    expect_refused(Errc::protocol, "image id 0");
    expect_still_usable();
}

TEST_F(HostileProducer, ImageIdFromTheConsumersSpace) {
    send_image(consumer_image_id_bit | 1);
    expect_refused(Errc::protocol, "not in the peer's id space");
    expect_still_usable();
}

TEST_F(HostileProducer, MoreImagesThanItsQuota) {
    // The default quota (half the table); the rest is the consumer's (image_quota_attacks_test).
    for (std::uint64_t id = 1; id <= max_frame_images / 2; ++id) send_image(id);
    ASSERT_TRUE(victim_->dispatch());
    send_image(max_frame_images / 2 + 1);
    expect_refused(Errc::rejected, "the producer already has 8 images here, its quota");
    EXPECT_EQ(victim_->image_count(), max_frame_images / 2);
}

TEST_F(HostileProducer, PresentOfAnUnknownId) {
    send(make_frame_message(FrameKind::present, 77, 1));
    expect_refused(Errc::protocol, "present of image 77, which is unknown");
    expect_still_usable();
}

TEST_F(HostileProducer, FrameNumberGoingBackwards) {
    send_image(1);
    send_image(2);
    send(make_frame_message(FrameKind::present, 1, 5));
    ASSERT_TRUE(victim_->dispatch());
    send(make_frame_message(FrameKind::present, 2, 5));
    expect_refused(Errc::protocol, "present of image 2 as frame 5, not after frame 5");
    EXPECT_EQ(victim_->current()->image_id, 1U) << "still showing frame 5";
    expect_still_usable();
}

TEST_F(HostileProducer, PresentOfTheImageTheConsumerHolds) {
    send_image(1);
    send(make_frame_message(FrameKind::present, 1, 1));
    ASSERT_TRUE(victim_->dispatch());
    send(make_frame_message(FrameKind::present, 1, 2));
    expect_refused(Errc::protocol, "present of image 1, which this side still holds");
    expect_still_usable();
}

TEST_F(HostileProducer, RetireOfAnUnknownId) {
    send(make_frame_message(FrameKind::retire, 5));
    expect_refused(Errc::protocol, "retire of image 5, which is unknown");
    expect_still_usable();
}

TEST_F(HostileProducer, RetireOfTheConsumersOwnImage) {
    auto image = MemfdAllocator().allocate(8, 8, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(image);
    auto id = victim_->add_image(std::move(*image));
    ASSERT_TRUE(id);
    send(make_frame_message(FrameKind::retire, *id));
    expect_refused(Errc::protocol, "the consumer's own");
    EXPECT_NE(victim_->image(*id), nullptr);
    expect_still_usable();
}

TEST_F(HostileProducer, PresentAfterRetireOfTheSameImage) {
    send_image(1);
    send(make_frame_message(FrameKind::present, 1, 1));
    send(make_frame_message(FrameKind::retire, 1));  // held: waits for the release
    ASSERT_TRUE(victim_->dispatch());
    send_image(2);
    send(make_frame_message(FrameKind::present, 1, 2));
    expect_refused(Errc::protocol, "present of image 1, which is retiring");
    expect_still_usable();
}

TEST_F(HostileProducer, FloodOfPresentsWithoutReadingAnyRelease) {
    // Every present releases the previous image; a producer that never reads the releases
    // fills the consumer's send buffer. The consumer neither blocks nor grows: it reports the
    // peer as not reading, a protocol error, and the host drops it.
    send_image(1);
    send_image(2);
    ASSERT_TRUE(victim_->dispatch());
    Result<std::size_t> handled = std::size_t{0};
    std::uint64_t frame = 1;
    for (int round = 0; round < 10000 && handled; ++round) {
        while (true) {
            const auto bytes = frame_bytes(make_frame_message(FrameKind::present, 1 + frame % 2, frame), 0);
            if (send_raw(attacker_.get(), bytes) < 0) break;  // the producer's own buffer is full
            ++frame;
        }
        handled = victim_->dispatch();
    }
    ASSERT_FALSE(handled) << "flooded for 10000 rounds without a complaint";
    EXPECT_EQ(handled.error().code, Errc::protocol) << handled.error().message;
    EXPECT_NE(handled.error().message.find("does not read its messages"), std::string::npos);
}

TEST_F(HostileConsumer, ReleaseOfAnIdNeverPresented) {
    probe_usable();  // image 1, presented
    auto image = MemfdAllocator().allocate(8, 8, DRM_FORMAT_ARGB8888);
    ASSERT_TRUE(image);
    auto never = victim_->add_image(std::move(*image));
    ASSERT_TRUE(never);
    send(make_frame_message(FrameKind::release, *never));
    expect_refused(Errc::protocol, fmt::format("release of image {}, which the consumer does not hold", *never));
    EXPECT_EQ(victim_->state(*never), FrameImageState::free);
}

TEST_F(HostileConsumer, ReleaseOfAnUnknownId) {
    send(make_frame_message(FrameKind::release, 4242));
    expect_refused(Errc::protocol, "release of image 4242");
    probe_usable();
}

TEST_F(HostileConsumer, ReleaseTwice) {
    probe_usable();  // image 1 presented
    send(make_frame_message(FrameKind::release, 1));
    ASSERT_TRUE(victim_->dispatch());
    EXPECT_EQ(victim_->state(1), FrameImageState::free);
    send(make_frame_message(FrameKind::release, 1));
    expect_refused(Errc::protocol, "release of image 1, which the consumer does not hold");
    EXPECT_EQ(victim_->state(1), FrameImageState::free);
}

TEST_F(HostileConsumer, RetiredWithoutARetire) {
    probe_usable();
    send(make_frame_message(FrameKind::retired, 1));
    expect_refused(Errc::protocol, "retired for image 1, which was not retiring");
    EXPECT_NE(victim_->image(1), nullptr);
}

TEST_F(HostileConsumer, RetireOfTheProducersOwnImage) {
    probe_usable();
    send(make_frame_message(FrameKind::retire, 1));
    expect_refused(Errc::protocol, "retire of image 1, which is the producer's own");
    EXPECT_NE(victim_->image(1), nullptr);
}

TEST_F(HostileConsumer, PresentSentToAProducer) {
    send(make_frame_message(FrameKind::present, 1, 1));
    expect_refused(Errc::protocol, "present of image 1 sent to a producer");
    probe_usable();
}

TEST_F(HostileConsumer, ReleaseFenceThatIsNotAFence) {
    // A release fence goes to the renderer, which polls and closes it: a pipe (anything
    // not of a sync_file's kind) is refused before the release takes effect, and closed
    // off the dispatching thread (the fixture counts fds after the closer drained).
    probe_usable();
    int ends[2];
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    UniqueFd read_end(ends[0]), write_end(ends[1]);
    send(as_sync_file(make_frame_message(FrameKind::release, 1)), 0b10000, {read_end.get()});
    expect_refused(Errc::rejected, "release of image 1: fence fd");
    EXPECT_EQ(victim_->state(1), FrameImageState::presented) << "the refused release took effect";
    EXPECT_FALSE(victim_->take_release_fence(1).valid());
}

TEST_F(HostileConsumer, CapabilitiesWithoutATable) {
    send(make_frame_message(FrameKind::capabilities, 0));
    expect_refused(Errc::protocol, "capabilities without a format table fd");
    EXPECT_EQ(victim_->peer_formats(), nullptr);
    probe_usable();
}

TEST_F(HostileConsumer, CapabilitiesWithAWritableTable) {
    auto fd = encode_format_table(FormatTable{});
    ASSERT_TRUE(fd);
    UniqueFd writable(::memfd_create("table", MFD_CLOEXEC));  // same bytes, no seals
    char bytes[24];
    ASSERT_EQ(::pread(fd->get(), bytes, sizeof bytes, 0), 24);
    ASSERT_EQ(::write(writable.get(), bytes, sizeof bytes), 24);
    send(make_frame_message(FrameKind::capabilities, 0), 0b1, {writable.get()});
    expect_refused(Errc::rejected, "is a memfd with seals 0x1, missing 0xe");
    EXPECT_EQ(victim_->peer_formats(), nullptr);
    probe_usable();
}

// Issue 14: the table's header carries the consumer's capabilities (version 2). A consumer
// claiming one the producer does not know, or hiding one in a version 1 header, is refused
// before the producer could negotiate on it.
TEST_F(HostileConsumer, CapabilitiesTheProducerDoesNotKnow) {
    for (const auto& [version, capabilities, error] :
         {std::tuple<std::uint16_t, std::uint16_t, const char*>{2, 0x8000, "unknown capabilities 0x8000"},
          {1, consumer_converts_shared_memory, "version 1 reserved 1/0"}}) {
        auto fd = encode_format_table(FormatTable{});
        ASSERT_TRUE(fd);
        char bytes[24];
        ASSERT_EQ(::pread(fd->get(), bytes, sizeof bytes, 0), 24);
        std::memcpy(bytes + 4, &version, 2);
        std::memcpy(bytes + 6, &capabilities, 2);
        UniqueFd forged(::memfd_create("table", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        ASSERT_EQ(::write(forged.get(), bytes, sizeof bytes), 24);
        ASSERT_EQ(::fcntl(forged.get(), F_ADD_SEALS, format_table_seals), 0);
        send(make_frame_message(FrameKind::capabilities, 0), 0b1, {forged.get()});
        expect_refused(Errc::rejected, error);
        EXPECT_EQ(victim_->peer_formats(), nullptr);
        probe_usable();
    }
}

// Issue 15: the consumer's Vulkan identity (version 2's UUID block) decides whether the
// producer may send opaque memory. A block of zeros (an identity that matches nothing and
// must not be taken for one), a claim to import opaque memory with no identity, a block the
// header does not declare and an extension the producer does not know are refused before
// the producer could negotiate on them.
TEST_F(HostileConsumer, ForgedDeviceIdentities) {
    DeviceUuids ids;
    ids.device.fill(0x11);
    ids.driver.fill(0x22);
    auto valid = encode_format_table(FormatTable{0, {}, consumer_imports_opaque_memory, ids});
    ASSERT_TRUE(valid);
    char bytes[56];
    ASSERT_EQ(::pread(valid->get(), bytes, sizeof bytes, 0), 56);
    struct Forgery {
        std::size_t size;
        std::function<void(char*)> forge;
        const char* error;
    };
    const Forgery forgeries[] = {
        {56, [](char* b) { std::memset(b + 24, 0, 32); }, "an all-zero UUID"},
        {56, [](char* b) { std::memset(b + 40, 0, 16); }, "an all-zero UUID"},
        {24, [](char* b) { std::memset(b + 12, 0, 4); }, "claims consumer_imports_opaque_memory without the UUIDs"},
        {56, [](char* b) { b[12] = 0; }, "declares 0 entries (at most 4096) in 56 bytes"},
        {56, [](char* b) { b[12] = 0x41; }, "unknown extensions 0x41"},
        {56, [](char* b) { b[4] = 1; b[6] = 0; }, "version 1 reserved 0/1"},
    };
    for (const Forgery& forgery : forgeries) {
        SCOPED_TRACE(forgery.error);
        char forged_bytes[56];
        std::memcpy(forged_bytes, bytes, sizeof bytes);
        forgery.forge(forged_bytes);
        UniqueFd forged(::memfd_create("table", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        ASSERT_EQ(::write(forged.get(), forged_bytes, forgery.size), static_cast<ssize_t>(forgery.size));
        ASSERT_EQ(::fcntl(forged.get(), F_ADD_SEALS, format_table_seals), 0);
        send(make_frame_message(FrameKind::capabilities, 0), 0b1, {forged.get()});
        expect_refused(Errc::rejected, forgery.error);
        EXPECT_EQ(victim_->peer_formats(), nullptr);
        probe_usable();
    }
    // The genuine table still arrives, identity and all.
    send(make_frame_message(FrameKind::capabilities, 0), 0b1, {valid->get()});
    ASSERT_TRUE(victim_->dispatch());
    ASSERT_NE(victim_->peer_formats(), nullptr);
    EXPECT_EQ(victim_->peer_formats()->uuids, ids);
    EXPECT_EQ(victim_->peer_formats()->capabilities, consumer_imports_opaque_memory);
}

TEST_F(HostileProducer, CapabilitiesSentToAConsumer) {
    auto fd = encode_format_table(FormatTable{});
    ASSERT_TRUE(fd);
    send(make_frame_message(FrameKind::capabilities, 0), 0b1, {fd->get()});
    expect_refused(Errc::protocol, "capabilities of image 0 sent to a consumer");
    expect_still_usable();
}

}  // namespace
}  // namespace texshare::hostile
