// The IO-safety check is switchable: with TEXSHARE_FD_SAFETY_CHECKS=0 (the release default)
// a close of an fd that is no longer open is ignored rather than fatal. A separate binary,
// because the macro must be the same in every translation unit of one program.
#undef TEXSHARE_FD_SAFETY_CHECKS
#define TEXSHARE_FD_SAFETY_CHECKS 0
#include <fcntl.h>
#include <unistd.h>

#include "support/fd_count.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {
namespace {

using UniqueFdUncheckedTest = testing::FdLeakTest;

TEST_F(UniqueFdUncheckedTest, ClosingAnFdClosedElsewhereIsIgnored) {
    {
        UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        ASSERT_TRUE(fd.valid());
        ::close(fd.get());
    }  // no abort
    SUCCEED();
}

TEST_F(UniqueFdUncheckedTest, ResetStillPreservesErrno) {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ::close(fd.get());
    errno = EIO;
    fd.reset();
    EXPECT_EQ(errno, EIO);
}

}  // namespace
}  // namespace texshare
