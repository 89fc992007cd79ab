// Host lane: egl_fence.hpp on llvmpipe (Mesa's surfaceless platform, no GPU). Software
// rendering fences nothing, so SyncMode::finish is what this machine gets: no fence is
// sent, and a received one is waited on by the CPU. The DMA-BUF modes run in the VM lane.
#include "texshare/egl/fence.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include "support/fd_count.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare::egl {
namespace {

using namespace std::chrono_literals;

class EglFenceTest : public testing::FdLeakTest {
protected:
    void SetUp() override {
        FdLeakTest::SetUp();
        auto display = Display::open_surfaceless();
        ASSERT_TRUE(display) << display.error().message;
        display_ = std::move(*display);
        auto image = MemfdAllocator().allocate(16, 16, DRM_FORMAT_ARGB8888);
        ASSERT_TRUE(image);
        image_ = std::move(*image);
    }
    void TearDown() override {
        image_ = DmaBufImage();
        display_ = Display();
        FdLeakTest::TearDown();
    }
    Display display_;
    DmaBufImage image_;
};

TEST_F(EglFenceTest, SoftwareRenderingFallsBackToFinish) {
    ASSERT_NE(display_.renderer().find("llvmpipe"), std::string::npos) << display_.renderer();
    EXPECT_FALSE(display_.has_extension("EGL_ANDROID_native_fence_sync"));
    EXPECT_EQ(choose_sync_mode(display_), SyncMode::finish);
    EXPECT_EQ(to_string(SyncMode::implicit_dma_buf), "implicit_dma_buf");
}

TEST_F(EglFenceTest, FinishSendsNoFenceBecauseTheWorkIsDone) {
    for (SyncMode mode : {SyncMode::finish, SyncMode::implicit_dma_buf}) {  // a memfd has no implicit fences
        auto fence = fence_for_peer(display_, mode, image_, Access::write);
        ASSERT_TRUE(fence) << fence.error().message;
        EXPECT_FALSE(fence->valid()) << to_string(mode);
    }
}

TEST_F(EglFenceTest, AReceivedFenceIsWaitedOnByTheCpuWithATimeout) {
    UniqueFd pending(::eventfd(0, EFD_CLOEXEC));  // a fence-like fd: readable once signalled
    ASSERT_TRUE(pending.valid());
    UniqueFd copy = *pending.dup();
    auto early = wait_for_peer(display_, SyncMode::finish, std::move(copy), image_, Access::read, 30ms);
    ASSERT_FALSE(early);
    EXPECT_EQ(early.error().code, Errc::timed_out);
    const std::uint64_t one = 1;
    ASSERT_EQ(::write(pending.get(), &one, sizeof one), static_cast<ssize_t>(sizeof one));
    EXPECT_TRUE(wait_for_peer(display_, SyncMode::finish, *pending.dup(), image_, Access::read, 1s));
    EXPECT_TRUE(wait_for_peer(display_, SyncMode::finish, UniqueFd(), image_, Access::read, 1s)) << "no fence: no wait";
}

}  // namespace
}  // namespace texshare::egl
