// Unix SOCK_SEQPACKET endpoints: addresses, listening, connecting, peer credentials.
//
// Use these to set up the socket an AuxChannel runs on when the two processes are not
// parent and child (a socketpair needs no address). SEQPACKET keeps message boundaries and
// reports EOF once every copy of the peer's end is closed (not when the peer process dies:
// a process it forked may hold a copy; see child_process.hpp for what tells a host that).
// A filesystem socket is created with mode 0600 (only this user may connect) and a stale
// socket file left by a crashed server is replaced; a live server's is never touched, nor
// a file of another user, nor anything that is not a socket. Finding out never waits on
// whoever holds the address (UnixListener::listen says how long it may take).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "texshare/detail/listener_probe.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

class SocketAddress {
public:
    static Result<SocketAddress> filesystem(std::string_view path) { return make(path, false); }
    // Linux abstract namespace: no file, gone when the listener closes; any local process
    // in the same network namespace can connect, so check peer_credentials().
    static Result<SocketAddress> abstract(std::string_view name) { return make(name, true); }

    bool is_abstract() const noexcept { return abstract_; }
    const std::string& name() const noexcept { return name_; }
    std::string to_string() const { return abstract_ ? "@" + name_ : name_; }

    const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&address_); }
    socklen_t native_length() const noexcept {
        return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size() + 1);
    }

private:
    static Result<SocketAddress> make(std::string_view name, bool abstract) {
        SocketAddress result;
        if (name.empty() || name.find('\0') != std::string_view::npos) {
            return make_error(Errc::invalid_argument, "socket name \"{}\" is empty or has a NUL byte", name);
        }
        if (name.size() + 1 > sizeof(result.address_.sun_path)) {
            return make_error(Errc::invalid_argument, "socket name of {} bytes exceeds the {}-byte limit",
                              name.size(), sizeof(result.address_.sun_path) - 1);
        }
        result.address_.sun_family = AF_UNIX;
        // Abstract names start with a NUL byte; filesystem paths end with one.
        std::memcpy(result.address_.sun_path + (abstract ? 1 : 0), name.data(), name.size());
        result.name_ = std::string(name);
        result.abstract_ = abstract;
        return result;
    }

    sockaddr_un address_{};
    std::string name_;
    bool abstract_ = false;
};

struct PeerCredentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

// For a socketpair these are the credentials of the process that created the pair.
inline Result<PeerCredentials> peer_credentials(BorrowedFd socket) {
    ucred credentials{};
    socklen_t length = sizeof credentials;
    if (::getsockopt(socket.get(), SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
        return make_sys_error(errno, "getsockopt(SO_PEERCRED) on fd {}", socket.get());
    }
    return PeerCredentials{credentials.pid, credentials.uid, credentials.gid};
}

inline Result<void> set_nonblocking(BorrowedFd fd, bool nonblocking) {
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0) return make_sys_error(errno, "fcntl(F_GETFL) on fd {}", fd.get());
    const int wanted = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags && ::fcntl(fd.get(), F_SETFL, wanted) != 0) {
        return make_sys_error(errno, "fcntl(F_SETFL) on fd {}", fd.get());
    }
    return {};
}

// A connected SOCK_SEQPACKET socket to `address`, close-on-exec and blocking; the caller owns it.
// Errors: Errc::connection_refused when nobody listens there (ECONNREFUSED, or ENOENT: no
// socket file), so a client retrying its connect can tell that from a peer that left
// (Errc::peer_closed, on a connected socket); Errc::system for any other errno.
inline Result<UniqueFd> connect_unix(const SocketAddress& address) {
    UniqueFd socket(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!socket) return make_sys_error(errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
    int rc = 0;
    do {
        rc = ::connect(socket.get(), address.native(), address.native_length());
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        // Nobody to talk to is not a peer that left: a host retrying its connect tells the two apart.
        const Errc code = (errno == ECONNREFUSED || errno == ENOENT) ? Errc::connection_refused : Errc::system;
        return make_sys_error_as(code, errno, "connect to {}", address.to_string());
    }
    return socket;
}

// How long UnixListener::listen() may spend finding out whether a process listens at an
// address it found taken. An AF_UNIX connect does not wait for its listener: a
// non-blocking one connects (someone listens), fails with EAGAIN (someone listens with a
// full backlog) or with ECONNREFUSED (nobody does) at once; the bound covers a kernel that
// would report EINPROGRESS instead.
inline constexpr std::chrono::milliseconds listener_probe_timeout{100};

class UnixListener {
public:
    UnixListener() = default;
    UnixListener(UnixListener&& other) noexcept { *this = std::move(other); }
    UnixListener& operator=(UnixListener&& other) noexcept {
        if (this != &other) {
            remove_socket_file();
            socket_ = std::move(other.socket_);
            address_ = std::move(other.address_);
            bound_file_ = std::exchange(other.bound_file_, {});
        }
        return *this;
    }
    ~UnixListener() { remove_socket_file(); }

    // A listening socket at `address`, close-on-exec. A filesystem socket gets mode 0600.
    // When the address is taken: a socket file nobody listens on (a crashed server's), of
    // this user, in a directory where no other user can swap it (ours or root's, and not
    // writable by others unless sticky), is replaced; anything else is refused without
    // touching it. Finding out is one non-blocking connect, so listen() never waits on
    // whoever holds the address (a squatter with a full backlog included): it returns
    // within listener_probe_timeout at most. Errors: Errc::system with EADDRINUSE when
    // someone holds the address (the message names the listener's uid and pid where the
    // kernel tells them, SO_PEERCRED, else the socket file's owner), or a stale socket of
    // another user or in an unsafe directory is in the way; Errc::invalid_argument when the
    // path is not a socket (a symlink, a regular file, ...: never removed); Errc::system
    // for any other failed syscall.
    static Result<UnixListener> listen(const SocketAddress& address, int backlog = 16) {
        UnixListener listener;
        listener.socket_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        if (!listener.socket_) return make_sys_error(errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
        // The socket file takes the socket inode's mode minus the umask; setting it here
        // instead of changing the process-wide umask keeps this safe with other threads.
        if (!address.is_abstract() && ::fchmod(listener.socket_.get(), 0600) != 0) {
            return make_sys_error(errno, "fchmod(0600) of the listening socket");
        }
        if (auto bound = listener.bind_replacing_stale(address); !bound) return std::move(bound).error();
        if (::listen(listener.socket_.get(), backlog) != 0) {
            return make_sys_error(errno, "listen on {}", address.to_string());
        }
        return listener;
    }

    // A connected socket, close-on-exec; Errc::would_block when non-blocking and none waits.
    Result<UniqueFd> accept() {
        int fd = -1;
        do {
            fd = ::accept4(socket_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0) {
            const Errc code = (errno == EAGAIN || errno == EWOULDBLOCK) ? Errc::would_block : Errc::system;
            return make_sys_error_as(code, errno, "accept on {}", address_.to_string());
        }
        return UniqueFd(fd);
    }

    BorrowedFd native_handle() const noexcept { return socket_.borrow(); }
    const SocketAddress& address() const noexcept { return address_; }

private:
    struct BoundFile {
        dev_t device = 0;
        ino_t inode = 0;
        bool exists = false;
    };

    Result<void> bind_replacing_stale(const SocketAddress& address) {
        address_ = address;
        if (::bind(socket_.get(), address.native(), address.native_length()) == 0) return remember_file();
        if (errno != EADDRINUSE) return make_sys_error(errno, "bind to {}", address.to_string());
        auto probe = detail::probe_listener(address.native(), address.native_length(), address.to_string(), listener_probe_timeout);
        if (!probe) return std::move(probe).error();
        if (address.is_abstract()) return taken(*probe, std::nullopt);  // abstract names are never stale
        struct stat existing {};
        if (::lstat(address.name().c_str(), &existing) != 0) {
            return make_sys_error(errno, "bind to {}: the address is in use but lstat of it failed", address.to_string());
        }
        if (!S_ISSOCK(existing.st_mode)) {
            return make_error(Errc::invalid_argument,
                              "bind to {}: the path exists and is {} (owner uid {}), not a socket; refusing to remove it",
                              address.to_string(), detail::describe_file_type(existing.st_mode), existing.st_uid);
        }
        if (probe->found != detail::ListenerProbe::Found::nobody) return taken(*probe, existing.st_uid);
        if (existing.st_uid != ::geteuid()) {
            return make_sys_error(EADDRINUSE,
                                  "bind to {}: a socket of uid {} that nobody listens on is in the way; "
                                  "refusing to remove another user's file",
                                  address.to_string(), existing.st_uid);
        }
        if (auto safe = check_directory(); !safe) return safe;
        // Nobody answers: a stale file from a server of ours that died without cleaning up.
        if (::unlink(address.name().c_str()) != 0 && errno != ENOENT) {
            return make_sys_error(errno, "unlink of stale socket {}", address.to_string());
        }
        if (::bind(socket_.get(), address.native(), address.native_length()) != 0) {
            return make_sys_error(errno, "bind to {} after removing a stale socket", address.to_string());
        }
        return remember_file();
    }

    // bind()'s own EADDRINUSE, now known to be someone's live (or unreachable) socket.
    Error taken(const detail::ListenerProbe& probe, std::optional<uid_t> file_owner) const {
        using Found = detail::ListenerProbe::Found;
        const std::string owner = file_owner ? fmt::format("the socket file's owner: uid {}", *file_owner)
                                             : std::string("no file to say whose (abstract name)");
        if (probe.found == Found::listening) {
            return make_sys_error(EADDRINUSE, "bind to {}: another process is listening there (uid {}, pid {})",
                                  address_.to_string(), probe.listener->uid, probe.listener->pid);
        }
        if (probe.found == Found::backlog_full) {
            return make_sys_error(EADDRINUSE,
                                  "bind to {}: another process is listening there with its backlog full ({}); "
                                  "not waiting for it",
                                  address_.to_string(), owner);
        }
        return make_sys_error(EADDRINUSE, "bind to {}: someone holds it and a connect there fails with {} ({}); "
                              "refusing to touch it",
                              address_.to_string(), std::strerror(probe.sys_errno), owner);
    }

    // A stale file is removed by path, so nobody else may be able to swap the path between
    // the probe and the unlink: the directory must be ours or root's, and others may write
    // it only where the sticky bit keeps them off our files.
    Result<void> check_directory() const {
        const std::string& path = address_.name();
        const std::size_t slash = path.rfind('/');
        const std::string directory = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
        struct stat info {};
        if (::stat(directory.c_str(), &info) != 0) return make_sys_error(errno, "stat of {}", directory);
        if (info.st_uid != ::geteuid() && info.st_uid != 0) {
            return make_sys_error(EADDRINUSE,
                                  "bind to {}: a stale socket is in the way, in directory {} of uid {}, who could "
                                  "swap it for another file; refusing to remove it (remove it yourself)",
                                  address_.to_string(), directory, info.st_uid);
        }
        if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (info.st_mode & S_ISVTX) == 0) {
            return make_sys_error(EADDRINUSE,
                                  "bind to {}: a stale socket is in the way, in directory {} (mode {:04o}) that "
                                  "others may write without the sticky bit, so another user could swap it; "
                                  "refusing to remove it (remove it yourself)",
                                  address_.to_string(), directory, info.st_mode & 07777);
        }
        return {};
    }

    Result<void> remember_file() {
        if (address_.is_abstract()) return {};
        struct stat info {};
        if (::stat(address_.name().c_str(), &info) != 0) {
            return make_sys_error(errno, "stat of bound socket {}", address_.to_string());
        }
        bound_file_ = BoundFile{info.st_dev, info.st_ino, true};
        return {};
    }

    // Only our own socket file: another server may have replaced it since.
    void remove_socket_file() noexcept {
        if (!bound_file_.exists) return;
        struct stat info {};
        if (::lstat(address_.name().c_str(), &info) == 0 && info.st_dev == bound_file_.device &&
            info.st_ino == bound_file_.inode) {
            ::unlink(address_.name().c_str());
        }
        bound_file_ = {};
    }

    UniqueFd socket_;
    SocketAddress address_;
    BoundFile bound_file_;
};

}  // namespace texshare
