// The wire format (frame/messages.hpp): sizes, kinds, and check_frame_message's envelope.
#include "texshare/frame/messages.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace texshare
