// drm_syncobj.hpp on the host, which has no DRM device: every entry point refuses a file that
// is not one with Errc::unsupported naming it, and leaks nothing. The kernel paths (signal,
// wait, transfer, sync_file bridges, two processes) run in the VM lane:
// tests/vm/drm_syncobj_vm_test.cpp.
#include "texshare/drm_syncobj.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>

#include <gtest/gtest.h>

#include "support/fd_count.hpp"

namespace texshare {
namespace {

using namespace std::chrono_literals;
using DrmSyncobjTest = testing::FdLeakTest;

TEST_F(DrmSyncobjTest, AFileThatIsNoDrmDeviceIsUnsupportedAndNamed) {
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(null);
    auto capable = require_syncobj_timeline(null.borrow());
    ASSERT_FALSE(capable);
    EXPECT_EQ(capable.error().code, Errc::unsupported);
    EXPECT_NE(capable.error().message.find("/dev/null (not a DRM device)"), std::string::npos)
        << capable.error().message;
    EXPECT_NE(capable.error().message.find("DRM_CAP_SYNCOBJ"), std::string::npos) << capable.error().message;
}

TEST_F(DrmSyncobjTest, CreateAndImportRefuseWithoutLeakingTheirDup) {
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    ASSERT_TRUE(event);
    auto created = DrmSyncobj::create(event.borrow());
    ASSERT_FALSE(created);
    EXPECT_EQ(created.error().code, Errc::unsupported) << created.error().message;
    auto imported = DrmSyncobj::import(event.borrow(), event.borrow());
    ASSERT_FALSE(imported);
    EXPECT_EQ(imported.error().code, Errc::unsupported) << imported.error().message;
}

TEST_F(DrmSyncobjTest, AnEmptyObjectIsInvalidAndMovesCleanly) {
    DrmSyncobj empty;
    EXPECT_FALSE(empty.valid());
    EXPECT_EQ(empty.handle(), 0U);
    DrmSyncobj moved = std::move(empty);
    EXPECT_FALSE(moved.valid());
}

TEST_F(DrmSyncobjTest, DeadlinesAreAbsoluteAndSaturate) {
    EXPECT_EQ(detail::syncobj_deadline(0ns), 0);
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const std::int64_t now_ns = std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
    const std::int64_t in_a_second = detail::syncobj_deadline(1s);
    EXPECT_GE(in_a_second, now_ns + 1'000'000'000);
    EXPECT_LT(in_a_second, now_ns + 2'000'000'000);
    EXPECT_EQ(detail::syncobj_deadline(std::chrono::nanoseconds::max()), INT64_MAX);
}

}  // namespace
}  // namespace texshare
