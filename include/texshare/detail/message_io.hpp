// One sendmsg / one recvmsg with SCM_RIGHTS, shared by every AuxChannel instantiation.
// Private to texshare: callers use AuxChannel.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>
#include <utility>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

// The kernel's SCM_MAX_FD: more fds than this in one message fail with EINVAL.
inline constexpr std::size_t max_fds_per_message = 253;

namespace detail {

inline Errc classify_socket_errno(int err) noexcept {
    switch (err) {
        case EAGAIN:
            return Errc::would_block;
        case EPIPE:
        case ECONNRESET:
        case ENOTCONN:
            return Errc::peer_closed;
        default:
            return Errc::system;
    }
}

// "Nothing to do now" is the normal end of every non-blocking drain loop, so it is built
// without formatting: the short text stays in std::string's inline buffer (no heap).
inline Error would_block_error(bool receiving) {
    return Error{Errc::would_block, EAGAIN, receiving ? "recvmsg: EAGAIN" : "sendmsg: EAGAIN"};
}

// `flags` adds to MSG_NOSIGNAL (e.g. MSG_DONTWAIT).
inline Result<void> send_message(BorrowedFd socket, std::span<const std::byte> bytes,
                                 std::span<const int> fds, int flags = 0) {
    iovec data{const_cast<std::byte*>(bytes.data()), bytes.size()};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    // Room for the largest message, but only the part used is cleared: this runs per frame,
    // and zeroing ~1 KiB for a one-fence message is work for nothing.
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(int) * max_fds_per_message)> control;
    if (!fds.empty()) {
        std::memset(control.data(), 0, CMSG_SPACE(sizeof(int) * fds.size()));
        message.msg_control = control.data();
        message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t sent = 0;
    do {
        sent = ::sendmsg(socket.get(), &message, MSG_NOSIGNAL | flags);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0 && errno == EAGAIN) return would_block_error(false);
    if (sent < 0) {
        return make_sys_error_as(classify_socket_errno(errno), errno,
                                 "sendmsg of {} bytes with {} fds on fd {}", bytes.size(), fds.size(),
                                 socket.get());
    }
    if (static_cast<std::size_t>(sent) != bytes.size()) {  // SEQPACKET is all or nothing
        return make_error(Errc::system, "sendmsg sent {} of {} bytes", sent, bytes.size());
    }
    return {};
}

// Receives one message into `buffer` and every fd it carried into `fds` (owned at once, so
// all error paths close them). `fds` must hold at least the control buffer's capacity.
// Returns the byte count; fd_count says how many of `fds` were filled. `flags` adds to
// MSG_CMSG_CLOEXEC (e.g. MSG_DONTWAIT). A signal restarts the recvmsg, unless
// `restart_on_signal` is false: then it ends as Errc::would_block with sys_errno EINTR (a
// wait under SO_RCVTIMEO restarted would wait its whole timeout again, forever under a
// periodic signal such as a profiler's SIGPROF).
inline Result<std::size_t> receive_message(BorrowedFd socket, std::span<std::byte> buffer,
                                           std::span<std::byte> control, std::span<UniqueFd> fds,
                                           std::size_t& fd_count, int flags = 0,
                                           bool restart_on_signal = true) {
    fd_count = 0;
    iovec data{buffer.data(), buffer.size()};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control.empty() ? nullptr : control.data();
    message.msg_controllen = control.size();
    ssize_t received = 0;
    for (bool reset_seen = false;;) {
        received = ::recvmsg(socket.get(), &message, MSG_CMSG_CLOEXEC | flags);
        if (received < 0 && errno == EINTR) {
            if (!restart_on_signal) return Error{Errc::would_block, EINTR, "recvmsg: interrupted by a signal"};
            continue;
        }
        // A peer that dies with messages of ours unread makes the kernel report ECONNRESET
        // once, ahead of the messages it sent before dying, which are still queued (EOF
        // follows them). They are the peer's last words (a killed renderer's last
        // presents): read on rather than drop them.
        if (received < 0 && errno == ECONNRESET && !reset_seen) {
            reset_seen = true;
            continue;
        }
        break;
    }
    if (received < 0 && errno == EAGAIN) return would_block_error(true);
    if (received < 0) {
        return make_sys_error_as(classify_socket_errno(errno), errno, "recvmsg on fd {}", socket.get());
    }
    bool foreign_control = false;
    bool too_many_fds = false;
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
         header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) {
            foreign_control = true;
            continue;
        }
        const std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const std::byte* raw = reinterpret_cast<const std::byte*>(CMSG_DATA(header));
        for (std::size_t i = 0; i < count; ++i) {
            int fd = -1;
            std::memcpy(&fd, raw + i * sizeof(int), sizeof fd);
            UniqueFd owned(fd);
            if (fd_count < fds.size()) {
                fds[fd_count++] = std::move(owned);
            } else {
                too_many_fds = true;  // cannot happen with a matching control buffer; close it
            }
        }
    }
    if (message.msg_flags & MSG_CTRUNC) {
        return make_error(Errc::truncated,
                          "recvmsg: fds were cut off (MSG_CTRUNC): the peer sent more than {} "
                          "fds, or this process is at its open-file limit",
                          fds.size());
    }
    if (message.msg_flags & MSG_TRUNC) {
        return make_error(Errc::truncated,
                          "recvmsg: message longer than the {} bytes expected "
                          "(MSG_TRUNC)",
                          buffer.size());
    }
    if (too_many_fds) {
        return make_error(Errc::protocol, "recvmsg: more fds than the {} this channel takes", fds.size());
    }
    if (foreign_control) {
        return make_error(Errc::protocol, "recvmsg: control message other than SCM_RIGHTS");
    }
    if (received == 0) {
        return make_error(Errc::peer_closed, "recvmsg on fd {}: the peer closed the channel", socket.get());
    }
    return static_cast<std::size_t>(received);
}

}  // namespace detail
}  // namespace texshare
