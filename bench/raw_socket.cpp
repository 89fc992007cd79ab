#include "raw_socket.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "harness.hpp"

namespace bench {

namespace {
constexpr std::size_t max_fds = 8;
}

void raw_send(int socket, std::span<const std::byte> bytes, std::span<const int> fds) {
    if (fds.size() > max_fds) fail("raw_send: too many fds");
    iovec data{const_cast<std::byte*>(bytes.data()), bytes.size()};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(int) * max_fds)> control{};
    if (!fds.empty()) {
        message.msg_control = control.data();
        message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
    }
    if (::sendmsg(socket, &message, MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
        fail(fmt::format("raw sendmsg: errno {}", errno));
    }
}

ssize_t raw_receive(int socket, std::span<std::byte> bytes) {
    iovec data{bytes.data(), bytes.size()};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(int) * max_fds)> control{};
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    const ssize_t received = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (received < 0) fail(fmt::format("raw recvmsg: errno {}", errno));
    for (cmsghdr* h = CMSG_FIRSTHDR(&message); h != nullptr; h = CMSG_NXTHDR(&message, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
            ::close(fd);
        }
    }
    if (received > 0 && (static_cast<std::size_t>(received) != bytes.size() ||
                         (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)) {
        fail("raw recvmsg: a short or truncated message");
    }
    return received;
}

}  // namespace bench
