// vulkan/fence.hpp: the mode chosen once (the rule itself, choose_mode(), on every
// combination), the CPU-wait fallback on any driver (Debian 12's lavapipe on the host has no
// VK_KHR_external_semaphore_fd, so that is its mode), SYNC_FD semaphores where the driver
// has them (Mesa 25's lavapipe in the VM lane's backports guest; skipped with a message
// elsewhere), and OPAQUE_FD semaphores where the driver has them (NVIDIA; no lavapipe has
// them, measured: skipped with the driver's answer). Every fd handed in is consumed or
// closed: the process's fd count is unchanged after each test.
#include "texshare/vulkan/fence.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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


// The rule: sync_fd where allowed and supported; else opaque_fd where allowed and
// supported; else cpu_wait, the reason naming every refusal.
TEST(VulkanFencesTest, TheModeRuleOnEveryCombination) {
    const SemaphoreSupport both{"", ""};
    const SemaphoreSupport opaque_only{"SYNC_FD semaphores: externalSemaphoreFeatures 0x0, import and export need 0x3", ""};
    const SemaphoreSupport sync_only{"", "OPAQUE_FD semaphores: externalSemaphoreFeatures 0x0, import and export need 0x3"};
    const SemaphoreSupport neither{opaque_only.sync_fd_refusal, sync_only.opaque_fd_refusal};
    EXPECT_EQ(choose_mode(both, {}).mode, SyncMode::sync_fd);
    EXPECT_EQ(choose_mode(both, {true, true}).mode, SyncMode::sync_fd) << "SYNC_FD first: any peer can wait on it";
    EXPECT_EQ(choose_mode(both, {false, true}).mode, SyncMode::opaque_fd);
    EXPECT_EQ(choose_mode(opaque_only, {true, true}).mode, SyncMode::opaque_fd);
    EXPECT_EQ(choose_mode(sync_only, {true, true}).mode, SyncMode::sync_fd);
    auto not_allowed = choose_mode(opaque_only, {});
    EXPECT_EQ(not_allowed.mode, SyncMode::cpu_wait) << "OPAQUE_FD only when the application allows it";
    EXPECT_NE(not_allowed.reason.find("SYNC_FD semaphores: externalSemaphoreFeatures 0x0"), std::string::npos);
    EXPECT_NE(not_allowed.reason.find("OPAQUE_FD not allowed (Options::allow_opaque_fd"), std::string::npos)
        << not_allowed.reason;
    auto none = choose_mode(neither, {true, true});
    EXPECT_EQ(none.mode, SyncMode::cpu_wait);
    EXPECT_NE(none.reason.find("OPAQUE_FD semaphores: externalSemaphoreFeatures 0x0"), std::string::npos) << none.reason;
    auto forced = choose_mode(both, {false, false});
    EXPECT_EQ(forced.mode, SyncMode::cpu_wait);
    EXPECT_NE(forced.reason.find("SYNC_FD not allowed (Options)"), std::string::npos) << forced.reason;
    EXPECT_EQ(choose_mode(both, {}).reason, "");
    EXPECT_EQ(to_string(SyncMode::opaque_fd), "opaque_fd");
}

// What the driver says of OPAQUE_FD binary semaphores, asked here independently of Fences.
VkExternalSemaphoreFeatureFlags opaque_fd_features(const TestVulkan& vk) {
    const VkPhysicalDeviceExternalSemaphoreInfo info{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_SEMAPHORE_INFO, nullptr,
                                                     VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_OPAQUE_FD_BIT};
    VkExternalSemaphoreProperties external{VK_STRUCTURE_TYPE_EXTERNAL_SEMAPHORE_PROPERTIES, nullptr, 0, 0, 0};
    vkGetPhysicalDeviceExternalSemaphoreProperties(vk.handles().physical_device, &info, &external);
    return external.externalSemaphoreFeatures;
}

// opaque_fd is chosen exactly where the driver imports and exports OPAQUE_FD semaphores and
// the application allows it; the accepted fence kinds follow the mode.
TEST(VulkanFencesTest, OpaqueFdIsChosenExactlyWhereTheDriverHasItAndItIsAllowed) {
    auto vk = open({VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME});
    ASSERT_TRUE(vk);
    if (vk->enabled().empty()) {
        TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST("the driver offers no " VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME);
    }
    const VkExternalSemaphoreFeatureFlags features = opaque_fd_features(*vk);
    std::cout << "[measured] OPAQUE_FD binary semaphores: externalSemaphoreFeatures " << features << "\n";
    auto fences = Fences::create(vk->handles(), {false, true});
    ASSERT_TRUE(fences) << fences.error().message;
    const bool both = (features & 3U) == 3U;
    EXPECT_EQ(fences->mode(), both ? SyncMode::opaque_fd : SyncMode::cpu_wait) << fences->reason();
    if (both) {
        EXPECT_TRUE(fences->accepted_fence_kinds().contains(FenceKind::vulkan_opaque_semaphore));
    } else {
        EXPECT_NE(fences->reason().find("OPAQUE_FD semaphores: externalSemaphoreFeatures"), std::string::npos)
            << fences->reason();
        EXPECT_FALSE(fences->accepted_fence_kinds().contains(FenceKind::vulkan_opaque_semaphore));
    }
    EXPECT_TRUE(fences->accepted_fence_kinds().contains(FenceKind::sync_file));
    auto not_allowed = Fences::create(vk->handles(), {false, false});
    ASSERT_TRUE(not_allowed);
    EXPECT_EQ(not_allowed->mode(), SyncMode::cpu_wait) << "never opaque_fd unless the application allows it";
}

// Outside opaque_fd an OPAQUE_FD fence is refused (the endpoint should not have accepted it)
// and closed; a fence of kind none with an fd is refused too.
TEST(VulkanFencesTest, AnOpaqueFenceOutsideOpaqueFdModeIsRefusedAndClosed) {
    auto vk = open({});
    ASSERT_TRUE(vk);
    auto fences = Fences::create(vk->handles(), {false, false});
    ASSERT_TRUE(fences);
    const int fds = testing::open_fd_count();
    auto refused = fences->wait_semaphore(PeerFence{event_fd(true), FenceKind::vulkan_opaque_semaphore}, 1s);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_NE(refused.error().message.find("only opaque_fd mode imports (this is cpu_wait"), std::string::npos)
        << refused.error().message;
    auto kindless = fences->wait_semaphore(PeerFence{event_fd(true), FenceKind::none}, 1s);
    ASSERT_FALSE(kindless);
    EXPECT_NE(kindless.error().message.find("of kind 0 (none): not a fence kind"), std::string::npos)
        << kindless.error().message;
    EXPECT_EQ(testing::open_fd_count(), fds) << "a refused fence was kept";
}

// opaque_fd: a submit's signal exported as OPAQUE_FD (kind vulkan_opaque_semaphore; what the
// fd is, measured), imported temporarily into a new semaphore another submit waits on; fds
// that are no semaphore are refused before the driver sees them, and closed. Lavapipe has no
// OPAQUE_FD semaphores (Mesa 25 in the backports guest: externalSemaphoreFeatures 0 for
// OPAQUE_FD, and creating an exportable one fails with VK_ERROR_INVALID_EXTERNAL_HANDLE;
// docs/vm-lane-facts.md), so this skips there with the driver's answer; NVIDIA runs it.
TEST(VulkanFencesTest, OpaqueFdSemaphoresRoundTripAndNonSemaphoresAreRefusedAndClosed) {
    auto vk = open({VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME});
    ASSERT_TRUE(vk);
    auto fences = Fences::create(vk->handles(), {false, true});
    ASSERT_TRUE(fences) << fences.error().message;
    // No lavapipe has OPAQUE_FD semaphores (measured), so no lane CI runs has them: the GPU
    // lane (scripts/gpu-lane.sh, NVIDIA) runs this test and docs/gpu-lane.log records it.
    if (fences->mode() != SyncMode::opaque_fd) {
        GTEST_SKIP() << "no OPAQUE_FD semaphores here (no lavapipe has them; the GPU lane runs this on NVIDIA): "
                     << fences->reason();
    }
    auto queue = TestQueue::create(*vk);
    ASSERT_TRUE(queue) << queue.error().message;
    const int fds = testing::open_fd_count();
    {
        for (int round = 0; round < 3; ++round) {
            auto signal = fences->signal_semaphore();  // a new one per frame: the payload is shared by reference
            ASSERT_TRUE(signal) << signal.error().message;
            ASSERT_TRUE(queue->submit(Semaphore(), *signal, [](VkCommandBuffer) {}));
            auto fence = fences->fence_for_peer(queue->queue(), *signal);
            ASSERT_TRUE(fence) << fence.error().message;
            ASSERT_TRUE(fence->valid()) << "OPAQUE_FD always exports an fd";
            EXPECT_EQ(fence->kind, FenceKind::vulkan_opaque_semaphore);
            struct stat st {};
            ASSERT_EQ(::fstat(fence->fd.get(), &st), 0);
            char link[256] = {};
            (void)::readlink(("/proc/self/fd/" + std::to_string(fence->fd.get())).c_str(), link, sizeof link - 1);
            std::cout << "[measured] OPAQUE_FD semaphore fd: mode 0" << std::oct << (st.st_mode & S_IFMT) << std::dec
                      << " rdev " << major(st.st_rdev) << ":" << minor(st.st_rdev) << " -> " << link << "\n";
            auto wait = fences->wait_semaphore(std::move(*fence), 1s);
            ASSERT_TRUE(wait) << wait.error().message;
            ASSERT_TRUE(queue->submit(*wait, Semaphore(), [](VkCommandBuffer) {}));
            ASSERT_TRUE(queue->wait_idle());
        }
        int ends[2] = {-1, -1};
        ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
        ::close(ends[1]);
        auto pipe = fences->wait_semaphore(PeerFence{UniqueFd(ends[0]), FenceKind::vulkan_opaque_semaphore}, 1s);
        ASSERT_FALSE(pipe) << "a pipe was imported as an OPAQUE_FD semaphore";
        EXPECT_EQ(pipe.error().code, Errc::invalid_argument);
        EXPECT_NE(pipe.error().message.find("is a pipe"), std::string::npos) << pipe.error().message;
        auto memfd = fences->wait_semaphore(
            PeerFence{UniqueFd(::memfd_create("not-a-semaphore", MFD_CLOEXEC)), FenceKind::vulkan_opaque_semaphore}, 1s);
        ASSERT_FALSE(memfd);
        EXPECT_NE(memfd.error().message.find("is a memfd"), std::string::npos) << memfd.error().message;
        // A sync_file in this mode is waited on by the CPU.
        auto sync = fences->wait_semaphore(event_fd(true), 1s);
        ASSERT_TRUE(sync) << sync.error().message;
        EXPECT_EQ(sync->count(), 0U);
    }
    EXPECT_TRUE(detail::drain_peer_fd_closes(std::chrono::seconds(10)));
    EXPECT_EQ(testing::open_fd_count(), fds) << "an OPAQUE_FD fence was kept or leaked";
}

}  // namespace
}  // namespace texshare::vulkan
