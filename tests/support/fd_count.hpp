// Test support: the open-fd count of this process, and a fixture that insists it is
// unchanged after each test (a leaked or double-closed fd fails the test that caused it).
#pragma once

#include <dirent.h>

#include <gtest/gtest.h>

namespace texshare::testing {

inline int open_fd_count() {
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
