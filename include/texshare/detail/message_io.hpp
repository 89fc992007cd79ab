// One sendmsg / one recvmsg with SCM_RIGHTS, shared by every AuxChannel instantiation.
// Private to texshare: callers use AuxChannel.
#pragma once

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "texshare/detail/fd_closer.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

// The kernel's SCM_MAX_FD: more fds than this in one message fail with EINVAL.
inline constexpr std::size_t max_fds_per_message = 253;

// How one receive ended when it did not fail.
enum class ReceiveStatus : std::uint8_t {
    message,      // a record arrived
    nothing,      // nothing pending (EAGAIN), or SO_RCVTIMEO ran out
    interrupted,  // a signal cut the wait short (EINTR) and restarting was not asked for
};

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

// ETOOMANYREFS: the kernel counts every fd sent with SCM_RIGHTS and not yet received
// against the sending user (all its processes together), and refuses more once that count
// exceeds the sender's RLIMIT_NOFILE, unless it has CAP_SYS_RESOURCE or CAP_SYS_ADMIN
// (too_many_unix_fds() in net/unix/). Any process of the same uid can hold the count
// there by sending fds nobody reads, so the error must say whose quota it is. Cold path.
[[gnu::cold]] inline Error fds_in_flight_error(std::size_t count, BorrowedFd socket) {
    rlimit limit{};
    const bool known = ::getrlimit(RLIMIT_NOFILE, &limit) == 0;
    return make_sys_error_as(
        Errc::fds_in_flight_limit, ETOOMANYREFS,
        "sendmsg of {} fds on fd {}: uid {} has more fds in flight (sent with SCM_RIGHTS, not yet received, by "
        "all its processes together) than this process's RLIMIT_NOFILE ({}), the kernel's per-user limit; "
        "nothing was sent. A process of the same uid holds them (a peer that does not read, or one filling "
        "the quota on purpose): run renderers under a uid of their own (check_peer() checks it) so no "
        "renderer can use up the host's quota",
        count, socket.get(), ::getuid(), known ? fmt::format("{}", limit.rlim_cur) : std::string("unknown"));
}

// The failures of send_message, built out of line: the per-frame path carries none of it.
[[gnu::cold]] [[gnu::noinline]] inline Error send_error(BorrowedFd socket, ssize_t sent, int err, std::size_t total,
                                                        std::size_t fd_count) {
    if (sent >= 0) {  // SEQPACKET is all or nothing
        return make_error(Errc::protocol, "sendmsg sent {} of {} bytes of one record", sent, total);
    }
    if (err == EAGAIN) return would_block_error(false);
    if (err == ETOOMANYREFS) return fds_in_flight_error(fd_count, socket);
    return make_sys_error_as(classify_socket_errno(err), err, "sendmsg of {} bytes with {} fds on fd {}", total,
                             fd_count, socket.get());
}

// One record made of `head` then `body` (gathered by the kernel, so a message is never
// copied into a frame buffer first; an empty body sends `head` alone, one iovec, the
// kernel's cheapest copy), with fds (at most MaxFds). `flags` adds to MSG_NOSIGNAL (e.g.
// MSG_DONTWAIT). A signal restarts the sendmsg (a SEQPACKET send is all or nothing, so
// nothing was sent). Always inlined (as receive_message): it runs per message, and its one
// caller's frame already holds what a call would save and restore.
template <std::size_t MaxFds = max_fds_per_message>
[[gnu::always_inline]] inline Result<void> send_message(BorrowedFd socket, std::span<const std::byte> head,
                                                        std::span<const std::byte> body, std::span<const int> fds,
                                                        int flags = 0) {
    static_assert(MaxFds <= max_fds_per_message);
    iovec data[2] = {{const_cast<std::byte*>(head.data()), head.size()},
                     {const_cast<std::byte*>(body.data()), body.size()}};
    const std::size_t total = head.size() + body.size();
    msghdr message{};
    message.msg_iov = data;
    message.msg_iovlen = body.empty() ? 1 : 2;
    // Room for MaxFds, but only the part used is written: this runs per frame. CMSG_SPACE
    // pads the fd array to 8 bytes; the pad is cleared by zeroing the used part's last word
    // before the fds go in (one store, not a memset call).
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(int) * (MaxFds == 0 ? 1 : MaxFds))> control;
    if (!fds.empty()) {
        if (fds.size() > MaxFds) [[unlikely]] {
            return make_error(Errc::invalid_argument, "sendmsg: {} fds, at most {}", fds.size(), MaxFds);
        }
        const std::size_t used = CMSG_SPACE(sizeof(int) * fds.size());
        static_assert(CMSG_SPACE(sizeof(int)) - CMSG_LEN(0) >= sizeof(std::uint64_t));  // the word is inside the data
        std::memset(control.data() + used - sizeof(std::uint64_t), 0, sizeof(std::uint64_t));
        message.msg_control = control.data();
        message.msg_controllen = used;
        cmsghdr* header = reinterpret_cast<cmsghdr*>(control.data());
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t sent = 0;
    do {
        sent = ::sendmsg(socket.get(), &message, MSG_NOSIGNAL | flags);
    } while (sent < 0 && errno == EINTR);
    if (static_cast<std::size_t>(sent) != total) [[unlikely]] {
        return send_error(socket, sent, errno, total, fds.size());
    }
    return {};
}

struct ReceivedRecord {
    std::size_t bytes = 0;
    std::size_t fd_count = 0;  // how many of `fds` were filled, in arrival order
    // MSG_CTRUNC: the kernel could not pass every fd (this process at its open-file limit,
    // or more fds than the control buffer holds). The bytes are intact.
    bool fds_cut = false;
};

// True when the peer has closed its sending side (EOF follows once the queue is read).
// Asked only after a recvmsg returned 0, to tell EOF from a zero-length record.
inline bool peer_hung_up(BorrowedFd socket) noexcept {
    pollfd entry{socket.get(), POLLRDHUP, 0};
    return ::poll(&entry, 1, 0) == 1 && (entry.revents & (POLLRDHUP | POLLHUP)) != 0;
}

[[gnu::cold]] [[gnu::noinline]] inline Error receive_error(BorrowedFd socket, int err) {
    return make_sys_error_as(classify_socket_errno(err), err, "recvmsg on fd {}", socket.get());
}

// Why receive_message refuses a record, in this order: cut (MSG_TRUNC), more fds than the
// caller's slots (a cut message is the caller's to judge), a control message other than
// SCM_RIGHTS, or an empty record: EOF, or a zero-length record from a live peer.
[[gnu::cold]] [[gnu::noinline]] inline Error receive_refused(BorrowedFd socket, bool truncated, bool too_many_fds,
                                                             bool foreign_control, std::size_t expected_bytes,
                                                             std::size_t fd_slots) {
    if (truncated) {
        return make_error(Errc::truncated, "recvmsg: record longer than the {} bytes expected (MSG_TRUNC)",
                          expected_bytes);
    }
    if (too_many_fds) return make_error(Errc::protocol, "recvmsg: more fds than the {} this channel takes", fd_slots);
    if (foreign_control) return make_error(Errc::protocol, "recvmsg: control message other than SCM_RIGHTS");
    if (peer_hung_up(socket)) {
        return make_error(Errc::peer_closed, "recvmsg on fd {}: the peer closed the channel", socket.get());
    }
    return make_error(Errc::protocol,
                      "recvmsg on fd {}: a zero-length record from a peer that is still connected "
                      "(not EOF; no message is empty)",
                      socket.get());
}

// Owns the fds of one SCM_RIGHTS header at once, in arrival order after those `fds`
// already holds; one beyond `fds` is closed and sets too_many_fds.
[[gnu::always_inline]] inline void take_fds(const cmsghdr* header, std::span<UniqueFd> fds, ReceivedRecord& record,
                                            bool& too_many_fds) noexcept {
    const std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const std::byte* raw = reinterpret_cast<const std::byte*>(CMSG_DATA(header));
    for (std::size_t i = 0; i < count; ++i) {
        int fd = -1;
        std::memcpy(&fd, raw + i * sizeof(int), sizeof fd);
        UniqueFd owned(fd);
        if (record.fd_count < fds.size()) {
            fds[record.fd_count++] = std::move(owned);
        } else {
            too_many_fds = true;  // cannot happen with a matching control buffer; close it
            close_peer_fd(owned);  // off this thread: a peer's fd may block in close()
        }
    }
}

// Receives one record into `head` then `body` (scattered by the kernel; an empty body
// receives into `head` alone, one iovec) and every fd it carried into `fds` (owned at once,
// so all error paths close them; `fds` must hold at least the control buffer's capacity). The
// caller closes what it refuses with close_peer_fd (detail/fd_closer.hpp), never inline.
// `flags` adds to MSG_CMSG_CLOEXEC (e.g. MSG_DONTWAIT). A signal restarts the recvmsg,
// unless `restart_on_signal` is false: then it ends as ReceiveStatus::interrupted (a wait
// under SO_RCVTIMEO restarted would wait its whole timeout again, forever under a periodic
// signal such as a profiler's SIGPROF). Errors: Errc::peer_closed at EOF (the peer closed
// the socket or shut down its sending side) or on EPIPE/ECONNRESET/ENOTCONN;
// Errc::protocol for a zero-length record from a live peer (SEQPACKET lets a peer send
// one, and it reads like EOF: telling them apart keeps a live peer from being reported
// dead), a control message other than SCM_RIGHTS or more fds than `fds` holds;
// Errc::truncated when the record was longer than head + body (MSG_TRUNC); Errc::system for
// any other errno. MSG_CTRUNC is not an error here: record.fds_cut says so, and the caller
// decides (AuxChannel::receive refuses the message, the frame endpoints act on it).
[[gnu::always_inline]] inline Result<ReceiveStatus> receive_message(BorrowedFd socket, std::span<std::byte> head,
                                                                    std::span<std::byte> body,
                                                                    std::span<std::byte> control,
                                                                    std::span<UniqueFd> fds, ReceivedRecord& record,
                                                                    int flags = 0, bool restart_on_signal = true) {
    record = ReceivedRecord{};
    iovec data[2] = {{head.data(), head.size()}, {body.data(), body.size()}};
    msghdr message{};
    message.msg_iov = data;
    message.msg_iovlen = body.empty() ? 1 : 2;
    message.msg_control = control.empty() ? nullptr : control.data();
    message.msg_controllen = control.size();
    ssize_t received = 0;
    for (bool reset_seen = false;;) {
        received = ::recvmsg(socket.get(), &message, MSG_CMSG_CLOEXEC | flags);
        if (received >= 0) break;
        if (errno == EINTR) {
            if (!restart_on_signal) return ReceiveStatus::interrupted;
            continue;
        }
        // A peer that dies with messages of ours unread makes the kernel report ECONNRESET
        // once, ahead of the messages it sent before dying, which are still queued (EOF
        // follows them). They are the peer's last words (a killed renderer's last
        // presents): read on rather than drop them.
        if (errno == ECONNRESET && !reset_seen) {
            reset_seen = true;
            continue;
        }
        if (errno == EAGAIN) return ReceiveStatus::nothing;
        return receive_error(socket, errno);
    }
    bool foreign_control = false;
    bool too_many_fds = false;
    if (message.msg_controllen != 0) {
        const cmsghdr* first = CMSG_FIRSTHDR(&message);
        // What a peer sends: one SCM_RIGHTS header, alone in what the kernel wrote (nothing
        // after it: CMSG_NXTHDR would end the walk at once), so no walk.
        if (first != nullptr && first->cmsg_level == SOL_SOCKET && first->cmsg_type == SCM_RIGHTS &&
            CMSG_ALIGN(first->cmsg_len) >= message.msg_controllen) {
            take_fds(first, fds, record, too_many_fds);
        } else {
            for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
                 header = CMSG_NXTHDR(&message, header)) {
                if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) {
                    foreign_control = true;
                    continue;
                }
                take_fds(header, fds, record, too_many_fds);
            }
        }
    }
    record.bytes = static_cast<std::size_t>(received);
    record.fds_cut = (message.msg_flags & MSG_CTRUNC) != 0;
    // One test on the per-frame path; receive_refused() names which of them failed.
    const bool empty = received == 0 && record.fd_count == 0 && !record.fds_cut;
    if ((message.msg_flags & MSG_TRUNC) != 0 || (too_many_fds && !record.fds_cut) || foreign_control || empty)
        [[unlikely]] {
        return receive_refused(socket, (message.msg_flags & MSG_TRUNC) != 0, too_many_fds && !record.fds_cut,
                               foreign_control, head.size() + body.size(), fds.size());
    }
    return ReceiveStatus::message;
}

}  // namespace detail
}  // namespace texshare
