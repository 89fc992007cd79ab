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
// the declared slots. A rejected message is consumed and its fds closed, on texshare's closer
// thread rather than the caller's (detail/fd_closer.hpp: the close of a peer's fd can block);
// the channel stays usable and the caller decides whether to drop the peer. An fd the
// caller takes out of Received is the caller's: close it the same way unless its kind is
// proven (import_image proves planes; the frame endpoints prove fences).
//
// T is copied byte for byte, padding included: give message types explicit fields for
// every byte (see ImageDescriptor) so no stack garbage reaches the peer.
//
// Wire frame (native byte order, both ends run on one machine):
//   u32 magic 'TXSC' | u32 sizeof(T) | ceil(FdCount/8) bytes slot mask | T
#pragma once

#include "texshare/detail/require_cxx20.hpp"

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
    // Received and Outgoing keep the header (and slot mask) right in front of the message,
    // padded at the front so the message stays aligned: the frame is then one contiguous run
    // of memory, sent and received as one iovec (the kernel's cheapest copy) with no copy of
    // the message of its own.
    static constexpr std::size_t lead_bytes = (header_bytes + mask_bytes + alignof(T) - 1) / alignof(T) * alignof(T);
    static constexpr std::size_t lead_pad = lead_bytes - header_bytes - mask_bytes;
    // magic then payload size, as one word in native byte order.
    static constexpr std::uint64_t header_word =
        std::bit_cast<std::uint64_t>(std::array<std::uint32_t, 2>{aux_channel_magic, sizeof(T)});
    // Room for every fd one message can carry (SCM_MAX_FD, 253), whatever FdCount is: the
    // kernel closes the fds that do not fit the control buffer itself, inside this thread's
    // recvmsg (their last fput runs as task work before it returns), and a peer's fd can block
    // in its last close (a socket lingering on unsent data). Received here, the fds beyond
    // FdCount go to the closer thread and the record is refused ("more fds than the channel
    // takes"). 1 KiB of stack the kernel writes only as far as it delivers.
    static constexpr std::size_t control_bytes = CMSG_SPACE(sizeof(int) * max_fds_per_message);

public:
    static constexpr std::size_t fd_capacity = FdCount;

    struct Received {
        // The frame's header as it arrived, in its last header_bytes + mask_bytes bytes (see
        // lead_bytes): magic, payload size, then the slot mask.
        std::array<std::byte, lead_bytes> header{};
        T message;
        std::array<UniqueFd, FdCount> fds;  // slot i is empty when the sender sent no fd there
        // receive_into() only: the kernel could not pass every fd (MSG_CTRUNC: this process
        // is at its open-file limit). The message is intact; the fds that did arrive are in
        // their slots, the rest are missing. receive() refuses such a message instead.
        bool fds_cut = false;

        // The slots the sender filled (bit i: slot i), as the header declares them. AuxChannel
        // matched them against the fds that came, so for a delivered message they are exactly
        // the slots holding fds, except with fds_cut (some declared fds never arrived). Lets a
        // per-message check see the slots without testing each fd.
        std::uint32_t slot_mask() const noexcept requires(FdCount <= 32) {
            std::uint32_t mask = 0;  // slot i is bit i % 8 of mask byte i / 8
            for (std::size_t i = 0; i < mask_bytes; ++i) {
                mask |= std::uint32_t{std::to_integer<std::uint8_t>(header[lead_pad + header_bytes + i])} << (8 * i);
            }
            return mask;
        }

        // Closes the fds nobody took, off this thread (detail::close_peer_fd: a peer's fd of
        // unproven kind may block in close(), a lingering socket, a FUSE file). Runs per
        // message, and usually every slot is empty already (-1): one unrolled AND over the
        // numbers says so, not a test per slot.
        [[gnu::always_inline]] void close_fds() noexcept {
            const int all = [this]<std::size_t... Slot>(std::index_sequence<Slot...>) {
                return (-1 & ... & fds[Slot].get());
            }(std::make_index_sequence<FdCount>());
            if (all != -1) close_some();
        }

    private:
        [[gnu::noinline]] void close_some() noexcept {
            for (UniqueFd& fd : fds) detail::close_peer_fd(fd);
        }
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

    // A message kept in place for sending, the mirror of Received: room for the header in
    // front of it, so that header and message leave as one iovec with no copy, and a caller
    // that sends per frame keeps one and changes only the fields that differ.
    struct Outgoing {
        std::array<std::byte, lead_bytes> header{};  // written by send()
        T message{};
    };

    // out.message with no fds, or with one fd (if valid) in slot `slot`; otherwise as
    // send(const T&, fds): Errc::fd_not_open (naming the slot) for an fd that is not open,
    // Errc::invalid_argument for a slot the channel does not have.
    [[gnu::always_inline]] Result<void> send(Outgoing& out) { return send_in_place(out, 0, BorrowedFd()); }
    [[gnu::always_inline]] Result<void> send(Outgoing& out, std::size_t slot, BorrowedFd fd) requires(FdCount > 0) {
        return send_in_place(out, slot, fd);
    }

    // One message. Errc::would_block on a non-blocking channel with nothing pending;
    // Errc::peer_closed once the peer is gone; Errc::truncated when the kernel cut the
    // message (MSG_TRUNC) or its fds (MSG_CTRUNC; the message is consumed and the fds that
    // did arrive are closed); Errc::protocol for anything that breaks the wire format,
    // including a zero-length record from a live peer.
    Result<Received> receive() {
        Received received;
        auto status = receive_into(received);
        if (!status) return std::move(status).error();
        if (*status != ReceiveStatus::message) return detail::would_block_error(true);
        if (received.fds_cut) {
            received.close_fds();
            return fds_cut_error();
        }
        return received;
    }

    // Waits at most `timeout` for one message, inside the recvmsg that receives it (the
    // socket's SO_RCVTIMEO, set only when it changes), so a wait costs no poll() of its own.
    // The timeout rule every texshare wait keeps: > 0 waits that long, 0 only looks (one
    // non-blocking recvmsg), < 0 is Errc::invalid_argument. Needs a socket without O_NONBLOCK
    // for a wait. Errc::timed_out when nothing came in time; a signal neither ends the wait
    // early nor stretches it (the kernel never resumes a socket wait that has a timeout, so
    // the wait goes on with what is left). Other errors as receive(). The timeout stays set
    // on the socket (take_socket() hands it on with it).
    Result<Received> receive_within(std::chrono::microseconds timeout) {
        Received received;
        const auto start = std::chrono::steady_clock::now();
        auto status = receive_into_within(received, timeout);
        while (status && *status == ReceiveStatus::interrupted) {
            const auto left =
                timeout - std::chrono::ceil<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
            status = left.count() > 0 ? receive_into_within(received, left) : receive_into(received);
        }
        if (!status) return std::move(status).error();
        if (*status != ReceiveStatus::message) {
            return make_error(Errc::timed_out, "AuxChannel: no message within {} us", timeout.count());
        }
        if (received.fds_cut) {
            received.close_fds();
            return fds_cut_error();
        }
        return received;
    }

    // The per-frame form of receive(): fills `into` in place (the message is received
    // straight into into.message, fds into their slots; fds left in `into` from before are
    // closed first) and delivers a message whose fds were cut (into.fds_cut) instead of
    // refusing it, for callers that must act on such a message (the frame endpoints).
    // ReceiveStatus::nothing when nothing is pending (non-blocking channels).
    Result<ReceiveStatus> receive_into(Received& into) { return receive_with(into, io_flags_, true); }

    // receive_within() in place: ReceiveStatus::nothing when `timeout` passed first;
    // ReceiveStatus::interrupted when a signal cut the wait (the caller waits what is left
    // its own way: the kernel never resumes a socket wait that has a timeout).
    // std::chrono::microseconds::max() waits without limit (and arms no kernel timer).
    [[gnu::always_inline]] Result<ReceiveStatus> receive_into_within(Received& into,
                                                                     std::chrono::microseconds timeout) {
        if (!socket_) [[unlikely]] return closed_error("receive");
        if (timeout.count() < 0) [[unlikely]] {
            return make_error(Errc::invalid_argument, "receive_within: timeout {} us is negative", timeout.count());
        }
        if (timeout.count() == 0) return receive_now(into);
        return wait_once(into, timeout);
    }

    // With `on`, every send() and receive() acts as on a non-blocking socket (MSG_DONTWAIT)
    // whatever the socket's own O_NONBLOCK, so the socket itself can stay blocking for
    // receive_within(). Off by default.
    void set_dont_wait(bool on) noexcept { io_flags_ = on ? MSG_DONTWAIT : 0; }

private:
    // One recvmsg under SO_RCVTIMEO `left` (set only when it changes).
    [[gnu::always_inline]] Result<ReceiveStatus> wait_once(Received& into, std::chrono::microseconds left) {
        if (left != receive_timeout_) [[unlikely]] {
            if (auto set = set_receive_timeout(left); !set) return std::move(set).error();
        }
        return receive_with(into, 0, false);
    }

    // receive_into_within() with timeout 0; out of line, so each wait holds one receive.
    [[gnu::noinline]] Result<ReceiveStatus> receive_now(Received& into) { return receive_with(into, MSG_DONTWAIT, true); }

    // Out of line: a frame loop waits with the same timeout every time, so this runs once.
    [[gnu::noinline]] Result<void> set_receive_timeout(std::chrono::microseconds left) {
        const bool forever = left == std::chrono::microseconds::max();
        const timeval limit{forever ? 0 : static_cast<time_t>(left.count() / 1000000),
                            forever ? 0 : static_cast<suseconds_t>(left.count() % 1000000)};
        if (::setsockopt(socket_.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) != 0) {
            return make_sys_error(errno, "setsockopt(SO_RCVTIMEO) on fd {}", socket_.get());
        }
        receive_timeout_ = left;
        return {};
    }

private:
    Error fds_cut_error() const {
        return make_error(Errc::truncated,
                          "AuxChannel: fds were cut off (MSG_CTRUNC): this process is at its open-file limit "
                          "(the channel's {} fd slots have room, and more fds than slots are refused, not cut)",
                          FdCount);
    }

    // Inlined into each receive: it runs per message, and its checks are a few compares
    // once the failures are built out of line (refuse()).
    [[gnu::always_inline]] Result<ReceiveStatus> receive_with(Received& into, int flags, bool restart_on_signal) {
        if (!socket_) [[unlikely]] return closed_error("receive");
        into.close_fds();
        into.fds_cut = false;
        // Neither buffer is cleared: the kernel writes what it reports, and nothing past
        // that is read.
        alignas(cmsghdr) std::array<std::byte, control_bytes> control;
        detail::ReceivedRecord record;
        std::byte* const head = into.header.data() + lead_pad;
        // One iovec when the header lies right in front of the message (it does: lead_bytes).
        const bool contiguous = head + header_bytes + mask_bytes == reinterpret_cast<std::byte*>(&into.message);
        const auto message_bytes = std::as_writable_bytes(std::span(&into.message, 1));
        auto status = detail::receive_message(
            socket_.borrow(), std::span(head, contiguous ? frame_bytes : header_bytes + mask_bytes),
            contiguous ? std::span<std::byte>() : message_bytes, control, into.fds, record, flags, restart_on_signal);
        if (!status) [[unlikely]] {
            into.close_fds();  // what arrived with a refused record
            return status;
        }
        if (*status != ReceiveStatus::message) return status;
        std::uint64_t header_found = 0;
        std::memcpy(&header_found, head, sizeof header_found);
        const std::byte* mask = head + header_bytes;
        // Slots beyond FdCount in the mask's last byte must be clear.
        constexpr unsigned beyond = FdCount % 8 == 0 ? 0U : 0xffU << (FdCount % 8);
        if (record.bytes != frame_bytes || header_found != header_word ||
            (std::to_integer<unsigned>(mask[mask_bytes - 1]) & beyond) != 0) [[unlikely]] {
            return refuse(into, record, head);
        }
        if (record.fd_count == 0 && !record.fds_cut && mask_is_zero(mask)) return ReceiveStatus::message;
        if constexpr (mask_bytes == 1) {
            // One fd in one slot (a fence): its slot is the mask's only bit.
            const unsigned bits = std::to_integer<unsigned>(mask[0]);
            if (record.fd_count == 1 && !record.fds_cut && bits != 0 && (bits & (bits - 1)) == 0) {
                const int slot = std::countr_zero(bits);
                if (slot != 0) into.fds[slot] = std::move(into.fds[0]);
                return ReceiveStatus::message;
            }
        }
        return place_fds(into, record, mask);
    }

    // Several fds, or a cut message: each arrival goes to its slot, the mask's set bits in
    // order. Out of line: the per-frame path carries at most one fd (a fence).
    [[gnu::noinline]] static Result<ReceiveStatus> place_fds(Received& into, const detail::ReceivedRecord& record,
                                                             const std::byte* mask) {
        // The fds came in slot order; the slots they belong to are the mask's set bits.
        std::array<std::uint8_t, FdCount == 0 ? 1 : FdCount> slots;
        std::size_t declared = 0;
        for (std::size_t slot = 0; slot < FdCount; ++slot) {
            if (slot_set(mask, slot)) slots[declared++] = static_cast<std::uint8_t>(slot);
        }
        // A cut message carries fewer fds than it declares (the kernel stops at the first it
        // cannot install), never more.
        if (record.fds_cut ? record.fd_count > declared : record.fd_count != declared) {
            into.close_fds();
            return make_error(Errc::protocol, "AuxChannel: message declares {} fds but carried {}", declared,
                              record.fd_count);
        }
        // Arrival index i goes to slot slots[i] >= i; from the last down nothing is overwritten.
        for (std::size_t i = record.fd_count; i-- > 0;) {
            if (slots[i] != i) into.fds[slots[i]] = std::move(into.fds[i]);
        }
        into.fds_cut = record.fds_cut;
        return ReceiveStatus::message;
    }

    // A record whose size, header or slot mask is wrong: its fds are closed and the error
    // names what was wrong, in that order.
    [[gnu::cold]] [[gnu::noinline]] static Error refuse(Received& into, const detail::ReceivedRecord& record,
                                                        const std::byte* head) {
        for (std::size_t i = 0; i < record.fd_count; ++i) detail::close_peer_fd(into.fds[i]);
        if (record.bytes != frame_bytes) {
            return make_error(Errc::protocol, "AuxChannel: message of {} bytes, expected {}", record.bytes,
                              frame_bytes);
        }
        std::uint32_t magic = 0, payload_size = 0;
        std::memcpy(&magic, head, sizeof magic);
        std::memcpy(&payload_size, head + sizeof magic, sizeof payload_size);
        if (magic != aux_channel_magic || payload_size != sizeof(T)) {
            return make_error(Errc::protocol,
                              "AuxChannel: header magic 0x{:08x} payload {} bytes, expected "
                              "0x{:08x} and {} bytes",
                              magic, payload_size, aux_channel_magic, sizeof(T));
        }
        return make_error(Errc::protocol, "AuxChannel: slot mask names slots beyond the {} this channel has", FdCount);
    }

    [[gnu::cold]] [[gnu::noinline]] static Error closed_error(const char* doing) {
        return make_error(Errc::invalid_argument, "AuxChannel::{} on a closed channel", doing);
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
    static bool mask_is_zero(const std::byte* mask) noexcept {
        unsigned any = 0;
        for (std::size_t i = 0; i < mask_bytes; ++i) any |= std::to_integer<unsigned>(mask[i]);
        return any == 0;
    }

    static bool slot_set(const std::byte* mask, std::size_t slot) noexcept {
        return ((std::to_integer<unsigned>(mask[slot / 8]) >> (slot % 8)) & 1U) != 0;
    }

    Result<void> send_checked(const T& message, std::span<const BorrowedFd> fds) {
        if (!socket_) [[unlikely]] return closed_error("send");
        if (fds.size() > FdCount) {
            return make_error(Errc::invalid_argument,
                              "AuxChannel::send: {} fd slots given, the "
                              "channel takes at most {}",
                              fds.size(), FdCount);
        }
        std::array<std::byte, header_bytes + mask_bytes> head{};
        std::array<int, FdCount == 0 ? 1 : FdCount> raw_fds;
        std::size_t fd_count = 0;
        for (std::size_t slot = 0; slot < fds.size(); ++slot) {
            if (!fds[slot].valid()) continue;  // an empty slot: skipped, not sent
            head[header_bytes + slot / 8] |= std::byte{static_cast<unsigned char>(1U << (slot % 8))};
            raw_fds[fd_count++] = fds[slot].get();
        }
        std::memcpy(head.data(), &header_word, sizeof header_word);
        auto sent = detail::send_message<FdCount>(socket_.borrow(), head, std::as_bytes(std::span(&message, 1)),
                                                  std::span<const int>(raw_fds.data(), fd_count), io_flags_);
        if (sent) return {};  // a fresh success, not a move of one (Result<void> holds an Error)
        if (sent.error().sys_errno == EBADF) return name_closed_slot(fds, std::move(sent).error());
        return sent;
    }

    // send(Outgoing&): the header goes in front of the message where it lies, and the frame
    // leaves as one iovec.
    [[gnu::always_inline]] Result<void> send_in_place(Outgoing& out, std::size_t slot, BorrowedFd fd) {
        if (!socket_) [[unlikely]] return closed_error("send");
        std::byte* const head = out.header.data() + lead_pad;
        std::memcpy(head, &header_word, sizeof header_word);
        std::memset(head + header_bytes, 0, mask_bytes);
        const int raw_fd = fd.get();
        const bool with_fd = fd.valid();
        if (with_fd) {
            if (slot >= FdCount) [[unlikely]] {
                return make_error(Errc::invalid_argument, "AuxChannel::send: slot {}, the channel has {}", slot,
                                  FdCount);
            }
            head[header_bytes + slot / 8] = std::byte{static_cast<unsigned char>(1U << (slot % 8))};
        }
        const bool contiguous = head + header_bytes + mask_bytes == reinterpret_cast<std::byte*>(&out.message);
        const std::span<const int> fds(&raw_fd, with_fd ? 1 : 0);
        auto sent = contiguous ? detail::send_message<FdCount>(socket_.borrow(), std::span(head, frame_bytes), {},
                                                               fds, io_flags_)
                               : detail::send_message<FdCount>(socket_.borrow(),
                                                               std::span(head, header_bytes + mask_bytes),
                                                               std::as_bytes(std::span(&out.message, 1)), fds,
                                                               io_flags_);
        if (sent) [[likely]] return {};
        // EBADF names the slot only when an fd went out (else it is the channel's own socket).
        if (with_fd && sent.error().sys_errno == EBADF) return name_closed_fd(slot, fd, std::move(sent).error());
        return sent;
    }

    [[gnu::cold]] [[gnu::noinline]] static Error name_closed_fd(std::size_t slot, BorrowedFd fd, Error error) {
        std::array<BorrowedFd, FdCount> fds{};
        fds[slot] = fd;
        return name_closed_slot(fds, std::move(error));
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
