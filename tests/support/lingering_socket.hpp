// Test support: an fd whose last close() blocks, for tests of what texshare does with a
// peer's fds (detail/fd_closer.hpp).
#pragma once

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cstddef>

#include <gtest/gtest.h>

#include "texshare/unique_fd.hpp"

namespace texshare::testing {

// A connected pair of loopback TCP sockets; `lingering` has SO_LINGER 30 s and a full send
// queue that `stuck_reader` never reads, so the last close of `lingering` blocks ~30 s.
struct LingeringSocket {
    UniqueFd lingering, stuck_reader;

    LingeringSocket() {
        UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        EXPECT_TRUE(listener);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        socklen_t length = sizeof address;
        EXPECT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
        EXPECT_EQ(::listen(listener.get(), 1), 0);
        lingering.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int small = 4096;
        EXPECT_EQ(::setsockopt(lingering.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
        EXPECT_EQ(::connect(lingering.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        stuck_reader.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        EXPECT_TRUE(stuck_reader);
        EXPECT_EQ(::setsockopt(stuck_reader.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
        const linger thirty{1, 30};
        EXPECT_EQ(::setsockopt(lingering.get(), SOL_SOCKET, SO_LINGER, &thirty, sizeof thirty), 0);
        // Fill both buffers until the kernel takes no more: the send queue is stuck.
        char chunk[4096] = {};
        std::size_t queued = 0;
        for (int i = 0; i < 10000; ++i) {
            const ssize_t n = ::send(lingering.get(), chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n <= 0) break;
            queued += static_cast<std::size_t>(n);
        }
        EXPECT_GT(queued, 0U);
        int unsent = 0;
        EXPECT_EQ(::ioctl(lingering.get(), SIOCOUTQ, &unsent), 0);
        EXPECT_GT(unsent, 0) << "the send queue is not stuck: close() would not linger";
    }

    // Reads the stuck queue to its end, so that a close lingering on it (the closer
    // thread's) completes: EOF comes once the lingering end's FIN has gone through.
    void unstick() {
        if (lingering) {  // never sent: close it here without lingering
            const linger off{0, 0};
            ::setsockopt(lingering.get(), SOL_SOCKET, SO_LINGER, &off, sizeof off);
            lingering.reset();
        }
        const timeval limit{10, 0};
        ::setsockopt(stuck_reader.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        char chunk[65536];
        while (::recv(stuck_reader.get(), chunk, sizeof chunk, 0) > 0) {
        }
    }
};

}  // namespace texshare::testing
