// Closing a peer's fd without blocking the thread that dispatches. Private to texshare.
//
// close() runs the file's flush and, for the last reference, its release, on the calling
// thread, and both can wait on another process for as long as it likes: a TCP socket with
// SO_LINGER and unsent data waits out the linger time (tcp_close), a FUSE file waits for its
// daemon to answer FLUSH (fuse_flush, on every close, not only the last), a tty may wait to
// drain its output. A peer can send any of them where texshare expects a plane or a fence.
// So an fd whose kind texshare has not proven (detail/fd_probe.hpp: DMA-BUF, memfd, an
// anonymous-inode file such as a sync_file) is never closed on the thread that received
// it: close_peer_fd() hands it to one closer thread per process, which closes it there.
//
// The closer: started on first use (a process that is never sent a refused fd never starts
// it); one thread, detached, and its state is never destroyed, so a close that blocks at
// exit blocks nothing but itself. Handing an fd over takes a mutex that the closer holds
// only to swap its queue out, never while closing, so the caller never waits for a close.
// The queue holds open fds, so it can never be longer than the process's open-file limit
// (RLIMIT_NOFILE): a peer that sends fds whose close blocks fills the host's fd table, not
// its thread, and pending_peer_fd_closes() shows it (drop the peer). Where the thread cannot
// be started or the queue cannot grow (out of memory) the fd is closed on the caller's
// thread, the one case where close can block there. A child made by fork() starts a closer
// of its own if it needs one (the parent's queue is left to exec's close-on-exec: every fd
// a channel receives is MSG_CMSG_CLOEXEC).
#pragma once

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <new>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "texshare/unique_fd.hpp"

namespace texshare::detail {

class FdCloser {
public:
    // Takes `fd` (empty: nothing happens) and closes it on the closer thread.
    void close_later(UniqueFd fd) noexcept {
        if (!fd.valid()) return;
        const int raw = fd.release();
        {
            std::lock_guard lock(mutex_);
            if (start_locked()) {
                try {
                    queue_.push_back(raw);
                    wake_.notify_one();
                    return;
                } catch (const std::bad_alloc&) {
                }
            }
        }
        close_owned(raw);  // no closer thread, no memory: the last resort blocks here
    }

    // fds handed over and not yet closed (queued, or in a close() that has not returned).
    std::size_t pending() {
        std::lock_guard lock(mutex_);
        return queue_.size() + in_flight_;
    }

    // Waits until every fd handed over before the call is closed, at most `timeout`; true
    // if they are.
    bool drain(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return drained_.wait_for(lock, timeout, [this] { return queue_.empty() && in_flight_ == 0; });
    }

    // The process's closer, nullptr only when there is no memory for one. Never destroyed:
    // its thread may still be closing at exit. A fork()ed child drops the parent's (its
    // mutex may be held, its thread does not exist there).
    static FdCloser* instance() noexcept {
        static const bool registered = (::pthread_atfork(nullptr, nullptr, [] { current().store(nullptr); }), true);
        (void)registered;
        FdCloser* closer = current().load(std::memory_order_acquire);
        if (closer != nullptr) return closer;
        auto* fresh = new (std::nothrow) FdCloser;  // one per process, deliberately kept
        if (fresh == nullptr) return nullptr;
        if (current().compare_exchange_strong(closer, fresh, std::memory_order_acq_rel)) return fresh;
        delete fresh;  // another thread made the process's closer first
        return closer;
    }

private:
    static std::atomic<FdCloser*>& current() noexcept {
        static std::atomic<FdCloser*> closer{nullptr};
        return closer;
    }

    bool start_locked() noexcept {
        if (started_) return true;
        try {
            queue_.reserve(64);  // before the thread: a throw after it would start a second one
            // The closer takes no signal: it inherits the mask of the thread that creates it,
            // so it blocks them all then, and process-directed signals a host waits for on
            // its own threads (signalfd, sigwait) never land here.
            sigset_t all{}, previous{};
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &previous);
            try {
                std::thread([this] { run(); }).detach();
            } catch (...) {
                pthread_sigmask(SIG_SETMASK, &previous, nullptr);
                throw;
            }
            pthread_sigmask(SIG_SETMASK, &previous, nullptr);
            started_ = true;
        } catch (...) {  // std::system_error (no thread) or std::bad_alloc
        }
        return started_;
    }

    void run() {
        std::vector<int> batch;
        std::unique_lock lock(mutex_);
        while (true) {
            wake_.wait(lock, [this] { return !queue_.empty(); });
            batch.swap(queue_);
            in_flight_ = batch.size();
            lock.unlock();
            for (const int fd : batch) close_owned(fd);
            batch.clear();
            lock.lock();
            in_flight_ = 0;
            if (queue_.empty()) drained_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable drained_;
    std::vector<int> queue_;
    std::size_t in_flight_ = 0;
    bool started_ = false;
};

// Closes a peer's fd of unproven kind without blocking this thread (see above).
inline void close_peer_fd(UniqueFd& fd) noexcept {
    if (!fd.valid()) return;
    if (FdCloser* closer = FdCloser::instance()) {
        closer->close_later(std::move(fd));
    } else {
        fd.reset();  // out of memory: the last resort blocks here
    }
}
inline void close_peer_fds(std::span<UniqueFd> fds) noexcept {
    for (UniqueFd& fd : fds) close_peer_fd(fd);
}

// How many peer fds wait to be closed.
inline std::size_t pending_peer_fd_closes() {
    FdCloser* closer = FdCloser::instance();
    return closer != nullptr ? closer->pending() : 0;
}
// Waits (at most `timeout`) until every peer fd handed to the closer so far is closed; true
// if they are. For tests, which count fds, and for hosts that want to know.
inline bool drain_peer_fd_closes(std::chrono::milliseconds timeout) {
    FdCloser* closer = FdCloser::instance();
    return closer == nullptr || closer->drain(timeout);
}

}  // namespace texshare::detail
