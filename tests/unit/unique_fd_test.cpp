#include "texshare/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "support/fd_count.hpp"

namespace texshare {
namespace {

using UniqueFdTest = testing::FdLeakTest;

static_assert(!std::is_convertible_v<int, UniqueFd>, "adopting an fd must be explicit");
static_assert(!std::is_convertible_v<UniqueFd, int>, "no implicit int");
static_assert(!std::is_convertible_v<int, BorrowedFd>, "borrowing an fd must be explicit");
static_assert(!std::is_copy_constructible_v<UniqueFd>);
static_assert(std::is_nothrow_move_constructible_v<UniqueFd>);

UniqueFd open_dev_null() {
    return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

TEST_F(UniqueFdTest, DefaultIsEmptyNotZero) {
    UniqueFd fd;
    EXPECT_FALSE(fd.valid());
    EXPECT_EQ(fd.get(), -1);
    EXPECT_FALSE(fd.borrow().valid());
    EXPECT_FALSE(UniqueFd(-7).valid()) << "any negative value is the empty state";
}

TEST_F(UniqueFdTest, ClosesOnDestruction) {
    int raw = -1;
    {
        UniqueFd fd = open_dev_null();
        raw = fd.get();
        ASSERT_TRUE(is_open(fd.borrow()));
    }
    EXPECT_FALSE(is_open(BorrowedFd(raw)));
}

TEST_F(UniqueFdTest, MoveTransfersOwnership) {
    UniqueFd a = open_dev_null();
    const int raw = a.get();
    UniqueFd b = std::move(a);
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_EQ(b.get(), raw);
    UniqueFd c = open_dev_null();
    c = std::move(b);
    EXPECT_EQ(c.get(), raw);
    c = std::move(c);  // self-move keeps the fd
    EXPECT_EQ(c.get(), raw);
}

TEST_F(UniqueFdTest, ReleaseGivesUpOwnership) {
    UniqueFd fd = open_dev_null();
    const int raw = fd.release();
    EXPECT_FALSE(fd.valid());
    EXPECT_TRUE(is_open(BorrowedFd(raw)));
    ::close(raw);
}

TEST_F(UniqueFdTest, ResetPreservesErrno) {
    UniqueFd fd = open_dev_null();
    errno = ENOSPC;
    fd.reset();
    EXPECT_EQ(errno, ENOSPC);
    EXPECT_FALSE(fd.valid());
}

TEST_F(UniqueFdTest, ResetTakesNewFd) {
    UniqueFd fd = open_dev_null();
    const int old_raw = fd.get();
    UniqueFd other = open_dev_null();
    const int new_raw = other.release();
    fd.reset(new_raw);
    EXPECT_EQ(fd.get(), new_raw);
    EXPECT_TRUE(new_raw == old_raw || !is_open(BorrowedFd(old_raw)));
}

TEST_F(UniqueFdTest, DupIsCloexecAndIndependent) {
    UniqueFd fd = open_dev_null();
    auto copy = fd.dup();
    ASSERT_TRUE(copy) << copy.error().message;
    EXPECT_NE(copy->get(), fd.get());
    EXPECT_GE(copy->get(), 3);
    EXPECT_EQ(::fcntl(copy->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    fd.reset();
    EXPECT_TRUE(is_open(copy->borrow()));
}

TEST_F(UniqueFdTest, DupOfNothingIsAnError) {
    auto copy = UniqueFd().dup();
    ASSERT_FALSE(copy);
    EXPECT_EQ(copy.error().code, Errc::invalid_argument);
    auto closed = UniqueFd::dup(BorrowedFd(1000000));
    ASSERT_FALSE(closed);
    EXPECT_EQ(closed.error().sys_errno, EBADF);
    EXPECT_NE(closed.error().message.find("1000000"), std::string::npos);
}

TEST_F(UniqueFdTest, FdZeroIsAnOrdinaryFd) {
    // Makepad skipped fd 0 by value; here 0 is owned and closed like any other fd.
    const int saved_stdin = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    ASSERT_GE(saved_stdin, 0);
    {
        UniqueFd zero(::fcntl(saved_stdin, F_DUPFD, 0));  // lands on 0 only if 0 is free
        ::close(0);
        zero.reset(::dup2(saved_stdin, 0));
        EXPECT_EQ(zero.get(), 0);
        EXPECT_TRUE(zero.valid());
    }
    EXPECT_FALSE(is_open(BorrowedFd(0)));
    ASSERT_EQ(::dup2(saved_stdin, 0), 0);
    ::close(saved_stdin);
}

TEST_F(UniqueFdTest, BorrowedFdNeverCloses) {
    UniqueFd fd = open_dev_null();
    {
        BorrowedFd view = fd.borrow();
        EXPECT_EQ(view.get(), fd.get());
    }
    EXPECT_TRUE(is_open(fd.borrow()));
    EXPECT_FALSE(is_open(BorrowedFd()));
}

TEST(UniqueFdDeathTest, ClosingAnFdClosedElsewhereAborts) {
    EXPECT_DEATH(
        {
            UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            ::close(fd.get());  // someone else closes what fd owns
        },
        "IO safety violation: UniqueFd closed fd [0-9]+, which was not open");
}

// What the header documents: when the number was reused between the wrong close and the
// owner's, the culprit's close hit the new file silently and the abort comes from the later
// owner of the number, once it closes.
TEST(UniqueFdDeathTest, AReusedNumberAbortsAtTheLaterOwnersClose) {
    EXPECT_DEATH(
        {
            UniqueFd first(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            const int number = first.get();
            ::close(number);  // a wrong close behind first's back
            UniqueFd later(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (later.get() != number) std::abort();  // the kernel hands out the lowest free number
            first.reset();  // closes later's file: no error, nothing to see yet
            std::fprintf(stderr, "first closed fine\n");
            later.reset();  // the later owner finds its fd gone
        },
        "first closed fine\n.*IO safety violation: UniqueFd closed fd [0-9]+, which was not open");
}

TEST(UniqueFdDeathTest, ResettingToTheOwnedFdAborts) {
    EXPECT_DEATH(
        {
            UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            fd.reset(fd.get());
        },
        "given the fd it already owns");
}

}  // namespace
}  // namespace texshare
