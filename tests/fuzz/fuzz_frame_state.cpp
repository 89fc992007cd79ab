// Fuzz target: the frame protocol's state machine. The input is a script of steps, each
// either a raw message from a hostile peer (to a FrameReceiver or to a FrameSender) or a
// call of the endpoint's own API; after every step the endpoints are dispatched and their
// invariants checked. Errors are expected; crashes, broken invariants and leaks are not.
//   input: a sequence of steps: u8 op | u8 id | u8 arg
#include <sys/socket.h>

#include <optional>

#include "fuzz/fuzz_support.hpp"
#include "support/raw_peer.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"

using namespace texshare;

namespace {

// A victim endpoint and the raw socket of the peer attacking it.
template <typename Endpoint>
struct Arena {
    int attacker = -1;
    std::optional<Endpoint> endpoint;

    Arena() {
        int ends[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) std::abort();
        attacker = ends[0];
        auto created = Endpoint::create(*FrameChannel::adopt(UniqueFd(ends[1])));
        if (!created) std::abort();
        endpoint.emplace(std::move(*created));
    }
    ~Arena() {
        endpoint.reset();
        ::close(attacker);
    }

    void send(FrameKind kind, std::uint64_t id, std::uint64_t frame, std::uint8_t arg) {
        FrameMessage message = make_frame_message(kind, id, frame);
        int fds[2] = {-1, -1};
        std::uint8_t mask = 0;
        int count = 0;
        if (kind == FrameKind::add_image) {
            const std::uint32_t side = 1 + arg % 32;
            ImageDescriptor& d = message.descriptor;
            d = ImageDescriptor{};
            d.backing = static_cast<std::uint8_t>(Backing::shared_memory);
            d.fd_plane_mask = 1;
            d.image_id = id;
            d.width = d.height = side;
            d.fourcc = DRM_FORMAT_ARGB8888;
            d.plane_count = 1;
            d.planes[0].stride = side * 4;
            fds[count++] = fuzz::make_fd(arg >> 5, side * side * 4);
            mask = 1;
        } else if ((arg & 1) != 0) {  // a fence, on kinds that may or may not carry one
            fds[count++] = fuzz::make_fd(3, 0);
            mask = 1 << frame_fence_slot;
        }
        const auto bytes = testing::frame_bytes(message, aux_channel_magic, sizeof(FrameMessage), {mask});
        (void)testing::raw_send(attacker, bytes, std::span<const int>(fds, static_cast<std::size_t>(count)),
                                MSG_NOSIGNAL | MSG_DONTWAIT);
        for (int i = 0; i < count; ++i) ::close(fds[i]);
    }

    // Drains what the endpoint sent to the attacker, so its buffer does not fill (unless the
    // script says to stop reading).
    void read_replies() {
        std::byte buffer[512];
        alignas(cmsghdr) std::byte control[256];
        while (true) {
            iovec io{buffer, sizeof buffer};
            msghdr header{};
            header.msg_iov = &io;
            header.msg_iovlen = 1;
            header.msg_control = control;
            header.msg_controllen = sizeof control;
            if (::recvmsg(attacker, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0) return;
            for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
                const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (std::size_t i = 0; i < n; ++i) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    ::close(fd);
                }
            }
        }
    }
};

DmaBufImage small_image() {
    auto image = MemfdAllocator().allocate(4, 4, DRM_FORMAT_ARGB8888);
    if (!image) std::abort();
    return std::move(*image);
}

void check(bool invariant, const char* what) {
    if (!invariant) {
        std::fprintf(stderr, "invariant broken: %s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::LeakCheck leak_check;
    fuzz::Input input(data, size);
    Arena<FrameReceiver> consumer;  // attacked by a hostile producer
    Arena<FrameSender> producer;    // attacked by a hostile consumer
    std::uint64_t frame = 0;
    bool read_replies = true;
    for (int step = 0; step < 256 && !input.empty(); ++step) {
        const auto op = input.take<std::uint8_t>();
        const auto raw_id = input.take<std::uint8_t>();
        const auto arg = input.take<std::uint8_t>();
        // Small ids collide often; the top bit of raw_id moves it into the consumer's space.
        const std::uint64_t id = (raw_id & 0x0f) | ((raw_id & 0x80) != 0 ? consumer_image_id_bit : 0);
        frame = (arg & 0x80) != 0 ? frame - (arg & 3) : frame + (arg & 3);
        switch (op % 16) {
            case 0: consumer.send(FrameKind::add_image, id, 0, arg); break;
            case 1: consumer.send(FrameKind::present, id, frame, arg); break;
            case 2: consumer.send(FrameKind::retire, id, 0, arg); break;
            case 3: consumer.send(FrameKind::retired, id, 0, arg); break;
            case 4: consumer.send(static_cast<FrameKind>(arg % 8), id, arg, arg); break;
            case 5: (void)consumer.endpoint->add_image(small_image()); break;
            case 6: (void)consumer.endpoint->release(id); break;
            case 7: (void)consumer.endpoint->retire(id); break;
            case 8: producer.send(FrameKind::release, id, 0, arg); break;
            case 9: producer.send(static_cast<FrameKind>(arg % 8), id, 0, arg); break;
            case 10: (void)producer.endpoint->add_image(small_image()); break;
            case 11: {
                auto free_image = producer.endpoint->acquire_free_image();
                (void)producer.endpoint->present(free_image ? free_image->id : id);
                break;
            }
            case 12: (void)producer.endpoint->retire(id); break;
            case 13: (void)producer.endpoint->take_release_fence(id); break;
            case 14: read_replies = !read_replies; break;
            case 15: (void)consumer.endpoint->take_acquire_fence(); break;
        }
        (void)consumer.endpoint->dispatch();
        (void)producer.endpoint->dispatch();
        if (read_replies) {
            consumer.read_replies();
            producer.read_replies();
        }
        check(consumer.endpoint->image_count() <= max_frame_images, "consumer table size");
        check(producer.endpoint->image_count() <= max_frame_images, "producer table size");
        if (auto current = consumer.endpoint->current()) {
            check(consumer.endpoint->image(current->image_id) == current->image.get() && current->image, "current frame is in the table");
            check(consumer.endpoint->state(current->image_id) == FrameImageState::presented, "current is held");
        }
    }
    return 0;
}
