// FrameImageListener (frame/image_listener.hpp): what a listener hears, and its refusals.
#include "texshare/frame/image_listener.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "support/frame_pair.hpp"

namespace texshare {
namespace {

using namespace std::chrono_literals;
using testing::allocate;
using testing::expect_error;
using testing::inode;
using testing::Pipe;
using testing::RecordingListener;
using FrameImageListenerTest = testing::FramePairTest;

TEST_F(FrameImageListenerTest, ListenerHearsOfEveryImageFromAddToDrop) {
    RecordingListener producer_side, consumer_side;
    sender_->set_listener(&producer_side);
    receiver_->set_listener(&consumer_side);
    const std::uint64_t a = add();
    const std::uint64_t c = add_to_receiver();
    pump_receiver();
    pump_sender();
    ASSERT_TRUE(sender_->retire(a));
    pump_receiver();
    pump_sender();
    EXPECT_EQ(producer_side.events,
              (std::vector<std::string>{"add 1", fmt::format("add {:x} peer", c), "remove 1"}));
    EXPECT_EQ(consumer_side.events,
              (std::vector<std::string>{fmt::format("add {:x}", c), "add 1 peer", "remove 1"}));
    sender_->set_listener(nullptr);
    receiver_->set_listener(nullptr);
}

TEST_F(FrameImageListenerTest, AListenerRefusalFailsTheAddOrTheDispatch) {
    RecordingListener refusing;
    refusing.refuse = true;
    sender_->set_listener(&refusing);
    DmaBufImage image = allocate();
    auto added = sender_->add_image(std::move(image));
    expect_error(added.error(), Errc::unsupported, "not wanted");
    EXPECT_FALSE(image.empty()) << "a refused image stays with the caller";
    EXPECT_EQ(receiver_->dispatch().value(), 0U) << "nothing was sent";
    sender_->set_listener(nullptr);

    receiver_->set_listener(&refusing);
    add();
    auto handled = receiver_->dispatch();
    ASSERT_FALSE(handled);
    expect_error(handled.error(), Errc::rejected, "refused by the listener");
    receiver_->set_listener(nullptr);
}

}  // namespace
}  // namespace texshare
