// Test support: a misbehaving peer that writes raw bytes and raw control messages with
// sendmsg, bypassing texshare's send path, to prove what the receiving side does with them.
// Used by the unit tests, the attacker suite and the fuzz targets (so: no GoogleTest here).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <vector>

namespace texshare::testing {

// One control message: level, type and its data (SCM_RIGHTS: the fds' numbers).
struct ControlMessage {
    int level = SOL_SOCKET;
    int type = SCM_RIGHTS;
    std::vector<std::byte> data;
};

inline ControlMessage rights(std::span<const int> fds) {
    ControlMessage message;
    message.data.resize(fds.size() * sizeof(int));
    if (!fds.empty()) std::memcpy(message.data.data(), fds.data(), message.data.size());
    return message;
}

inline ControlMessage rights(std::initializer_list<int> fds) { return rights(std::span(fds.begin(), fds.size())); }

// sendmsg of `bytes` with any number of control messages, as they are (no checks).
inline ssize_t raw_send_controls(int socket, std::span<const std::byte> bytes, std::span<const ControlMessage> controls,
                                 int flags = MSG_NOSIGNAL) {
    std::size_t space = 0;
    for (const ControlMessage& c : controls) space += CMSG_SPACE(c.data.size());
    std::vector<std::byte> control(space);
    iovec data{const_cast<std::byte*>(bytes.data()), bytes.size()};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    if (space != 0) {
        message.msg_control = control.data();
        message.msg_controllen = space;
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        for (const ControlMessage& c : controls) {
            header->cmsg_level = c.level;
            header->cmsg_type = c.type;
            header->cmsg_len = CMSG_LEN(c.data.size());
            if (!c.data.empty()) std::memcpy(CMSG_DATA(header), c.data.data(), c.data.size());
            header = CMSG_NXTHDR(&message, header);
        }
    }
    return ::sendmsg(socket, &message, flags);
}

// sendmsg of `bytes` with one SCM_RIGHTS message carrying `fds` (none if empty).
inline ssize_t raw_send(int socket, std::span<const std::byte> bytes, std::span<const int> fds = {},
                        int flags = MSG_NOSIGNAL) {
    if (fds.empty()) return raw_send_controls(socket, bytes, {}, flags);
    const ControlMessage control = rights(fds);
    return raw_send_controls(socket, bytes, std::span(&control, 1), flags);
}

// The bytes AuxChannel<T, FdCount> puts on the wire, built by hand.
template <typename T>
std::vector<std::byte> frame_bytes(const T& payload, std::uint32_t magic, std::uint32_t size,
                                   std::vector<std::uint8_t> mask) {
    std::vector<std::byte> bytes(8 + mask.size() + sizeof(T));
    std::memcpy(bytes.data(), &magic, 4);
    std::memcpy(bytes.data() + 4, &size, 4);
    if (!mask.empty()) std::memcpy(bytes.data() + 8, mask.data(), mask.size());
    std::memcpy(bytes.data() + 8 + mask.size(), &payload, sizeof(T));
    return bytes;
}

}  // namespace texshare::testing
