#include "texshare/frame/protocol.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "support/frame_pair.hpp"
#include "support/frame_state.hpp"
#include "support/syscall_allowlist.hpp"
#include "texshare/memfd_allocator.hpp"

// Sanitizer runtimes bring their own operator new (TSan's cannot be replaced) and make
// syscalls of their own, so the tests that count those are left to the plain build
// (TEXSHARE_SANITIZED, from syscall_allowlist.hpp).
#if !defined(TEXSHARE_SANITIZED)
// Counts heap allocations while `counting` is set, to prove the per-frame path has none.
namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
    if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
// GCC sees the replaced new inlined next to free() and takes the pair for a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
#pragma GCC diagnostic pop
#endif

namespace texshare {
namespace {

static_assert(sizeof(FrameMessage) == 32 + frame_payload_bytes);

class FrameProtocolTest : public testing::FramePairTest {
protected:
    // Both sides accepting both kinds (as where negotiation proved one device and driver):
    // each fence arrives with the kind it was sent as. /dev/null stands in for an OPAQUE_FD
    // semaphore (NVIDIA's is a character device, /dev/nvidiactl); an eventfd for a sync_file.
    void accept_both_kinds() {
        FrameReceiver::Options receiver;
        receiver.accepted_fence_kinds = FenceKind::sync_file | FenceKind::vulkan_opaque_semaphore;
        FrameSender::Options sender;
        sender.accepted_fence_kinds = receiver.accepted_fence_kinds;
        make_endpoints(false, receiver, sender);
    }
};
using testing::allocate;
using testing::expect_error;
using testing::inode;
using testing::Pipe;
using testing::Fence;
using testing::same_file;

TEST_F(FrameProtocolTest, SharesOnceThenPresentsInOrderAndReleases) {
    const std::uint64_t a = add(), b = add(), c = add();
    EXPECT_EQ(pump_receiver(), 3U);
    EXPECT_EQ(receiver_->image_count(), 3U);
    ASSERT_NE(receiver_->image(b), nullptr);
    EXPECT_EQ(receiver_->image(b)->width(), 32U);
    EXPECT_FALSE(receiver_->current());

    std::uint64_t frame = 0;
    for (std::uint64_t id : {a, b, c}) {
        auto presented = sender_->present(id);
        ASSERT_TRUE(presented) << presented.error().message;
        EXPECT_EQ(*presented, ++frame);
        EXPECT_EQ(pump_receiver(), 1U);
        ASSERT_TRUE(receiver_->current());
        EXPECT_EQ(receiver_->current()->image_id, id);
        EXPECT_EQ(receiver_->current()->frame_number, frame);
    }
    EXPECT_EQ(pump_sender(), 4U) << "a and b came back (discarded, released) when b and c were presented";
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
    EXPECT_EQ(sender_->state(b), FrameImageState::free);
    EXPECT_EQ(sender_->state(c), FrameImageState::presented);
    auto next = sender_->acquire_free_image();
    ASSERT_TRUE(next);
    EXPECT_TRUE(next->id == a || next->id == b);
    EXPECT_FALSE(next->release_fence.valid());
}

TEST_F(FrameProtocolTest, EitherEndMayBeTheProducer) {
    for (bool second_end : {false, true}) {
        make_endpoints(second_end);
        const std::uint64_t a = add();
        ASSERT_TRUE(sender_->present(a));
        pump_receiver();
        EXPECT_EQ(receiver_->current()->image_id, a);
        ASSERT_TRUE(receiver_->release(a));
        pump_sender();
        EXPECT_EQ(sender_->state(a), FrameImageState::free);
    }
}

TEST_F(FrameProtocolTest, FencesTravelWithPresentAndRelease) {
    const std::uint64_t a = add(), b = add();
    pump_receiver();
    Fence acquire, release;
    ASSERT_TRUE(sender_->present(a, acquire.read_end.borrow()));
    pump_receiver();
    UniqueFd got_acquire = receiver_->take_acquire_fence();
    ASSERT_TRUE(got_acquire.valid());
    EXPECT_TRUE(same_file(got_acquire.borrow(), acquire.read_end.borrow()));
    EXPECT_FALSE(receiver_->take_acquire_fence().valid()) << "taken once";

    ASSERT_TRUE(receiver_->release(a, release.write_end.borrow()));
    pump_sender();
    expect_error(sender_->present(a).error(), Errc::invalid_argument, "release fence nobody took");
    ASSERT_TRUE(sender_->present(b));  // b has no pending fence
    auto next = sender_->acquire_free_image();
    ASSERT_TRUE(next);
    EXPECT_EQ(next->id, a);
    ASSERT_TRUE(next->release_fence.valid());
    EXPECT_TRUE(same_file(next->release_fence.borrow(), release.write_end.borrow()));
    EXPECT_TRUE(sender_->present(a));
}

UniqueFd opaque_stand_in() { return UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)); }

TEST_F(FrameProtocolTest, FencesTravelWithTheirKind) {
    accept_both_kinds();
    const std::uint64_t a = add(), b = add();
    pump_receiver();
    UniqueFd opaque = opaque_stand_in();
    Fence sync;
    ASSERT_TRUE(sender_->present(a, opaque.borrow(), FenceKind::vulkan_opaque_semaphore));
    pump_receiver();
    EXPECT_EQ(receiver_->acquire_fence_kind(), FenceKind::vulkan_opaque_semaphore);
    UniqueFd got = receiver_->take_acquire_fence();
    EXPECT_TRUE(same_file(got.borrow(), opaque.borrow()));
    EXPECT_EQ(receiver_->acquire_fence_kind(), FenceKind::none) << "taken";
    ASSERT_TRUE(receiver_->release(a, opaque.borrow(), FenceKind::vulkan_opaque_semaphore));
    ASSERT_TRUE(sender_->present(b, sync.read_end.borrow()));  // the BorrowedFd overload: a sync_file
    pump_receiver();
    EXPECT_EQ(receiver_->acquire_fence_kind(), FenceKind::sync_file);
    ASSERT_TRUE(receiver_->release(b, sync.write_end.borrow()));
    pump_sender();
    EXPECT_EQ(sender_->release_fence_kind(a), FenceKind::vulkan_opaque_semaphore);
    EXPECT_EQ(sender_->release_fence_kind(b), FenceKind::sync_file);
    auto next = sender_->acquire_free_image();
    ASSERT_TRUE(next);
    EXPECT_EQ(next->id, a);
    EXPECT_EQ(next->release_fence_kind, FenceKind::vulkan_opaque_semaphore);
    EXPECT_TRUE(same_file(next->release_fence.borrow(), opaque.borrow()));
    EXPECT_EQ(sender_->take_release_fence(b).valid(), true);
    EXPECT_EQ(sender_->release_fence_kind(b), FenceKind::none) << "taken";
    // No fence: no kind on the wire, whatever the call said.
    ASSERT_TRUE(sender_->present(a, BorrowedFd(), FenceKind::vulkan_opaque_semaphore));
    pump_receiver();
    EXPECT_EQ(receiver_->acquire_fence_kind(), FenceKind::none);
    EXPECT_FALSE(receiver_->take_acquire_fence().valid());
}

TEST_F(FrameProtocolTest, AFenceOfKindNoneIsRefusedByTheCall) {
    const std::uint64_t a = add();
    pump_receiver();
    Fence fence;
    const std::string before = testing::state_of(*sender_);
    expect_error(sender_->present(a, fence.read_end.borrow(), FenceKind::none).error(), Errc::invalid_argument,
                 "a fence fd " + std::to_string(fence.read_end.get()) + " of kind 0 (none)");
    expect_error(sender_->present(a, fence.read_end.borrow(), static_cast<FenceKind>(7)).error(),
                 Errc::invalid_argument, "of kind 7 (unknown)");
    EXPECT_EQ(testing::state_of(*sender_), before);
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    const std::string receiver_before = testing::state_of(*receiver_);
    expect_error(receiver_->release(a, fence.write_end.borrow(), FenceKind::none).error(), Errc::invalid_argument,
                 "release: image 1: a fence fd");
    EXPECT_EQ(testing::state_of(*receiver_), receiver_before);
}

TEST_F(FrameProtocolTest, ProducerByeDropsEveryImage) {
    add();
    sender_->close();
    expect_error(receiver_->dispatch().error(), Errc::peer_closed, "the producer said bye");
    EXPECT_EQ(receiver_->image_count(), 0U);
}

// ---- protocol 2: pacing, feedback, metadata --------------------------------------------------

class PacedProtocolTest : public FrameProtocolTest {
protected:
    void SetUp() override {
        FdLeakTest::SetUp();
        FrameSender::Options sender;
        sender.paced = true;
        make_endpoints(false, {}, sender);
        a_ = add();
        b_ = add();
        pump_receiver();
        pump_sender();
    }
    std::uint64_t a_ = 0, b_ = 0;
};

// The host's loop: begin_frame from its timer, the producer renders one frame per
// begin_frame, the host shows it and reports presented; the producer hears which
// begin_frame each present answered and when it reached the screen.
TEST_F(PacedProtocolTest, OneFramePerBeginFrameWithFeedbackNamingIt) {
    using namespace std::chrono_literals;
    ASSERT_TRUE(sender_->paced());
    expect_error(sender_->wait_for_begin_frame(1ms).error(), Errc::timed_out, "no begin_frame from the consumer");
    std::int64_t vsync = 1'000'000'000;
    for (std::uint64_t n = 1; n <= 4; ++n) {
        auto sequence = receiver_->begin_frame(vsync, 16'666'667);
        ASSERT_TRUE(sequence) << sequence.error().message;
        EXPECT_EQ(*sequence, n);
        auto begin = sender_->wait_for_begin_frame(1s);
        ASSERT_TRUE(begin) << begin.error().message;
        EXPECT_EQ(begin->sequence, n);
        EXPECT_EQ(begin->target_time_ns, vsync);
        EXPECT_EQ(begin->interval_ns, 16'666'667U);
        auto image = sender_->wait_for_free_image(1s);
        ASSERT_TRUE(image) << image.error().message;
        ASSERT_TRUE(sender_->present(image->id));
        auto frame = receiver_->wait_for_frame(n - 1, 1s);
        ASSERT_TRUE(frame) << frame.error().message;
        EXPECT_EQ(frame->metadata.begin_frame_sequence, n);
        ASSERT_TRUE(receiver_->presented(vsync + 5, presented_flag_copied));
        expect_error(receiver_->presented(vsync + 6).error(), Errc::invalid_argument, "was reported already");
        pump_sender();
        auto feedback = sender_->take_feedback();
        ASSERT_TRUE(feedback);
        EXPECT_TRUE(feedback->presented);
        EXPECT_EQ(feedback->image_id, image->id);
        EXPECT_EQ(feedback->frame_number, frame->frame_number);
        EXPECT_EQ(feedback->begin_frame_sequence, n);
        EXPECT_EQ(feedback->time_ns, vsync + 5);
        EXPECT_EQ(feedback->flags, presented_flag_copied);
        EXPECT_FALSE(sender_->take_feedback());
        vsync += 16'666'667;
    }
    EXPECT_EQ(receiver_->presented_count(), 4U);
    EXPECT_EQ(receiver_->discarded_count(), 0U);
}

// Mailbox: a paced producer that presents twice before the host shows anything is no
// error; the older frame is discarded and released with its untaken acquire fence as its
// release fence (nothing read it), and only the newer is shown. Exactly one feedback per present.
TEST_F(PacedProtocolTest, APresentWithoutABeginFrameReplacesTheUnshownOne) {
    ASSERT_TRUE(receiver_->begin_frame(5'000, 1));
    pump_sender();
    Fence fence;
    ASSERT_TRUE(sender_->present(a_, fence.read_end.borrow()));  // answers begin_frame 1
    ASSERT_TRUE(sender_->present(b_));  // no begin_frame pending: 0
    EXPECT_EQ(pump_receiver(), 2U);
    EXPECT_EQ(receiver_->current()->image_id, b_);
    EXPECT_EQ(receiver_->current()->metadata.begin_frame_sequence, 0U);
    EXPECT_EQ(receiver_->discarded_count(), 1U);
    EXPECT_EQ(pump_sender(), 2U) << "discarded, then the release of a";
    auto discarded = sender_->take_feedback();
    ASSERT_TRUE(discarded);
    EXPECT_FALSE(discarded->presented);
    EXPECT_EQ(discarded->image_id, a_);
    EXPECT_EQ(discarded->begin_frame_sequence, 1U);
    EXPECT_EQ(sender_->state(a_), FrameImageState::free);
    ASSERT_EQ(sender_->release_fence_kind(a_), FenceKind::sync_file) << "its untaken acquire fence came back";
    EXPECT_TRUE(same_file(sender_->take_release_fence(a_).borrow(), fence.read_end.borrow()));
    // A release of the shown-never frame b by the host: discarded too, once.
    ASSERT_TRUE(receiver_->release(b_));
    pump_sender();
    auto second = sender_->take_feedback();
    ASSERT_TRUE(second);
    EXPECT_FALSE(second->presented);
    EXPECT_EQ(second->image_id, b_);
    EXPECT_FALSE(sender_->take_feedback());
}

// Several begin_frames before the producer renders: after a dispatch it answers only the newest.
TEST_F(PacedProtocolTest, ASlowProducerAnswersOnlyTheNewestBeginFrame) {
    using namespace std::chrono_literals;
    for (int n = 0; n < 3; ++n) ASSERT_TRUE(receiver_->begin_frame(1'000 + n, 1));
    auto first = sender_->wait_for_begin_frame(1s);  // returns at the first one it reads
    ASSERT_TRUE(first);
    EXPECT_EQ(first->sequence, 1U);
    EXPECT_EQ(pump_sender(), 2U) << "a producer that fell behind dispatches to skip to the newest";
    auto begin = sender_->wait_for_begin_frame(1s);
    ASSERT_TRUE(begin);
    EXPECT_EQ(begin->sequence, 3U);
    EXPECT_EQ(sender_->skipped_begin_frames(), 2U);
    EXPECT_EQ(sender_->begin_frame_count(), 3U);
    ASSERT_TRUE(sender_->present(a_));
    pump_receiver();
    EXPECT_EQ(receiver_->current()->metadata.begin_frame_sequence, 3U);
}

TEST_F(PacedProtocolTest, CallsOutsideTheRulesAreRefused) {
    expect_error(receiver_->begin_frame(0, 1).error(), Errc::invalid_argument, "target time 0 ns");
    expect_error(receiver_->presented(5).error(), Errc::invalid_argument, "no frame of a live producer");
    ASSERT_TRUE(sender_->present(a_));
    pump_receiver();
    expect_error(receiver_->presented(0).error(), Errc::invalid_argument, "time 0 ns");
    expect_error(receiver_->presented(5, 3).error(), Errc::invalid_argument, "flags 0x3");
    const DamageRect outside{0, 0, 33, 1};
    PresentInfo info;
    info.damage = {&outside, 1};
    expect_error(sender_->present(b_, info).error(), Errc::invalid_argument, "outside the 32x16 image");
    make_endpoints(false);
    pump_receiver();
    expect_error(sender_->wait_for_begin_frame(std::chrono::milliseconds(1)).error(), Errc::invalid_argument,
                 "this producer runs free");
    expect_error(receiver_->begin_frame(5, 1).error(), Errc::invalid_argument, "the producer runs free");
}

// Shows one frame of image `id` and reports it presented: the damage of later frames is
// relative to it (a session's first frame damages the whole image whatever it says).
void show_first_frame(FrameSender& sender, FrameReceiver& receiver, std::uint64_t id) {
    const DamageRect part{0, 0, 2, 2};
    ASSERT_TRUE(sender.present(id, PresentInfo{.damage = {&part, 1}}));
    ASSERT_TRUE(receiver.dispatch());
    ASSERT_EQ(receiver.current()->image_id, id);
    EXPECT_EQ(receiver.current()->metadata.damage_count, 0U) << "a session's first frame damages the whole image";
    ASSERT_TRUE(receiver.presented(1));
}

// Damage, content time and flags reach the host as sent; more than 8 rectangles as their
// bounding box. The damaged share is what the example prints.
TEST_F(FrameProtocolTest, MetadataReachesTheHost) {
    const std::uint64_t a = add(), b = add(), first = add();
    pump_receiver();
    show_first_frame(*sender_, *receiver_, first);
    const DamageRect rects[] = {{0, 0, 8, 4}, {4, 2, 8, 4}};
    PresentInfo info;
    info.damage = rects;
    info.content_time_ns = 42;
    info.flags = present_flag_opaque;
    ASSERT_TRUE(sender_->present(a, info));
    pump_receiver();
    const auto frame = receiver_->current();
    ASSERT_TRUE(frame);
    const PresentMetadata& shown = frame->metadata;
    EXPECT_EQ(shown.damage_count, 2U);
    EXPECT_EQ(shown.damage[1], rects[1]);
    EXPECT_EQ(shown.content_time_ns, 42);
    EXPECT_EQ(shown.flags, present_flag_opaque);
    EXPECT_EQ(damaged_pixel_count(shown, 32, 16), 32U + 32U - 8U);
    ASSERT_TRUE(receiver_->presented(1));  // shown: the next frame's damage starts from it
    std::vector<DamageRect> many;
    for (std::uint32_t i = 0; i < 10; ++i) many.push_back({i, i, 1, 1});
    info.damage = many;
    ASSERT_TRUE(sender_->present(b, info));
    pump_receiver();
    EXPECT_EQ(receiver_->current()->metadata.damage_count, 1U);
    EXPECT_EQ(receiver_->current()->metadata.damage[0], (DamageRect{0, 0, 10, 10}));
    // A present without metadata after one with it: the kept outgoing message is clean.
    pump_sender();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    EXPECT_EQ(receiver_->current()->metadata.damage_count, 0U);
    EXPECT_EQ(receiver_->current()->metadata.content_time_ns, 0);
}

// The damage of a frame the host never showed (replaced, released or skipped unshown) joins
// the next frame's, so that a host composing only the damage misses nothing; presented()
// starts afresh; an image of another size damages everything.
TEST_F(FrameProtocolTest, DamageOfFramesNotShownJoinsTheNextFrame) {
    const std::uint64_t a = add(), b = add(), shown_first = add();
    auto small = sender_->add_image(allocate(16, 16));
    ASSERT_TRUE(small) << small.error().message;
    pump_receiver();
    show_first_frame(*sender_, *receiver_, shown_first);
    const DamageRect first{0, 0, 4, 4}, second{8, 8, 2, 2}, third{20, 10, 3, 3};
    ASSERT_TRUE(sender_->present(a, PresentInfo{.damage = {&first, 1}}));
    ASSERT_TRUE(sender_->present(b, PresentInfo{.damage = {&second, 1}}));
    pump_receiver();  // b replaced a unshown (mailbox)
    PresentMetadata shown = receiver_->current()->metadata;
    ASSERT_EQ(shown.damage_count, 2U);
    EXPECT_EQ(shown.damage[0], first);
    EXPECT_EQ(shown.damage[1], second);
    ASSERT_TRUE(receiver_->presented(1));
    pump_sender();
    // Released unshown: its damage still joins the next one's.
    ASSERT_TRUE(sender_->present(a, PresentInfo{.damage = {&third, 1}}));
    pump_receiver();
    ASSERT_TRUE(receiver_->release(a));
    pump_sender();
    ASSERT_TRUE(sender_->present(b, PresentInfo{.damage = {&second, 1}}));
    pump_receiver();
    shown = receiver_->current()->metadata;
    ASSERT_EQ(shown.damage_count, 2U);
    EXPECT_EQ(shown.damage[0], third);
    EXPECT_EQ(shown.damage[1], second);
    // Another size, unshown in between: the whole image.
    ASSERT_TRUE(receiver_->presented(2));
    pump_sender();
    ASSERT_TRUE(sender_->present(*small, PresentInfo{.damage = {&first, 1}}));
    ASSERT_TRUE(sender_->present(a, PresentInfo{.damage = {&second, 1}}));
    pump_receiver();
    EXPECT_EQ(receiver_->current()->metadata.damage_count, 0U);
    EXPECT_EQ(damaged_pixel_count(receiver_->current()->metadata, 32, 16), 32U * 16U);
    // Shown, then one frame: only its own damage.
    ASSERT_TRUE(receiver_->presented(3));
    pump_sender();
    ASSERT_TRUE(sender_->present(b, PresentInfo{.damage = {&third, 1}}));
    pump_receiver();
    shown = receiver_->current()->metadata;
    ASSERT_EQ(shown.damage_count, 1U);
    EXPECT_EQ(shown.damage[0], third);
}

// A present the host never got to see (of an image it refused, here) leaves a hole in the
// chain of damage: the next frame's damage is the whole image, even after presented().
TEST_F(FrameProtocolTest, AfterAPresentTheHostRefusedTheNextDamageIsWhole) {
    make_endpoints(false, {.max_producer_images = 1});
    auto own = receiver_->add_image(allocate());
    ASSERT_TRUE(own) << own.error().message;
    pump_sender();
    show_first_frame(*sender_, *receiver_, *own);
    const std::uint64_t a = add(), b = add();
    const DamageRect first{0, 0, 4, 4}, second{8, 8, 2, 2}, third{20, 10, 3, 3};
    ASSERT_TRUE(sender_->present(a, PresentInfo{.damage = {&first, 1}}));
    ASSERT_TRUE(sender_->present(b, PresentInfo{.damage = {&second, 1}}));  // before it hears b was refused
    auto refused = receiver_->dispatch();
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::rejected);
    pump_receiver();  // a shown; b's present refused and released back
    ASSERT_EQ(receiver_->current()->image_id, a);
    ASSERT_EQ(receiver_->current()->metadata.damage_count, 1U);
    ASSERT_TRUE(receiver_->presented(2));
    pump_sender();
    ASSERT_TRUE(sender_->present(*own, PresentInfo{.damage = {&third, 1}}));
    pump_receiver();
    ASSERT_EQ(receiver_->current()->image_id, *own);
    EXPECT_EQ(receiver_->current()->metadata.damage_count, 0U) << "b's damage never reached the host";
    // Shown, then the next frame: its own damage again.
    ASSERT_TRUE(receiver_->presented(3));
    pump_sender();
    ASSERT_TRUE(sender_->present(a, PresentInfo{.damage = {&third, 1}}));
    pump_receiver();
    ASSERT_EQ(receiver_->current()->metadata.damage_count, 1U);
    EXPECT_EQ(receiver_->current()->metadata.damage[0], third);
}

// A present made before the producer read the consumer's hello expects feedback (the
// producer asked for it); the hello saying "no feedback" ends that expectation, so the
// release that follows is no protocol error.
TEST_F(FrameProtocolTest, APresentBeforeTheConsumersHelloAwaitsNoFeedbackItDoesNotOffer) {
    make_endpoints(false, {.feedback = false});
    const std::uint64_t a = add();
    ASSERT_TRUE(sender_->present(a));
    pump_receiver();
    ASSERT_TRUE(receiver_->release(a));
    EXPECT_EQ(pump_sender(), 1U) << "the release (the hello is not counted)";
    EXPECT_EQ(sender_->state(a), FrameImageState::free);
}

// Feedback off on either side: none is sent, and a release needs none.
TEST_F(FrameProtocolTest, WithoutFeedbackNoneIsSent) {
    make_endpoints(false, {.feedback = false});
    const std::uint64_t a = add(), b = add();
    pump_receiver();
    pump_sender();
    ASSERT_TRUE(sender_->present(a));
    ASSERT_TRUE(sender_->present(b));
    EXPECT_EQ(pump_receiver(), 2U);
    ASSERT_TRUE(receiver_->presented(10));
    EXPECT_EQ(pump_sender(), 1U) << "the release of a only";
    EXPECT_FALSE(sender_->take_feedback());
}

#if !defined(TEXSHARE_SANITIZED)
TEST_F(FrameProtocolTest, PerFramePathDoesNotAllocate) {
    accept_both_kinds();
    const std::uint64_t a = add(), b = add();
    pump_receiver();
    Fence fence;
    UniqueFd opaque = opaque_stand_in();
    counting = true;
    Error probe = make_error(Errc::protocol, "a message too long for the small-string buffer {}", 42);
    counting = false;
    ASSERT_GT(allocations.load(), 0U) << "the counter must see allocations for this test to mean anything";
    allocations = 0;
    counting = true;
    bool ok = true;
    for (int frame = 0; frame < 8; ++frame) {
        const std::uint64_t id = frame % 2 == 0 ? a : b;
        // Every other frame with OPAQUE_FD fences: the second kind costs no allocation either.
        const FenceKind kind = frame % 4 < 2 ? FenceKind::sync_file : FenceKind::vulkan_opaque_semaphore;
        const BorrowedFd acquire_fence = kind == FenceKind::sync_file ? fence.read_end.borrow() : opaque.borrow();
        ok = ok && sender_->present(id, acquire_fence, kind).has_value();
        ok = ok && receiver_->dispatch().has_value();
        ok = ok && receiver_->acquire_fence_kind() == kind;
        UniqueFd acquire = receiver_->take_acquire_fence();
        ok = ok && receiver_->release(id, acquire_fence, kind).has_value();
        ok = ok && sender_->dispatch().has_value();
        ok = ok && sender_->release_fence_kind(id) == kind;
        ok = ok && sender_->take_release_fence(id).valid();
    }
    counting = false;
    EXPECT_TRUE(ok);
    EXPECT_EQ(allocations.load(), 0U);
}

// Protocol 2's frame: begin_frame, a present with damage, presented (or discarded), the
// release, the feedback read back. Still no allocation. The damage the host sees includes
// the previous frame's when that one was not shown (2 rectangles each).
bool paced_frame(FrameSender& sender, FrameReceiver& receiver, std::uint64_t id, std::int64_t vsync,
                 BorrowedFd fence, bool shown, bool previous_shown = true, bool first = false) {
    using namespace std::chrono_literals;
    static constexpr DamageRect damage[] = {{0, 0, 4, 4}, {8, 8, 2, 2}};
    PresentInfo info;
    info.damage = damage;
    info.content_time_ns = vsync;
    bool ok = receiver.begin_frame(vsync, 16'666'667).has_value();
    auto begin = sender.wait_for_begin_frame(1s);
    ok = ok && begin && begin->target_time_ns == vsync;
    auto frame = sender.present(id, fence, FenceKind::sync_file, info);
    ok = ok && frame.has_value();
    auto shown_frame = receiver.wait_for_frame(frame ? *frame - 1 : 0, 1s);
    ok = ok && shown_frame && shown_frame->metadata.damage_count == (first ? 0U : previous_shown ? 2U : 4U);
    UniqueFd acquire = receiver.take_acquire_fence();
    if (shown) ok = ok && receiver.presented(vsync + 1, presented_flag_zero_copy).has_value();
    ok = ok && receiver.release(id, fence).has_value();  // discarded first when not shown
    ok = ok && sender.dispatch().has_value();
    ok = ok && sender.state(id) == FrameImageState::free && sender.take_release_fence(id).valid();
    auto feedback = sender.take_feedback();
    ok = ok && feedback && feedback->presented == shown && feedback->begin_frame_sequence == begin->sequence;
    return ok && acquire.valid();
}

TEST_F(PacedProtocolTest, PacedFramesWithMetadataAndFeedbackDoNotAllocate) {
    Fence fence;
    ASSERT_TRUE(paced_frame(*sender_, *receiver_, a_, 1'000, fence.read_end.borrow(), true, true, true));  // warm
    allocations = 0;
    counting = true;
    bool ok = true;
    for (int frame = 0; frame < 8; ++frame) {
        ok = ok && paced_frame(*sender_, *receiver_, frame % 2 == 0 ? a_ : b_, 2'000 + frame,
                               fence.read_end.borrow(), frame % 3 != 0, frame == 0 || (frame - 1) % 3 != 0);
    }
    counting = false;
    EXPECT_TRUE(ok);
    EXPECT_EQ(allocations.load(), 0U);
}
#endif

#if defined(TEXSHARE_CAN_CONFINE_SYSCALLS)
template <typename Frames>
void expect_only_messages_and_close(Frames&& frames) {
    testing::expect_only_syscalls({__NR_sendmsg, __NR_recvmsg, __NR_close}, "sendmsg, recvmsg or close",
                                  std::forward<Frames>(frames));
}

// Per frame, the only syscalls are the messages themselves, closing fences taken, and one
// statx per fence received (proving it of a sync_file's kind before the host polls and
// closes it: detail/fd_probe.hpp): a child runs frames under a seccomp filter that kills it
// on any other syscall, so another fd probe (fcntl, fstat, lseek...), a poll or a heap
// refill (brk, mmap) ends it with SIGSYS. (Sanitizers make syscalls of their own, so their
// builds leave this test out.)
TEST_F(FrameProtocolTest, PerFramePathMakesOnlySendmsgRecvmsgCloseAndAStatxPerFence) {
    accept_both_kinds();
    const std::uint64_t a = add(), b = add();
    pump_receiver();
    Fence fence;
    UniqueFd opaque = opaque_stand_in();  // an OPAQUE_FD semaphore's stand-in: also one statx
    ASSERT_TRUE(detail::require_fence_kind(fence.read_end.borrow()));  // learns the anon inode once, here
    testing::expect_only_syscalls({__NR_sendmsg, __NR_recvmsg, __NR_close, __NR_statx},
                                  "sendmsg, recvmsg, close or a fence's statx", [&] {
        bool ok = true;
        for (int frame = 0; frame < 100 && ok; ++frame) {
            const std::uint64_t id = frame % 2 == 0 ? a : b;
            const FenceKind kind = frame % 4 < 2 ? FenceKind::sync_file : FenceKind::vulkan_opaque_semaphore;
            const BorrowedFd acquire_fence = kind == FenceKind::sync_file ? fence.read_end.borrow() : opaque.borrow();
            const BorrowedFd release_fence = kind == FenceKind::sync_file ? fence.write_end.borrow() : opaque.borrow();
            ok = sender_->present(id, acquire_fence, kind).has_value() && receiver_->dispatch().has_value();
            ok = ok && receiver_->acquire_fence_kind() == kind;
            UniqueFd acquire = receiver_->take_acquire_fence();
            ok = ok && receiver_->release(id, release_fence, kind).has_value() && sender_->dispatch().has_value();
            ok = ok && sender_->release_fence_kind(id) == kind;
            UniqueFd release = sender_->take_release_fence(id);
            ok = ok && release.valid() && acquire.valid();
        }
        return ok;
    });
}

// Protocol 2's frame (begin_frame, a present with damage, presented or discarded, release,
// feedback), waited for the way a paced producer and its host do: one sendmsg per message,
// received in the recvmsg that waits, a statx per fence, nothing else.
TEST_F(PacedProtocolTest, PacedFramesMakeOnlySendmsgRecvmsgCloseAndAStatxPerFence) {
    Fence fence;
    ASSERT_TRUE(detail::require_fence_kind(fence.read_end.borrow()));
    ASSERT_TRUE(paced_frame(*sender_, *receiver_, a_, 1'000, fence.read_end.borrow(), true, true, true));  // arms SO_RCVTIMEO
    testing::expect_only_syscalls({__NR_sendmsg, __NR_recvmsg, __NR_close, __NR_statx},
                                  "sendmsg, recvmsg, close or a fence's statx", [&] {
        bool ok = true;
        for (int frame = 0; frame < 100 && ok; ++frame) {
            ok = paced_frame(*sender_, *receiver_, frame % 2 == 0 ? a_ : b_, 2'000 + frame, fence.read_end.borrow(),
                             frame % 3 != 0, frame == 0 || (frame - 1) % 3 != 0);
        }
        return ok;
    });
}

// The waits too: they wait inside the recvmsg that receives the answer, never in a poll
// (after the first wait, which sets the socket's receive timeout once).
TEST_F(FrameProtocolTest, WaitingForFramesAndReleasesMakesOnlySendmsgRecvmsgAndClose) {
    const std::uint64_t a = add();
    pump_receiver();
    using namespace std::chrono_literals;
    const auto frame_loop = [&](int frames) {
        for (int n = 0; n < frames; ++n) {
            auto frame_number = sender_->present(a);
            if (!frame_number) return false;
            auto frame = receiver_->wait_for_frame(*frame_number - 1, 1s);
            if (!frame || frame->image_id != a || !receiver_->release(a)) return false;
            auto free_image = sender_->wait_for_free_image(1s);
            if (!free_image || free_image->id != a) return false;
        }
        return true;
    };
    ASSERT_TRUE(frame_loop(1));
    expect_only_messages_and_close([&] { return frame_loop(100); });
}
#endif

}  // namespace
}  // namespace texshare
