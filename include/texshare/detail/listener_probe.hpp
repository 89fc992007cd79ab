// The probe UnixListener::listen() makes of an address it found taken: is anyone
// listening there, and who. Private to texshare.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare {

namespace detail {

// What one non-blocking connect found at an address.
struct ListenerProbe {
    enum class Found { nobody, listening, backlog_full, unreachable } found = Found::nobody;
    int sys_errno = 0;              // why the connect failed (unreachable)
    std::optional<ucred> listener;  // SO_PEERCRED of the listener (listening)
};

// `name` is the address as the error messages show it.
inline Result<ListenerProbe> probe_listener(const sockaddr* address, socklen_t length, const std::string& name,
                                            std::chrono::milliseconds bound) {
    UniqueFd socket(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!socket) return make_sys_error(errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
    int rc = ::connect(socket.get(), address, length);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS || err == EINTR) {  // the connect goes on without us: wait for its end
        pollfd entry{socket.get(), POLLOUT, 0};
        const int ready = ::poll(&entry, 1, static_cast<int>(bound.count()));
        if (ready == 0) return ListenerProbe{ListenerProbe::Found::backlog_full, EINPROGRESS, {}};
        socklen_t size = sizeof err;
        if (ready < 0 || ::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &err, &size) != 0) {
            return make_sys_error(errno, "waiting for a connect to {}", name);
        }
    }
    switch (err) {
        case 0: {
            ucred credentials{};  // the listener's, as of its listen()
            socklen_t size = sizeof credentials;
            if (::getsockopt(socket.get(), SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) {
                return make_sys_error(errno, "getsockopt(SO_PEERCRED) after a connect to {}", name);
            }
            return ListenerProbe{ListenerProbe::Found::listening, 0, credentials};
        }
        case EAGAIN:
            return ListenerProbe{ListenerProbe::Found::backlog_full, EAGAIN, {}};
        case ECONNREFUSED:
        case ENOENT:
            return ListenerProbe{ListenerProbe::Found::nobody, err, {}};
        default:  // EACCES (not ours to connect to), EPROTOTYPE (another socket type), ...
            return ListenerProbe{ListenerProbe::Found::unreachable, err, {}};
    }
}

inline std::string describe_file_type(mode_t mode) {
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device node";
    return "not a socket";
}

}  // namespace detail

}  // namespace texshare
