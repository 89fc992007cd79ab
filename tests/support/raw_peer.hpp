// Test support: a misbehaving peer that writes raw bytes and raw SCM_RIGHTS with sendmsg,
// bypassing texshare's send path, to prove what the receiving side does with them.
#pragma once

#include <sys/socket.h>

#include <cstring>
#include <span>
#include <vector>

namespace texshare::testing {

inline ssize_t raw_send(int socket, std::span<const std::byte> bytes, std::span<const int> fds = {}) {
    iovec data{const_cast<std::byte*>(bytes.data()), bytes.size()};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    std::vector<std::byte> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
        message.msg_control = control.data();
        message.msg_controllen = control.size();
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
    }
    return ::sendmsg(socket, &message, MSG_NOSIGNAL);
}

// The bytes AuxChannel<T, FdCount> puts on the wire, built by hand.
template <typename T>
std::vector<std::byte> frame_bytes(const T& payload, std::uint32_t magic, std::uint32_t size,
                                   std::vector<std::uint8_t> mask) {
    std::vector<std::byte> bytes(8 + mask.size() + sizeof(T));
    std::memcpy(bytes.data(), &magic, 4);
    std::memcpy(bytes.data() + 4, &size, 4);
    std::memcpy(bytes.data() + 8, mask.data(), mask.size());
    std::memcpy(bytes.data() + 8 + mask.size(), &payload, sizeof(T));
    return bytes;
}

}  // namespace texshare::testing
