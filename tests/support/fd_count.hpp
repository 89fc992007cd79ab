// Test support: the open-fd count of this process, and a fixture that insists it is
// unchanged after each test (a leaked or double-closed fd fails the test that caused it).
#pragma once

#include <dirent.h>

#include <chrono>

#include <gtest/gtest.h>

#include "texshare/detail/fd_closer.hpp"

namespace texshare::testing {

// Counted once texshare's closer thread has closed every peer fd handed to it so far
// (detail/fd_closer.hpp): refused fds are closed there, a moment after dispatch() returns.
inline int open_fd_count() {
    EXPECT_TRUE(detail::drain_peer_fd_closes(std::chrono::seconds(10))) << "texshare's closer thread did not drain";
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return -1;
    int count = 0;
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') ++count;
    }
    ::closedir(dir);
    return count - 1;  // the directory stream's own fd
}

class FdLeakTest : public ::testing::Test {
protected:
    void SetUp() override { fds_before_ = open_fd_count(); }
    void TearDown() override {
        EXPECT_EQ(open_fd_count(), fds_before_) << "the test leaked or closed an fd it did not own";
    }

private:
    int fds_before_ = 0;
};

}  // namespace texshare::testing
