// Host lane: these machines have no DRM device, so this checks that discovery says so
// clearly. Real allocation is tested in the VM lane (tests/vm/gbm_vm_test.cpp).
#include "texshare/gbm/allocator.hpp"

#include "support/fd_count.hpp"

namespace texshare {
namespace {

using GbmAllocatorTest = testing::FdLeakTest;

TEST_F(GbmAllocatorTest, OpenDefaultExplainsWhatItTried) {
    auto nodes = gbm::list_drm_nodes();
    ASSERT_TRUE(nodes) << nodes.error().message;
    auto device = gbm::Device::open_default();
    if (nodes->empty()) {
        ASSERT_FALSE(device);
        EXPECT_EQ(device.error().code, Errc::unsupported);
        EXPECT_NE(device.error().message.find("libdrm found no DRM device"), std::string::npos);
    } else if (!device) {
        for (const auto& node : *nodes) {
            EXPECT_NE(device.error().message.find(node.path), std::string::npos) << node.path;
        }
    }
}

TEST_F(GbmAllocatorTest, OpenOfAMissingNodeIsAnError) {
    auto device = gbm::Device::open("/dev/dri/no-such-node");
    ASSERT_FALSE(device);
    EXPECT_EQ(device.error().sys_errno, ENOENT);
    EXPECT_NE(device.error().message.find("/dev/dri/no-such-node"), std::string::npos);
}

TEST_F(GbmAllocatorTest, OpenOfSomethingThatIsNotADeviceNodeIsAnError) {
    // gbm_create_device must never be handed a regular file or /dev/null: checked first.
    for (const char* path : {"/dev/null", "/dev/zero"}) {
        auto device = gbm::Device::open(path);
        ASSERT_FALSE(device) << path;
        EXPECT_EQ(device.error().code, Errc::invalid_argument);
        EXPECT_EQ(device.error().message, fmt::format("{} is not a DRM device node", path));
    }
}

}  // namespace
}  // namespace texshare
