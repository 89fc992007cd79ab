// Fuzz target: the message decoder. The input is one raw message (bytes plus up to 7 fds of
// input-chosen kinds) as a hostile peer would send it; AuxChannel::receive and
// check_frame_message must refuse or accept it without crashing or leaking an fd.
//   input: u8 fd count | per fd: u8 kind, u32 size | message bytes (its fence_kind byte
//   included: a fence that passes the envelope goes through the endpoints' fence check too,
//   a present's metadata through check_present_metadata, a hello through check_hello)
#include <sys/socket.h>

#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "support/raw_peer.hpp"
#include "texshare/detail/fence_probe.hpp"
#include "texshare/frame/hello.hpp"
#include "texshare/frame/messages.hpp"
#include "texshare/frame/present_metadata.hpp"

using namespace texshare;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::LeakCheck leak_check;
    fuzz::Input input(data, size);
    std::vector<int> fds;
    const unsigned fd_count = input.take<std::uint8_t>() % 8;
    for (unsigned i = 0; i < fd_count; ++i) {
        const auto kind = input.take<std::uint8_t>();
        const int fd = fuzz::make_fd(kind, input.take<std::uint32_t>());
        if (fd >= 0) fds.push_back(fd);
    }
    const auto bytes = input.rest();
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) std::abort();
    auto channel = FrameChannel::adopt(UniqueFd(ends[1]));
    if (!channel) std::abort();
    const std::span<const std::byte> message(reinterpret_cast<const std::byte*>(bytes.data()),
                                             std::min<std::size_t>(bytes.size(), 65536));
    const bool sent = testing::raw_send(ends[0], message, fds, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0;
    for (int fd : fds) ::close(fd);
    ::close(ends[0]);
    if (!sent) return 0;
    (void)channel->set_nonblocking(true);
    auto received = channel->receive();
    if (received) {
        auto kind = check_frame_message(received->message, received->fds);
        if (kind && received->fds[frame_fence_slot].valid()) {  // present or release: what the endpoints check next
            (void)detail::require_fence(received->fds[frame_fence_slot].borrow(), received->message.fence_kind,
                                        FenceKind::sync_file | FenceKind::vulkan_opaque_semaphore);
        }
        // Protocol 2's payload checks, as the endpoints make them.
        if (kind && *kind == FrameKind::present) {
            (void)check_present_metadata(received->message.payload_as<PresentMetadata>(), 64, 64);
        }
        if (kind && *kind == FrameKind::hello) {
            (void)check_hello(received->message, HelloRole::producer, known_hello_features);
        }
        if (kind && *kind == FrameKind::add_image) {
            PlaneFds planes;
            for (std::size_t i = 0; i < max_planes; ++i) planes[i] = std::move(received->fds[i]);
            (void)import_image(received->message.descriptor(), std::move(planes));
        }
    }
    return 0;
}
