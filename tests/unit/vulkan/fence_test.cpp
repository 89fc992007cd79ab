// vulkan/fence.hpp: the mode chosen once, the CPU-wait fallback on any driver (Debian 12's
// lavapipe on the host has no VK_KHR_external_semaphore_fd, so that is its mode), and
// SYNC_FD semaphores where the driver has them (Mesa 25's lavapipe in the VM lane's
// backports guest; skipped with a message elsewhere). Every fd handed in is consumed or
// closed: the process's fd count is unchanged after each test.
#include "texshare/vulkan/fence.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "support/fd_count.hpp"
#include "support/vulkan_queue.hpp"
#include "support/vulkan_test_device.hpp"

namespace texshare::vulkan {
namespace {

using namespace std::chrono_literals;
using testing::TestQueue;
using testing::TestVulkan;

std::optional<TestVulkan> open(const std::vector<std::string>& wanted) {
    auto vk = TestVulkan::create(wanted);
    if (!vk) {
        ADD_FAILURE() << "no Vulkan driver (Debian: mesa-vulkan-drivers, for lavapipe): " << vk.error().message;
        return std::nullopt;
    }
    return std::move(*vk);
}

UniqueFd event_fd(bool signalled) {
    UniqueFd fd(::eventfd(signalled ? 1 : 0, EFD_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    return fd;
}

TEST(VulkanFencesTest, NullHandlesAreRefused) {
    auto fences = Fences::create({});
    ASSERT_FALSE(fences);
    EXPECT_EQ(fences.error().code, Errc::invalid_argument);
}

TEST(VulkanFencesTest, WithoutTheSemaphoreExtensionTheCpuWaitFallbackIsChosenAndNamed) {
    auto vk = open({});
    ASSERT_TRUE(vk);
    auto fences = Fences::create(vk->handles());
    ASSERT_TRUE(fences) << fences.error().message;
    EXPECT_EQ(fences->mode(), SyncMode::cpu_wait);
    EXPECT_NE(fences->reason().find(VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME " is not enabled (the device "),
              std::string::npos)
        << fences->reason();
    auto forced = Fences::create(vk->handles(), {false});
    ASSERT_TRUE(forced);
    EXPECT_EQ(forced->mode(), SyncMode::cpu_wait);
    EXPECT_NE(forced->reason().find("not allowed"), std::string::npos) << forced->reason();
}

// cpu_wait: a received fence is waited on by the CPU (bounded by the caller's timeout) and
// then closed; nothing is sent: the queue is idle when fence_for_peer() returns.
TEST(VulkanFencesTest, TheCpuWaitFallbackWaitsBoundedClosesEveryFenceAndSendsNone) {
    auto vk = open({});
    ASSERT_TRUE(vk);
    auto queue = TestQueue::create(*vk);
    ASSERT_TRUE(queue) << queue.error().message;
    auto fences = Fences::create(vk->handles(), {false});
    ASSERT_TRUE(fences);
    const int fds = testing::open_fd_count();
    auto ready = fences->wait_semaphore(event_fd(true), 1s);
    ASSERT_TRUE(ready) << ready.error().message;
    EXPECT_EQ(ready->count(), 0U);
    const auto start = std::chrono::steady_clock::now();
    auto late = fences->wait_semaphore(event_fd(false), 50ms);
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().code, Errc::timed_out) << late.error().message;
    EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
    auto none = fences->wait_semaphore(UniqueFd(), 1s);
    ASSERT_TRUE(none);
    EXPECT_EQ(none->count(), 0U);
    auto signal = fences->signal_semaphore();
    ASSERT_TRUE(signal);
    EXPECT_EQ(signal->count(), 0U);
    ASSERT_TRUE(queue->submit(*ready, *signal, [](VkCommandBuffer) {}));
    auto fence = fences->fence_for_peer(queue->queue(), *signal);
    ASSERT_TRUE(fence) << fence.error().message;
    EXPECT_FALSE(fence->valid()) << "the fallback sends no fence";
    auto no_queue = fences->fence_for_peer(VK_NULL_HANDLE, *signal);
    ASSERT_FALSE(no_queue);
    EXPECT_EQ(no_queue.error().code, Errc::invalid_argument);
    EXPECT_EQ(testing::open_fd_count(), fds) << "a fence fd was kept or leaked";
}

// sync_fd: a submit's signal exported as a sync_file, imported again as a semaphore another
// submit waits on; a non-sync_file fd is refused and closed. Where the driver lacks SYNC_FD
// semaphores the reason is printed as the measurement and the test skips.
TEST(VulkanFencesTest, SyncFdSemaphoresRoundTripAndAFakeFenceIsRefusedAndClosed) {
    auto vk = open({VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME});
    ASSERT_TRUE(vk);
    auto fences = Fences::create(vk->handles());
    ASSERT_TRUE(fences) << fences.error().message;
    std::cout << "[measured] Vulkan fence mode here: " << to_string(fences->mode()) << " " << fences->reason() << "\n";
    if (fences->mode() != SyncMode::sync_fd) TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("no SYNC_FD semaphores here: " << fences->reason());
    auto queue = TestQueue::create(*vk);
    ASSERT_TRUE(queue) << queue.error().message;
    const int fds = testing::open_fd_count();
    {
        auto no_semaphore = fences->fence_for_peer(queue->queue(), Semaphore());
        ASSERT_FALSE(no_semaphore);
        EXPECT_EQ(no_semaphore.error().code, Errc::invalid_argument);
        auto signal = fences->signal_semaphore();
        ASSERT_TRUE(signal) << signal.error().message;
        ASSERT_EQ(signal->count(), 1U);
        for (int round = 0; round < 3; ++round) {  // the export unsignals it: reusable
            ASSERT_TRUE(queue->submit(Semaphore(), *signal, [](VkCommandBuffer) {}));
            auto fence = fences->fence_for_peer(queue->queue(), *signal);
            ASSERT_TRUE(fence) << fence.error().message;
            std::cout << "[measured] round " << round << ": sync_file fd " << (fence->valid() ? "given" : "-1 (signalled)")
                      << "\n";
            auto wait = fences->wait_semaphore(std::move(*fence), 1s);
            ASSERT_TRUE(wait) << wait.error().message;
            ASSERT_TRUE(queue->submit(*wait, Semaphore(), [](VkCommandBuffer) {}));
            ASSERT_TRUE(queue->wait_idle());
        }
        auto fake = fences->wait_semaphore(event_fd(true), 1s);
        ASSERT_FALSE(fake) << "an eventfd was accepted as a sync_file";
        EXPECT_EQ(fake.error().code, Errc::invalid_argument) << fake.error().message;
        EXPECT_NE(fake.error().message.find("not a sync_file"), std::string::npos) << fake.error().message;
    }
    EXPECT_EQ(testing::open_fd_count(), fds) << "a sync_file was kept or leaked";
}

}  // namespace
}  // namespace texshare::vulkan
