// The wire format (frame/messages.hpp): sizes, kinds, and check_frame_message's envelope.
#include "texshare/frame/messages.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>

namespace texshare {
namespace {

static_assert(sizeof(FrameMessage) == 32 + frame_payload_bytes);
static_assert(frame_payload_bytes >= sizeof(ImageDescriptor) && frame_payload_bytes >= sizeof(PresentMetadata));
static_assert(frame_payload_bytes % 8 == 0);

std::array<UniqueFd, frame_fd_slots> no_fds() { return {}; }

FrameMessage fenced(FrameMessage m, FenceKind kind = FenceKind::sync_file) {
    m.fence_kind = static_cast<std::uint8_t>(kind);
    return m;
}

FrameMessage with_point(FrameMessage m, std::uint64_t point) {
    m.fence_point = point;
    return m;
}

bool has_image(std::uint32_t kind) {
    return kind != static_cast<std::uint32_t>(FrameKind::hello) &&
           kind != static_cast<std::uint32_t>(FrameKind::begin_frame) &&
           kind != static_cast<std::uint32_t>(FrameKind::timeline);
}

TEST(FrameMessages, EveryKindHasANameAndUpToTimelineIsKnown) {
    for (std::uint32_t kind = 1; kind <= 13; ++kind) {
        EXPECT_NE(to_string(static_cast<FrameKind>(kind)), "unknown") << kind;
        auto fds = no_fds();
        FrameMessage m = make_frame_message(static_cast<FrameKind>(kind), has_image(kind) ? 1 : 0);
        if (kind == static_cast<std::uint32_t>(FrameKind::add_image)) continue;  // needs a descriptor
        if (kind == static_cast<std::uint32_t>(FrameKind::timeline)) continue;   // needs its syncobj fd
        auto checked = check_frame_message(m, fds);
        ASSERT_TRUE(checked) << checked.error().message;
        EXPECT_EQ(*checked, static_cast<FrameKind>(kind));
    }
    auto fds = no_fds();
    FrameMessage unknown = make_frame_message(FrameKind::refused, 1);
    unknown.kind = 14;
    auto checked = check_frame_message(unknown, fds);
    ASSERT_FALSE(checked);
    EXPECT_EQ(checked.error().code, Errc::protocol);
    EXPECT_NE(checked.error().message.find("unknown kind 14 (image 1; this side knows 1..13)"), std::string::npos)
        << checked.error().message;
}

TEST(FrameMessages, PayloadAccessorsCopyInAndOut) {
    FrameMessage m = make_frame_message(FrameKind::present, 1, 1);
    PresentMetadata metadata;
    metadata.damage_count = 1;
    metadata.damage[0] = DamageRect{1, 2, 3, 4};
    m.set_payload(metadata);
    EXPECT_EQ(m.payload_as<PresentMetadata>().damage[0], (DamageRect{1, 2, 3, 4}));
    m.edit_payload<PresentMetadata>([](PresentMetadata& p) { p.flags = present_flag_opaque; });
    EXPECT_EQ(m.payload_as<PresentMetadata>().flags, present_flag_opaque);
    EXPECT_EQ(m.payload_as<PresentMetadata>().damage_count, 1U);
    m.clear_payload();
    EXPECT_EQ(m.payload_as<PresentMetadata>().damage_count, 0U);
}

TEST(FrameMessages, FdsOnlyInTheSlotsAKindUses) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    auto fds = no_fds();
    fds[frame_fence_slot].reset(fd);
    EXPECT_TRUE(check_frame_message(fenced(make_frame_message(FrameKind::present, 1, 1)), fds));
    EXPECT_TRUE(check_frame_message(fenced(make_frame_message(FrameKind::release, 1)), fds));
    auto refused = check_frame_message(make_frame_message(FrameKind::refused, 1), fds);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("refused of image 1: carries an fd in slot 4"), std::string::npos)
        << refused.error().message;
}

TEST(FrameMessages, AFrameNumberOnlyOnPresentAndItsFeedback) {
    auto fds = no_fds();
    auto checked = check_frame_message(make_frame_message(FrameKind::release, 3, 7), fds);
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().message.find("frame number 7 where none belongs"), std::string::npos);
    EXPECT_TRUE(check_frame_message(make_frame_message(FrameKind::presented, 3, 7), fds));
    EXPECT_TRUE(check_frame_message(make_frame_message(FrameKind::discarded, 3, 7), fds));
}

// Each new header and payload rule is refused with Errc::protocol naming what is wrong.
TEST(FrameMessages, HeaderAndPayloadRulesNameWhatIsWrong) {
    auto fds = no_fds();
    struct Case {
        FrameMessage message;
        const char* error;
    };
    FrameMessage begin_with_image = make_frame_message(FrameKind::begin_frame, 4);
    FrameMessage hello_with_image = make_frame_message(FrameKind::hello, 4);
    FrameMessage point = make_frame_message(FrameKind::present, 3, 1);
    point.fence_point = 9;
    FrameMessage unfenced_release_point = make_frame_message(FrameKind::release, 3);
    unfenced_release_point.fence_point = 1;
    FrameMessage tail = make_frame_message(FrameKind::present, 3, 1);
    tail.payload[sizeof(PresentMetadata)] = std::byte{7};
    FrameMessage retire_payload = make_frame_message(FrameKind::retire, 3);
    retire_payload.payload[0] = std::byte{1};
    FrameMessage begin_tail = make_frame_message(FrameKind::begin_frame, 0);
    begin_tail.payload[sizeof(BeginFrame) + 5] = std::byte{2};
    FrameMessage feedback_tail = make_frame_message(FrameKind::presented, 3, 1);
    feedback_tail.payload[frame_payload_bytes - 1] = std::byte{3};
    const Case cases[] = {
        {begin_with_image, "begin_frame: image id 4 where none belongs"},
        {hello_with_image, "hello: image id 4 where none belongs"},
        {point, "present of image 3: fence point 9 with fence kind none, which has no points"},
        {unfenced_release_point, "release of image 3: fence point 1"},
        {tail, "present of image 3: payload byte 152 is 7, not 0 (present uses bytes 0..152)"},
        {retire_payload, "retire of image 3: payload byte 0 is 1, not 0"},
        {begin_tail, "begin_frame of image 0: payload byte 29 is 2"},
        {feedback_tail, "presented of image 3: payload byte"},
    };
    for (const Case& c : cases) {
        auto checked = check_frame_message(c.message, fds);
        ASSERT_FALSE(checked) << c.error;
        EXPECT_EQ(checked.error().code, Errc::protocol);
        EXPECT_NE(checked.error().message.find(c.error), std::string::npos) << checked.error().message;
    }
    // Hello's payload is the endpoint's to check (the version first).
    FrameMessage hello = make_frame_message(FrameKind::hello, 0);
    hello.payload[frame_payload_bytes - 1] = std::byte{1};
    EXPECT_TRUE(check_frame_message(hello, fds));
}

// The per-frame check (a few branches on the slot mask AuxChannel already matched) accepts
// exactly what the rules allow, for every kind, every set of filled slots and the fields
// that must be zero: compared with the rules written out plainly here.
bool rules_allow(const FrameMessage& m, unsigned slots) {
    if (m.kind < 1 || m.kind > 13 || m.reserved != 0 || m.reserved_byte != 0) return false;
    const auto kind = static_cast<FrameKind>(m.kind);
    const bool fenced_kind = kind == FrameKind::present || kind == FrameKind::release || kind == FrameKind::timeline;
    // A fence kind with an fd (1 or 2) exactly when slot 4 holds an fd; none (0) or the
    // timeline kind (3, a point) exactly when it is empty; but the timeline message carries
    // kind 3 with the syncobj's fd, and no point.
    const bool fence_fd = (slots & 0b10000) != 0;
    const bool timeline = kind == FrameKind::timeline;
    if (m.fence_kind > 3 || (m.fence_kind != 0 && !fenced_kind)) return false;
    if (timeline) {
        if (m.fence_kind != 3 || !fence_fd || m.fence_point != 0) return false;
    } else {
        if ((m.fence_kind == 1 || m.fence_kind == 2) != fence_fd) return false;
        if ((m.fence_kind == 3) != (m.fence_point != 0)) return false;  // a point exactly with kind 3
    }
    const bool numbered = kind == FrameKind::present || kind == FrameKind::presented || kind == FrameKind::discarded;
    if (!numbered && m.frame_number != 0) return false;
    if (m.image_id != 0 && !has_image(m.kind)) return false;
    std::size_t used = 0;
    switch (kind) {
        case FrameKind::add_image:
            if (m.descriptor().image_id != m.image_id) return false;
            used = sizeof(ImageDescriptor);
            break;
        case FrameKind::present:
            used = sizeof(PresentMetadata);
            break;
        case FrameKind::hello:
            used = frame_payload_bytes;
            break;
        case FrameKind::begin_frame:
            used = sizeof(BeginFrame);
            break;
        case FrameKind::presented:
        case FrameKind::discarded:
            used = sizeof(PresentationFeedback);
            break;
        default:
            break;
    }
    for (std::size_t i = used; i < frame_payload_bytes; ++i) {
        if (m.payload[i] != std::byte{0}) return false;
    }
    unsigned allowed = 0;
    if (kind == FrameKind::add_image) allowed = 0b01111;
    if (fenced_kind) allowed = 0b10000;
    if (kind == FrameKind::capabilities) allowed = 0b00001;
    return (slots & ~allowed) == 0;
}

TEST(FrameMessages, TheEnvelopeCheckFollowsTheRulesForEveryKindAndSlotMask) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    UniqueFd owner(fd);
    constexpr int variants = 10;
    for (std::uint32_t kind = 0; kind <= 16; ++kind) {
        for (unsigned slots = 0; slots < (1U << frame_fd_slots); ++slots) {
            for (int variant = 0; variant < 6 * variants; ++variant) {
                FrameMessage m = make_frame_message(FrameKind::present, has_image(kind) ? 5 : 0);
                m.kind = kind;
                constexpr std::array<std::uint8_t, 6> fence_kinds{0, 1, 2, 3, 128, 255};
                m.fence_kind = fence_kinds[static_cast<std::size_t>(variant / variants)];
                const int field = variant % variants;
                if (variant == 6 * variants - 1) m.reserved_byte = 1;
                if (field == 1) m.frame_number = 9;
                if (field == 2) m.reserved = 1;
                if (field == 3) m.edit_payload<ImageDescriptor>([](ImageDescriptor& d) { d.image_id = 5; });
                if (field == 4) m.payload[sizeof(ImageDescriptor) - 4] = std::byte{1};  // deep in a descriptor
                if (field == 5) m.edit_payload<ImageDescriptor>([](ImageDescriptor& d) { d.image_id = 6; });
                if (field == 6) m.fence_point = 1;
                if (field == 7) m.image_id = 7;
                if (field == 8) m.payload[sizeof(PresentationFeedback)] = std::byte{1};  // just past feedback
                if (field == 9) m.payload[sizeof(BeginFrame) - 1] = std::byte{1};        // inside begin_frame
                const bool expected = rules_allow(m, slots);
                auto checked = check_frame_message(m, slots);
                EXPECT_EQ(checked.has_value(), expected)
                    << "kind " << kind << " slots " << slots << " variant " << variant
                    << (checked ? "" : ": " + checked.error().message);
                if (checked) {
                    EXPECT_EQ(*checked, static_cast<FrameKind>(kind));
                } else {
                    EXPECT_EQ(checked.error().code, Errc::protocol);
                }
                // The form that reads the slots off the fds agrees.
                std::array<UniqueFd, frame_fd_slots> fds;
                for (std::size_t slot = 0; slot < frame_fd_slots; ++slot) {
                    if (slots >> slot & 1U) fds[slot].reset(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
                }
                EXPECT_EQ(check_frame_message(m, fds).has_value(), expected) << kind << " " << slots;
            }
        }
    }
}

// Each fence rule is refused with Errc::protocol naming what is wrong, in the order
// check_frame_message() documents.
TEST(FrameMessages, FenceKindRulesNameWhatIsWrong) {
    const unsigned fence_slot = 1U << frame_fence_slot;
    struct Case {
        FrameMessage message;
        unsigned slots;
        const char* error;
    };
    const Case cases[] = {
        {make_frame_message(FrameKind::present, 3, 1), fence_slot, "present of image 3: a fence fd in slot 4 without a fence kind"},
        {fenced(make_frame_message(FrameKind::present, 3, 1)), 0, "present of image 3: fence kind sync_file without a fence fd"},
        {fenced(make_frame_message(FrameKind::release, 3), FenceKind::vulkan_opaque_semaphore), 0,
         "release of image 3: fence kind vulkan_opaque_semaphore without a fence fd"},
        {fenced(make_frame_message(FrameKind::present, 3, 1), static_cast<FenceKind>(4)), fence_slot,
         "present of image 3: unknown fence kind 4 (this side knows 0..3)"},
        // The timeline kind: a point, never an fd, on present and release; its fd only on
        // FrameKind::timeline, with kind drm_syncobj_timeline and no point.
        {fenced(make_frame_message(FrameKind::present, 3, 1), FenceKind::drm_syncobj_timeline), 0,
         "present of image 3: fence kind drm_syncobj_timeline without a point (fence point 0)"},
        {with_point(fenced(make_frame_message(FrameKind::release, 3), FenceKind::drm_syncobj_timeline), 4),
         fence_slot, "release of image 3: an fd in slot 4 with fence kind drm_syncobj_timeline, which carries a point"},
        {with_point(fenced(make_frame_message(FrameKind::present, 3, 1), FenceKind::sync_file), 4), fence_slot,
         "present of image 3: fence point 4 with fence kind sync_file, which has no points"},
        {fenced(make_frame_message(FrameKind::timeline, 0), FenceKind::drm_syncobj_timeline), 0,
         "timeline without the syncobj fd (slot 4 is empty)"},
        {fenced(make_frame_message(FrameKind::timeline, 0), FenceKind::sync_file), fence_slot,
         "timeline with fence kind sync_file, not drm_syncobj_timeline"},
        {make_frame_message(FrameKind::timeline, 0), fence_slot, "timeline with fence kind none"},
        {with_point(fenced(make_frame_message(FrameKind::timeline, 0), FenceKind::drm_syncobj_timeline), 2),
         fence_slot, "timeline with fence point 2: the syncobj is shared without one"},
        {fenced(make_frame_message(FrameKind::retire, 3)), 0, "retire of image 3: fence kind 1 on a message that carries no fence"},
        {fenced(make_frame_message(FrameKind::bye, 0), static_cast<FenceKind>(200)), 0,
         "bye of image 0: fence kind 200 on a message that carries no fence"},
        {fenced(make_frame_message(FrameKind::retired, 3)), fence_slot, "retired of image 3: fence kind 1 on a message"},
    };
    for (const Case& c : cases) {
        auto checked = check_frame_message(c.message, c.slots);
        ASSERT_FALSE(checked) << c.error;
        EXPECT_EQ(checked.error().code, Errc::protocol);
        EXPECT_NE(checked.error().message.find(c.error), std::string::npos) << checked.error().message;
    }
    FrameMessage reserved = fenced(make_frame_message(FrameKind::present, 3, 1));
    reserved.reserved_byte = 4;
    auto checked = check_frame_message(reserved, fence_slot);
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().message.find("reserved field is 4"), std::string::npos) << checked.error().message;
}

TEST(FrameMessages, FenceKindsHaveNamesAndSets) {
    EXPECT_EQ(to_string(FenceKind::sync_file), "sync_file");
    EXPECT_EQ(to_string(FenceKind::vulkan_opaque_semaphore), "vulkan_opaque_semaphore");
    EXPECT_EQ(to_string(static_cast<FenceKind>(9)), "unknown");
    EXPECT_TRUE(default_fence_kinds.contains(FenceKind::sync_file));
    EXPECT_FALSE(default_fence_kinds.contains(FenceKind::vulkan_opaque_semaphore));
    const FenceKindSet both = FenceKind::sync_file | FenceKind::vulkan_opaque_semaphore;
    EXPECT_TRUE(both.contains(FenceKind::vulkan_opaque_semaphore));
    EXPECT_FALSE(both.contains_raw(3));
    EXPECT_EQ(to_string(FenceKind::drm_syncobj_timeline), "drm_syncobj_timeline");
    EXPECT_FALSE(fence_kind_carries_fd(3));  // a point: its syncobj's fd crossed once
    EXPECT_TRUE(detail::fence_kind_has_point(3));
    EXPECT_FALSE(detail::fence_kind_has_point(1));
    EXPECT_FALSE(both.contains_raw(255));
    EXPECT_FALSE(fence_kind_carries_fd(0));
    EXPECT_TRUE(fence_kind_carries_fd(1));
    EXPECT_TRUE(fence_kind_carries_fd(2));
    EXPECT_FALSE(fence_kind_carries_fd(3));
    EXPECT_FALSE(fence_kind_carries_fd(255));
}

}  // namespace
}  // namespace texshare
