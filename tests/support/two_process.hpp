// Test support: a producer and a consumer as two forked children, connected by an ImageChannel,
// a FrameChannel (for a FrameSender and a FrameReceiver) and a note channel (small messages
// carrying at most one fd, e.g. a sync_file). The gtest
// process itself never touches a driver, so each child starts without driver state; each
// child checks that its open-fd count is the same after its part as before, and a child's
// failures fail the test through its exit status.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <optional>
#include <string_view>

#include <gtest/gtest.h>

#include "support/fd_count.hpp"
#include "texshare/frame/messages.hpp"
#include "texshare/image_wire.hpp"

namespace texshare::testing {

// What the two sides tell each other besides images: a step, a flag and a value, as each
// test defines them.
struct Note {
    std::uint32_t step = 0;
    std::uint32_t flag = 0;
    std::uint64_t value = 0;
};
using NoteChannel = AuxChannel<Note, 1>;  // one fd: a sync_file
struct Peer {
    ImageChannel images;
    NoteChannel notes;
    FrameChannel frames;
};
using Role = std::function<void(Peer&)>;

[[noreturn]] inline void run_child(const char* role, Peer peer, const Role& body) {
    ::alarm(240);  // a child stuck on a peer that never answers dies visibly (SIGALRM)
    const int fds_before = open_fd_count();
    {
        SCOPED_TRACE(role);
        body(peer);
        // The body may have given the frame channel to a FrameSender or FrameReceiver, which
        // closed it; either way it is closed now and not counted as closed by mistake.
        peer.frames.close();
        EXPECT_EQ(open_fd_count(), fds_before - 1) << role << " leaked or closed an fd";
    }
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(::testing::Test::HasFailure() ? 1 : 0);
}

// Runs `producer` and `consumer` in two children and waits for both.
inline void run_pair(const Role& producer, const Role& consumer) {
    auto images = ImageChannel::create_pair();
    auto notes = NoteChannel::create_pair();
    auto frames = FrameChannel::create_pair();
    ASSERT_TRUE(images && notes && frames);
    const auto close_all = [&] {
        images->first.close(), images->second.close(), notes->first.close(), notes->second.close();
        frames->first.close(), frames->second.close();
    };
    std::array<pid_t, 2> children{-1, -1};
    for (std::size_t side = 0; side < 2; ++side) {
        std::fflush(stdout);  // or the child repeats what this process printed but had not written yet
        children[side] = ::fork();
        ASSERT_GE(children[side], 0);
        if (children[side] == 0) {
            Peer peer{side == 0 ? std::move(images->first) : std::move(images->second),
                      side == 0 ? std::move(notes->first) : std::move(notes->second),
                      side == 0 ? std::move(frames->first) : std::move(frames->second)};
            close_all();
            run_child(side == 0 ? "producer" : "consumer", std::move(peer), side == 0 ? producer : consumer);
        }
    }
    close_all();
    for (std::size_t side = 0; side < 2; ++side) {
        int status = 0;
        while (::waitpid(children[side], &status, 0) < 0 && errno == EINTR) {
        }
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << (side == 0 ? "producer" : "consumer") << " ended with wait status 0x" << std::hex << status;
    }
}

// Runs `body` in a child of its own (as the producer, with an idle consumer), so driver state
// (GBM, EGL and llvmpipe's threads) never enters the gtest process that forks later tests.
inline void run_alone(const Role& body) {
    run_pair(body, [](Peer&) {});
}

inline void send_note(Peer& peer, Note note, BorrowedFd fd = {}) {
    auto sent = peer.notes.send(note, {fd});
    EXPECT_TRUE(sent) << sent.error().message;
}

inline NoteChannel::Received wait_note(Peer& peer) {
    auto note = peer.notes.receive();
    if (!note) ADD_FAILURE() << "note: " << note.error().message;
    return note ? std::move(*note) : NoteChannel::Received{};
}

// A child's way to take a result: its value, or a recorded failure and nothing.
template <typename T>
std::optional<T> value_or_fail(Result<T> result, std::string_view what) {
    if (result) return std::move(*result);
    ADD_FAILURE() << what << ": " << result.error().message;
    return std::nullopt;
}

}  // namespace texshare::testing
