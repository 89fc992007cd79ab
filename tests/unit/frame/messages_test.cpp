// The wire format (frame/messages.hpp): sizes, kinds, and check_frame_message's envelope.
#include "texshare/frame/messages.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>

namespace texshare {
namespace {

static_assert(sizeof(FrameMessage) == 24 + sizeof(ImageDescriptor));

std::array<UniqueFd, frame_fd_slots> no_fds() { return {}; }

TEST(FrameMessages, EveryKindHasANameAndRefusedIsKnown) {
    for (std::uint32_t kind = 1; kind <= 8; ++kind) {
        EXPECT_NE(to_string(static_cast<FrameKind>(kind)), "unknown") << kind;
        auto fds = no_fds();
        FrameMessage m = make_frame_message(static_cast<FrameKind>(kind), 1);
        if (kind == static_cast<std::uint32_t>(FrameKind::add_image)) continue;  // needs a descriptor
        auto checked = check_frame_message(m, fds);
        ASSERT_TRUE(checked) << checked.error().message;
        EXPECT_EQ(*checked, static_cast<FrameKind>(kind));
    }
    auto fds = no_fds();
    FrameMessage unknown = make_frame_message(FrameKind::refused, 1);
    unknown.kind = 9;
    EXPECT_EQ(check_frame_message(unknown, fds).error().code, Errc::protocol);
}

TEST(FrameMessages, FdsOnlyInTheSlotsAKindUses) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    auto fds = no_fds();
    fds[frame_fence_slot].reset(fd);
    EXPECT_TRUE(check_frame_message(make_frame_message(FrameKind::present, 1, 1), fds));
    EXPECT_TRUE(check_frame_message(make_frame_message(FrameKind::release, 1), fds));
    auto refused = check_frame_message(make_frame_message(FrameKind::refused, 1), fds);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("refused of image 1: carries an fd in slot 4"), std::string::npos)
        << refused.error().message;
}

TEST(FrameMessages, AFrameNumberOnlyOnPresent) {
    auto fds = no_fds();
    auto checked = check_frame_message(make_frame_message(FrameKind::release, 3, 7), fds);
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().message.find("frame number 7 where none belongs"), std::string::npos);
}

// The per-frame check (a few branches on the slot mask AuxChannel already matched) accepts
// exactly what the rules allow, for every kind, every set of filled slots and the fields
// that must be zero: compared with the rules written out plainly here.
bool rules_allow(const FrameMessage& m, unsigned slots) {
    if (m.kind < 1 || m.kind > 8 || m.reserved != 0) return false;
    const auto kind = static_cast<FrameKind>(m.kind);
    if (kind != FrameKind::present && m.frame_number != 0) return false;
    const FrameMessage zero = make_frame_message(kind, m.image_id, m.frame_number);
    if (kind == FrameKind::add_image) {
        if (m.descriptor.image_id != m.image_id) return false;
    } else if (std::memcmp(&m.descriptor, &zero.descriptor, sizeof zero.descriptor) != 0) {
        return false;
    }
    unsigned allowed = 0;
    if (kind == FrameKind::add_image) allowed = 0b01111;
    if (kind == FrameKind::present || kind == FrameKind::release) allowed = 0b10000;
    if (kind == FrameKind::capabilities) allowed = 0b00001;
    return (slots & ~allowed) == 0;
}

TEST(FrameMessages, TheEnvelopeCheckFollowsTheRulesForEveryKindAndSlotMask) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    UniqueFd owner(fd);
    for (std::uint32_t kind = 0; kind <= 10; ++kind) {
        for (unsigned slots = 0; slots < (1U << frame_fd_slots); ++slots) {
            for (int variant = 0; variant < 6; ++variant) {
                FrameMessage m = make_frame_message(FrameKind::present, 5);
                m.kind = kind;
                if (variant == 1) m.frame_number = 9;
                if (variant == 2) m.reserved = 1;
                if (variant == 3) m.descriptor.image_id = 5;               // an add_image's descriptor
                if (variant == 4) m.descriptor.planes[3].stride = 1;       // a byte deep in the descriptor
                if (variant == 5) m.descriptor.image_id = 6;               // names another image
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

}  // namespace
}  // namespace texshare
