// Test support: puts this process at its open-file limit (RLIMIT_NOFILE) for a scope, so
// the kernel cannot install a received fd (recvmsg reports MSG_CTRUNC): the real case of a
// host at its fd limit, not a simulation.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <vector>

#include <gtest/gtest.h>

#include "support/fd_count.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare::testing {

class AtFdLimit {
public:
    AtFdLimit() {
        EXPECT_EQ(::getrlimit(RLIMIT_NOFILE, &old_), 0);
        // Fill every hole below the limit, so the lowest free fd is the limit itself.
        const int limit = open_fd_count() + 4;
        while (true) {
            UniqueFd filler(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (!filler || filler.get() >= limit) break;
            fillers_.push_back(std::move(filler));
        }
        rlimit tight = old_;
        tight.rlim_cur = static_cast<rlim_t>(limit);
        EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
        UniqueFd probe(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        EXPECT_FALSE(probe.valid()) << "not at the limit: fd " << probe.get() << " could still be opened";
    }
    ~AtFdLimit() { lift(); }
    void lift() {
        if (lifted_) return;
        lifted_ = true;
        EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &old_), 0);
        fillers_.clear();
    }

private:
    rlimit old_{};
    std::vector<UniqueFd> fillers_;
    bool lifted_ = false;
};

}  // namespace texshare::testing
