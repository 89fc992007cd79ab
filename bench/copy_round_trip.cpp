// What zero copy is measured against (section 3): handing a frame's pixels to another
// process by copying them. Per frame the parent either writes every byte through a stream
// socket, which the child reads into its own buffer, or memcpy's them into a shared-memory
// mapping the child also has (a wl_shm-style buffer; the child is told with one small
// message and does not copy them again). The child answers each frame with one byte.
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "children.hpp"
#include "round_trip.hpp"
#include "texshare/image_mapping.hpp"
#include "texshare/image_wire.hpp"
#include "texshare/memfd_allocator.hpp"

namespace bench {
namespace {

using namespace texshare;

void write_all(int fd, const std::byte* data, std::size_t size) {
    while (size > 0) {
        const ssize_t written = ::write(fd, data, size);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) fail(fmt::format("copy: write: errno {}", errno));
        data += written;
        size -= static_cast<std::size_t>(written);
    }
}

// false at the peer's end (before the first byte).
bool read_all(int fd, std::byte* data, std::size_t size) {
    bool first = true;
    while (size > 0) {
        const ssize_t got = ::read(fd, data, size);
        if (got < 0 && errno == EINTR) continue;
        if (got == 0 && first) return false;
        if (got <= 0) fail(fmt::format("copy: read: errno {}", errno));
        first = false;
        data += got;
        size -= static_cast<std::size_t>(got);
    }
    return true;
}

class CopyRoundTrip final : public RoundTrip {
public:
    CopyRoundTrip(CopyKind kind, std::uint32_t width, std::uint32_t height)
        : kind_(kind), frame_(std::size_t{width} * height * 4) {
        for (std::size_t i = 0; i < frame_.size(); ++i) frame_[i] = static_cast<std::byte>(i * 31);
        auto [mine, theirs] = socket_pair(kind == CopyKind::socket ? SOCK_STREAM : SOCK_SEQPACKET);
        socket_ = std::move(mine);
        std::vector<UniqueFd> fds;
        fds.push_back(std::move(theirs));
        child_ = spawn_child("copy", std::move(fds),
                             {kind == CopyKind::socket ? "socket" : "shm", std::to_string(frame_.size())});
        if (kind == CopyKind::shared_memory) {
            // The shared buffer goes over once, as a texshare image (what wl_shm would do with a pool).
            auto image = must(MemfdAllocator().allocate(width, height, DRM_FORMAT_ARGB8888), "allocate");
            ImageChannel channel = must(ImageChannel::adopt(must(UniqueFd::dup(socket_.borrow()), "dup")), "adopt");
            must(send_image(channel, 1, image), "send_image");
            mapping_ = must(image.map(Access::write), "map");
            if (mapping_->stride(0) != width * 4) fail("copy: unexpected stride");
        }
    }
    ~CopyRoundTrip() override {
        socket_.reset();
        expect_clean_exit(child_, "copy");
    }

    void run(std::size_t iterations) override {
        for (std::size_t i = 0; i < iterations; ++i) {
            if (kind_ == CopyKind::socket) {
                write_all(socket_.get(), frame_.data(), frame_.size());
            } else {
                std::memcpy(mapping_->plane(0).data(), frame_.data(), frame_.size());
                const std::byte ready{1};
                write_all(socket_.get(), &ready, 1);
            }
            std::byte ack{};
            if (!read_all(socket_.get(), &ack, 1)) fail("the copy child hung up");
        }
    }

private:
    CopyKind kind_;
    std::vector<std::byte> frame_;
    UniqueFd socket_;
    texshare::ChildProcess child_;
    std::optional<ImageMapping> mapping_;
};

}  // namespace

std::unique_ptr<RoundTrip> make_copy_round_trip(CopyKind kind, std::uint32_t width, std::uint32_t height) {
    return std::make_unique<CopyRoundTrip>(kind, width, height);
}

int copy_round_trip_child(const ChildArgs& args) {
    if (args.size() != 2) fail("copy child: expects socket|shm and a byte count");
    UniqueFd socket = inherited_fd(0);
    const std::size_t bytes = std::stoull(args[1]);
    std::vector<std::byte> buffer(args[0] == "socket" ? bytes : 1);
    std::optional<DmaBufImage> shared;
    if (args[0] == "shm") {  // the pixels stay where they are: the child holds the buffer, copies nothing
        ImageChannel channel = must(ImageChannel::adopt(must(UniqueFd::dup(socket.borrow()), "dup")), "adopt");
        shared = must(receive_image(channel), "receive_image").image;
    }
    while (read_all(socket.get(), buffer.data(), buffer.size())) {
        const std::byte ack{1};
        write_all(socket.get(), &ack, 1);
    }
    return 0;
}

}  // namespace bench
