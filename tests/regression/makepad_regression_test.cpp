// Regression test for the bug texshare was founded on: Makepad's exporter started its fd
// out-value at 0 and wrapped it in an owner even when export failed, so for a CPU-only
// texture fd 0 (stdin) was sent to the peer and then closed twice, and the process aborted.
// Here a CPU-only image is shared while fd 0 is an open, unrelated file: no fd may be sent
// for it, fd 0 must stay open and unchanged, nothing aborts, and the fd count is unchanged.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/fd_count.hpp"
#include "texshare/image_wire.hpp"

namespace texshare {
namespace {

class MakepadRegressionTest : public testing::FdLeakTest {
protected:
    void SetUp() override {
        saved_stdin_ = ::fcntl(0, F_DUPFD_CLOEXEC, 3);  // may fail if stdin is closed; fine
        {
            char path[] = "/tmp/texshare-stdin-XXXXXX";
            UniqueFd file(::mkstemp(path));
            ASSERT_TRUE(file.valid());
            ::unlink(path);
            ASSERT_EQ(::write(file.get(), "unrelated", 9), 9);
            ASSERT_EQ(::dup2(file.get(), 0), 0);
        }
        ASSERT_EQ(::fstat(0, &stdin_before_), 0);
        FdLeakTest::SetUp();
    }
    void TearDown() override {
        FdLeakTest::TearDown();
        if (saved_stdin_ >= 0) {
            ::dup2(saved_stdin_, 0);
            ::close(saved_stdin_);
        }
    }

    int saved_stdin_ = -1;
    struct stat stdin_before_ {};
};

TEST_F(MakepadRegressionTest, CpuOnlyImageNeverSendsFdZero) {
    auto pair = ImageChannel::create_pair();
    ASSERT_TRUE(pair);
    auto image = DmaBufImage::create_cpu_only(*make_packed_layout(DRM_FORMAT_ABGR8888, 64, 64));
    ASSERT_TRUE(image);
    for (std::size_t i = 0; i < max_planes; ++i) {
        EXPECT_NE(image->plane_fd(i).get(), 0) << "an image without an fd must not claim fd 0";
    }
    ASSERT_TRUE(send_image(pair->first, 1, *image));

    auto raw = pair->second.receive();
    ASSERT_TRUE(raw) << raw.error().message;
    for (const UniqueFd& fd : raw->fds) EXPECT_FALSE(fd.valid()) << "no fd may travel for a CPU-only image";
    EXPECT_EQ(raw->message.fd_plane_mask, 0);
    auto imported = import_image(raw->message, std::move(raw->fds));
    ASSERT_TRUE(imported) << imported.error().message;
    EXPECT_EQ(imported->backing(), Backing::cpu_only);
    image = DmaBufImage();  // drop both images: nothing may be closed twice
    imported = DmaBufImage();

    struct stat stdin_after {};
    ASSERT_EQ(::fstat(0, &stdin_after), 0) << "fd 0 was closed";
    EXPECT_EQ(stdin_after.st_ino, stdin_before_.st_ino);
    EXPECT_EQ(stdin_after.st_dev, stdin_before_.st_dev);
    char text[9]{};
    EXPECT_EQ(::pread(0, text, 9, 0), 9);
    EXPECT_EQ(std::string(text, 9), "unrelated");
}

TEST_F(MakepadRegressionTest, FailedExportLeavesAnEmptyFdNotFdZero) {
    // The shape of Makepad's exporter, done right: the out-value starts at -1, so when the
    // export "fails" (never writes it) the owner is empty and the send skips the slot.
    int exported_fd = -1;
    const bool export_succeeded = false;
    UniqueFd owner(export_succeeded ? exported_fd : -1);
    EXPECT_FALSE(owner.valid());
    auto pair = AuxChannel<std::uint64_t, 1>::create_pair();
    ASSERT_TRUE(pair);
    ASSERT_TRUE(pair->first.send(std::uint64_t{1}, {owner.borrow()}));
    auto received = pair->second.receive();
    ASSERT_TRUE(received);
    EXPECT_FALSE(received->fds[0].valid());
}

}  // namespace
}  // namespace texshare
