// Test support: a fixture holding both ends of a fresh channel socketpair, closed (and the
// fd count checked) after each test.
#pragma once

#include "support/fd_count.hpp"

namespace texshare::testing {

template <typename Channel>
class ChannelPairTest : public FdLeakTest {
protected:
    void SetUp() override {
        FdLeakTest::SetUp();
        auto pair = Channel::create_pair();
        ASSERT_TRUE(pair) << pair.error().message;
        sender_ = std::move(pair->first);
        receiver_ = std::move(pair->second);
    }
    void TearDown() override {
        sender_.close();
        receiver_.close();
        FdLeakTest::TearDown();
    }

    Channel sender_;
    Channel receiver_;
};

}  // namespace texshare::testing
