// AuxChannel<T, FdCount>: typed messages with up to FdCount fds over a SOCK_SEQPACKET socket.
//
// Use it for the side channel between two processes that share images: each message is a
// fixed-size, trivially copyable T plus optional fds, sent with one sendmsg and received
// with one recvmsg, so messages never merge or split and fds always arrive with their own
// message. Empty fd slots (a CPU-only image's plane, an empty UniqueFd) are skipped before
// sending, and the wire says which slots carry fds, so the receiver can never mistake a
// missing fd for fd 0. A slot holding an fd that is not open is the caller's bug: send()
// fails with Errc::fd_not_open naming the slot, nothing is written, and the channel stays
// usable. That check is the kernel's own (sendmsg refuses with EBADF), so a send costs one
// syscall and no probes.
//
// Receiving trusts nothing: fds land in UniqueFds first (MSG_CMSG_CLOEXEC), then the
// message is checked: truncation (MSG_TRUNC/MSG_CTRUNC), size, magic, and that the fds match
// the declared slots. A rejected message is consumed and its fds closed; the channel stays
// usable and the caller decides whether to drop the peer.
//
// T is copied byte for byte, padding included: give message types explicit fields for
// every byte (see ImageDescriptor) so no stack garbage reaches the peer.
//
// Wire frame (native byte order, both ends run on one machine):
//   u32 magic 'TXSC' | u32 sizeof(T) | ceil(FdCount/8) bytes slot mask | T
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <type_traits>
#include <utility>

#include "texshare/detail/message_io.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"
#include "texshare/unix_socket.hpp"

namespace texshare {

template <typename T>
concept WireMessage =
    std::is_trivially_copyable_v<T> && std::default_initializable<T> && !std::is_pointer_v<T>;

inline constexpr std::uint32_t aux_channel_magic = 0x43535854;  // "TXSC" in memory order

template <WireMessage T, std::size_t FdCount>
class AuxChannel {
    static_assert(FdCount <= max_fds_per_message, "the kernel passes at most 253 fds per message");

    static constexpr std::size_t mask_bytes = (FdCount + 7) / 8;
    static constexpr std::size_t header_bytes = 2 * sizeof(std::uint32_t);
    static constexpr std::size_t frame_bytes = header_bytes + mask_bytes + sizeof(T);
    static constexpr std::size_t control_bytes = FdCount == 0 ? 0 : CMSG_SPACE(sizeof(int) * FdCount);
    // CMSG_SPACE pads to 8 bytes, so the buffer can hold one fd more than FdCount.
    static constexpr std::size_t fd_room = FdCount == 0 ? 0 : (control_bytes - CMSG_LEN(0)) / sizeof(int);

public:
    using Message = T;
    static constexpr std::size_t fd_capacity = FdCount;

    struct Received {
        T message;
        std::array<UniqueFd, FdCount> fds;  // slot i is empty when the sender sent no fd there
    };

    AuxChannel() = default;  // closed; every call fails with invalid_argument

    // Takes a connected AF_UNIX SOCK_SEQPACKET socket; anything else is refused (and closed).
    static Result<AuxChannel> adopt(UniqueFd socket) {
        int type = 0;
        socklen_t length = sizeof type;
        if (::getsockopt(socket.get(), SOL_SOCKET, SO_TYPE, &type, &length) != 0) {
            return make_sys_error(errno, "AuxChannel: fd {} is not a socket", socket.get());
        }
        int domain = 0;
        length = sizeof domain;
        if (::getsockopt(socket.get(), SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0 || domain != AF_UNIX ||
            type != SOCK_SEQPACKET) {
            return make_error(Errc::invalid_argument,
                              "AuxChannel: fd {} is not an AF_UNIX SOCK_SEQPACKET socket "
                              "(domain {}, type {})",
                              socket.get(), domain, type);
        }
        AuxChannel channel;
        channel.socket_ = std::move(socket);
        return channel;
    }

    static Result<std::pair<AuxChannel, AuxChannel>> create_pair() {
        int ends[2] = {-1, -1};
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) {
            return make_sys_error(errno, "socketpair(AF_UNIX, SOCK_SEQPACKET)");
        }
        AuxChannel first, second;
        first.socket_.reset(ends[0]);
        second.socket_.reset(ends[1]);
        return std::pair{std::move(first), std::move(second)};
    }

    static Result<AuxChannel> connect(const SocketAddress& address) {
        auto socket = connect_unix(address);
        if (!socket) return std::move(socket).error();
        return adopt(std::move(*socket));
    }

    static Result<AuxChannel> accept(UnixListener& listener) {
        auto socket = listener.accept();
        if (!socket) return std::move(socket).error();
        return adopt(std::move(*socket));
    }

    Result<void> send(const T& message) { return send_checked(message, {}); }

    Result<void> send(const T& message, std::span<const BorrowedFd> fds) requires(FdCount > 0) {
        return send_checked(message, fds);
    }

    Result<void> send(const T& message, std::initializer_list<BorrowedFd> fds) requires(FdCount > 0) {
        return send_checked(message, std::span<const BorrowedFd>(fds.begin(), fds.size()));
    }

    // Errc::would_block on a non-blocking channel with nothing pending; Errc::peer_closed
    // once the peer is gone.
    Result<Received> receive() { return receive_with(io_flags_); }

    // Waits at most `timeout` (> 0) for one message inside the recvmsg that receives it (the
    // socket's SO_RCVTIMEO, set only when it changes), so a wait costs no poll() of its own.
    // Needs a socket without O_NONBLOCK; Errc::would_block when nothing came in time, or
    // when a signal cut the wait short (sys_errno EINTR: wait what is left some other way,
    // since the kernel never resumes a socket wait that has a timeout). The timeout stays set
    // on the socket (take_socket() hands it on with it).
    Result<Received> receive_within(std::chrono::microseconds timeout) {
        if (!socket_) return make_error(Errc::invalid_argument, "AuxChannel::receive on a closed channel");
        if (timeout.count() <= 0) return make_error(Errc::invalid_argument, "receive_within: timeout must be > 0");
        if (timeout != receive_timeout_) {
            const timeval limit{static_cast<time_t>(timeout.count() / 1000000),
                                static_cast<suseconds_t>(timeout.count() % 1000000)};
            if (::setsockopt(socket_.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) != 0) {
                return make_sys_error(errno, "setsockopt(SO_RCVTIMEO) on fd {}", socket_.get());
            }
            receive_timeout_ = timeout;
        }
        return receive_with(0, false);
    }

    // With `on`, every send() and receive() acts as on a non-blocking socket (MSG_DONTWAIT)
    // whatever the socket's own O_NONBLOCK, so the socket itself can stay blocking for
    // receive_within(). Off by default.
    void set_dont_wait(bool on) noexcept { io_flags_ = on ? MSG_DONTWAIT : 0; }

private:
    Result<Received> receive_with(int flags, bool restart_on_signal = true) {
        if (!socket_) return make_error(Errc::invalid_argument, "AuxChannel::receive on a closed channel");
        alignas(std::max_align_t) std::array<std::byte, frame_bytes> frame{};
        alignas(cmsghdr) std::array<std::byte, control_bytes> control{};
        std::array<UniqueFd, fd_room> fds;
        std::size_t fd_count = 0;
        auto received = detail::receive_message(socket_.borrow(), frame, control, fds, fd_count, flags,
                                                restart_on_signal);
        if (!received) return std::move(received).error();
        if (*received != frame_bytes) {
            return make_error(Errc::protocol, "AuxChannel: message of {} bytes, expected {}", *received,
                              frame_bytes);
        }
        std::uint32_t magic = 0, payload_size = 0;
        std::memcpy(&magic, frame.data(), sizeof magic);
        std::memcpy(&payload_size, frame.data() + sizeof magic, sizeof payload_size);
        if (magic != aux_channel_magic || payload_size != sizeof(T)) {
            return make_error(Errc::protocol,
                              "AuxChannel: header magic 0x{:08x} payload {} bytes, expected "
                              "0x{:08x} and {} bytes",
                              magic, payload_size, aux_channel_magic, sizeof(T));
        }
        const std::byte* mask = frame.data() + header_bytes;
        std::size_t declared = 0;
        for (std::size_t i = 0; i < mask_bytes; ++i) {
            declared += static_cast<std::size_t>(std::popcount(std::to_integer<unsigned>(mask[i])));
        }
        if (FdCount % 8 != 0 && (std::to_integer<unsigned>(mask[mask_bytes - 1]) >> (FdCount % 8)) != 0) {
            return make_error(Errc::protocol,
                              "AuxChannel: slot mask names slots beyond the {} this "
                              "channel has",
                              FdCount);
        }
        if (declared != fd_count) {
            return make_error(Errc::protocol, "AuxChannel: message declares {} fds but carried {}", declared,
                              fd_count);
        }
        Received result{};
        std::memcpy(&result.message, frame.data() + header_bytes + mask_bytes, sizeof(T));
        std::size_t next = 0;
        for (std::size_t slot = 0; slot < FdCount; ++slot) {
            if (slot_set(mask, slot)) result.fds[slot] = std::move(fds[next++]);
        }
        return result;
    }

public:
    bool is_open() const noexcept { return socket_.valid(); }
    // For poll/epoll; readable means receive() will not block.
    BorrowedFd native_handle() const noexcept { return socket_.borrow(); }
    // Hands the socket over, e.g. to a child process; the channel is closed afterwards.
    [[nodiscard]] UniqueFd take_socket() noexcept { return std::move(socket_); }
    void close() noexcept { socket_.reset(); }

    Result<void> set_nonblocking(bool nonblocking) {
        return texshare::set_nonblocking(socket_.borrow(), nonblocking);
    }
    Result<PeerCredentials> peer_credentials() const { return texshare::peer_credentials(socket_.borrow()); }

private:
    static bool slot_set(const std::byte* mask, std::size_t slot) noexcept {
        return ((std::to_integer<unsigned>(mask[slot / 8]) >> (slot % 8)) & 1U) != 0;
    }

    Result<void> send_checked(const T& message, std::span<const BorrowedFd> fds) {
        if (!socket_) return make_error(Errc::invalid_argument, "AuxChannel::send on a closed channel");
        if (fds.size() > FdCount) {
            return make_error(Errc::invalid_argument,
                              "AuxChannel::send: {} fd slots given, the "
                              "channel takes at most {}",
                              fds.size(), FdCount);
        }
        std::array<std::byte, frame_bytes> frame{};
        std::array<int, FdCount> raw_fds{};
        std::size_t fd_count = 0;
        for (std::size_t slot = 0; slot < fds.size(); ++slot) {
            if (!fds[slot].valid()) continue;  // an empty slot: skipped, not sent
            frame[header_bytes + slot / 8] |= std::byte{static_cast<unsigned char>(1U << (slot % 8))};
            raw_fds[fd_count++] = fds[slot].get();
        }
        const std::uint32_t magic = aux_channel_magic;
        const std::uint32_t payload_size = sizeof(T);
        std::memcpy(frame.data(), &magic, sizeof magic);
        std::memcpy(frame.data() + sizeof magic, &payload_size, sizeof payload_size);
        std::memcpy(frame.data() + header_bytes + mask_bytes, &message, sizeof(T));
        auto sent = detail::send_message(socket_.borrow(), frame, std::span<const int>(raw_fds.data(), fd_count), io_flags_);
        if (!sent && sent.error().sys_errno == EBADF) return name_closed_slot(fds, std::move(sent).error());
        return sent;
    }

    // The kernel checks every fd in SCM_RIGHTS and sends nothing if one is closed (EBADF),
    // so the success path needs no probe of its own; only a failure looks for the culprit.
    static Error name_closed_slot(std::span<const BorrowedFd> fds, Error error) {
        for (std::size_t slot = 0; slot < fds.size(); ++slot) {
            if (fds[slot].valid() && !texshare::is_open(fds[slot])) {
                return make_error(Errc::fd_not_open,
                                  "AuxChannel::send: slot {} holds fd {}, which "
                                  "is not open; nothing was sent",
                                  slot, fds[slot].get());
            }
        }
        return error;
    }

    UniqueFd socket_;
    int io_flags_ = 0;                                        // MSG_DONTWAIT with set_dont_wait(true)
    std::chrono::microseconds receive_timeout_{0};            // SO_RCVTIMEO as last set (0: never)
};

}  // namespace texshare
