// sendmsg/recvmsg with SCM_RIGHTS written directly against the kernel: the baselines of
// sections 1 and 2, so they do only what any correct user of a Unix socket must do (receive
// the message whole, take fds close-on-exec, close them), and nothing a library adds.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>

namespace bench {

// One message with `fds` in SCM_RIGHTS (none: no control message); fails the run on error.
void raw_send(int socket, std::span<const std::byte> bytes, std::span<const int> fds = {});

// One message into `bytes` (blocking; MSG_CMSG_CLOEXEC), closing every fd that came with
// it. Returns the byte count, 0 at the peer's end; a short or truncated message fails the run.
ssize_t raw_receive(int socket, std::span<std::byte> bytes);

}  // namespace bench
