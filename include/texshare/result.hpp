// Result<T> and Error: how every texshare function that can fail reports it.
//
// Use these wherever an operation touches the outside world (syscalls, a peer, a driver):
// failures there are expected events, not exceptions. An Error carries a category (Errc) a
// caller can branch on, the errno where a syscall failed, and a message built with fmt that
// names the failed check and the values involved, ready to log as is.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/core.h>
#include <fmt/format.h>

namespace texshare {

enum class Errc {
    invalid_argument,  // the caller passed something unusable
    invalid_layout,    // an ImageLayout failed a validation check
    unsupported,       // a format, modifier or feature texshare or the system lacks
    fd_not_open,       // an fd handed in for sending is not an open descriptor
    system,            // a syscall failed; Error::sys_errno says how (never 0 with this code)
    library,           // a call into a library or driver API (EGL, GL, GBM, libpng) failed; the
                       // message names the call and the error it gave (no errno)
    would_block,       // non-blocking I/O: nothing to read or no room to write now
    peer_closed,       // the other end of the channel is gone
    truncated,         // the kernel cut a message or its fds (MSG_TRUNC / MSG_CTRUNC)
    protocol,          // a message that does not follow the wire format
    rejected,          // a received descriptor or fd failed validation
    timed_out,         // a peer did not answer within the caller's deadline
    connection_refused,  // nobody listens at a socket address (ECONNREFUSED; ENOENT: no socket file)
    fds_in_flight_limit,  // a send of fds hit the kernel's per-user limit of fds in flight (ETOOMANYREFS)
};

constexpr std::string_view to_string(Errc code) noexcept {
    switch (code) {
        case Errc::invalid_argument:
            return "invalid_argument";
        case Errc::invalid_layout:
            return "invalid_layout";
        case Errc::unsupported:
            return "unsupported";
        case Errc::fd_not_open:
            return "fd_not_open";
        case Errc::system:
            return "system";
        case Errc::library:
            return "library";
        case Errc::would_block:
            return "would_block";
        case Errc::peer_closed:
            return "peer_closed";
        case Errc::truncated:
            return "truncated";
        case Errc::protocol:
            return "protocol";
        case Errc::rejected:
            return "rejected";
        case Errc::timed_out:
            return "timed_out";
        case Errc::connection_refused:
            return "connection_refused";
        case Errc::fds_in_flight_limit:
            return "fds_in_flight_limit";
    }
    return "unknown";
}

struct Error {
    Errc code = Errc::invalid_argument;
    int sys_errno = 0;  // 0 unless a syscall failed
    std::string message;
};

// The three builders are cold: an error is the exception on every path that can fail, so
// the compiler moves each path that builds one out of the code around it (smaller hot
// functions, fewer pages per frame) and lays out the success path as the fall-through.
template <typename... Args>
[[nodiscard]] [[gnu::cold]] Error make_error(Errc code, fmt::format_string<Args...> format, Args&&... args) {
    return Error{code, 0, fmt::format(format, std::forward<Args>(args)...)};
}

// For a failed syscall: the message ends with the errno's name and text.
template <typename... Args>
[[nodiscard]] [[gnu::cold]] Error make_sys_error(int err, fmt::format_string<Args...> format, Args&&... args) {
    std::string text = fmt::format(format, std::forward<Args>(args)...);
    fmt::format_to(std::back_inserter(text), ": {} (errno {})", std::strerror(err), err);
    return Error{Errc::system, err, std::move(text)};
}

// Same as make_sys_error but with another category, e.g. peer_closed for EPIPE.
template <typename... Args>
[[nodiscard]] [[gnu::cold]] Error make_sys_error_as(Errc code, int err, fmt::format_string<Args...> format,
                                      Args&&... args) {
    Error error = make_sys_error(err, format, std::forward<Args>(args)...);
    error.code = code;
    return error;
}

namespace detail {
// Both misuses of a Result are bugs in the caller, found at the first wrong access: taking
// the value of an error (the error says why there is none), or the error of a value.
[[noreturn]] inline void report_bad_result_access(const Error& error) noexcept {
    std::fprintf(stderr, "texshare: Result::value() on an error: %.*s: %s\n",
                 static_cast<int>(to_string(error.code).size()), to_string(error.code).data(),
                 error.message.c_str());
    std::abort();
}
[[noreturn]] inline void report_bad_error_access() noexcept {
    std::fprintf(stderr, "texshare: Result::error() on a value (check has_value() first)\n");
    std::abort();
}
}  // namespace detail

// A value or an Error. Deliberately small: has_value/value/error, plus implicit construction
// from either side so `return make_error(...)` and `return value` both work. A tagged union
// rather than std::variant: every access and the destructor are one test of the tag that
// inlines, where std::variant's visitation was an out-of-line call per Result on the
// per-frame path.
template <typename T>
class [[nodiscard]] Result {
    static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Result<Error> is ambiguous");
    static_assert(!std::is_reference_v<T> && !std::is_array_v<T>, "Result<T> holds a value");

public:
    Result(T value) : has_value_(true) { std::construct_at(&value_, std::move(value)); }  // NOLINT: implicit
    Result(Error error) : has_value_(false) { std::construct_at(&error_, std::move(error)); }  // NOLINT

    Result(const Result& other) requires std::is_copy_constructible_v<T> : has_value_(other.has_value_) {
        if (has_value_) {
            std::construct_at(&value_, other.value_);
        } else {
            std::construct_at(&error_, other.error_);
        }
    }
    Result(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) : has_value_(other.has_value_) {
        if (has_value_) {
            std::construct_at(&value_, std::move(other.value_));
        } else {
            std::construct_at(&error_, std::move(other.error_));
        }
    }
    // Copy assignment copies first, so a throwing copy leaves *this as it was; the move that
    // follows cannot throw (below).
    Result& operator=(const Result& other) requires std::is_copy_constructible_v<T> {
        if (this != &other) *this = Result(other);
        return *this;
    }
    // Between states the old member is destroyed before the new one is built: a union has no
    // valueless state to fall back on (std::variant's), so T's moves must not throw.
    static_assert(std::is_nothrow_move_constructible_v<T> &&
                      (!std::is_move_assignable_v<T> || std::is_nothrow_move_assignable_v<T>),
                  "Result<T> needs a T whose move construction and move assignment do not throw");
    Result& operator=(Result&& other) noexcept {
        if (this == &other) return *this;
        if (has_value_ && other.has_value_) {
            if constexpr (std::is_move_assignable_v<T>) {
                value_ = std::move(other.value_);
                return *this;
            }
        } else if (!has_value_ && !other.has_value_) {
            error_ = std::move(other.error_);
            return *this;
        }
        destroy();
        has_value_ = other.has_value_;
        if (has_value_) {
            std::construct_at(&value_, std::move(other.value_));
        } else {
            std::construct_at(&error_, std::move(other.error_));
        }
        return *this;
    }
    ~Result() { destroy(); }

    bool has_value() const noexcept { return has_value_; }
    explicit operator bool() const noexcept { return has_value_; }

    // Taking the value of an error is a bug: it aborts with the error's message.
    T& value() & { return *checked(); }
    const T& value() const& { return *checked(); }
    T&& value() && { return std::move(*checked()); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    // Taking the error of a value is a bug too: it aborts with a message.
    const Error& error() const& {
        if (has_value_) [[unlikely]] detail::report_bad_error_access();
        return error_;
    }
    Error&& error() && {
        if (has_value_) [[unlikely]] detail::report_bad_error_access();
        return std::move(error_);
    }

private:
    T* checked() const {
        if (!has_value_) [[unlikely]] detail::report_bad_result_access(error_);
        return const_cast<T*>(&value_);
    }
    void destroy() noexcept {
        if (has_value_) {
            std::destroy_at(&value_);
        } else {
            std::destroy_at(&error_);
        }
    }

    union {
        T value_;
        Error error_;
    };
    bool has_value_;
};

// Success is an empty optional: no Error (and no std::string) is built, moved or destroyed
// on the path that succeeds, which is the per-frame path.
template <>
class [[nodiscard]] Result<void> {
public:
    // User-provided, so that `return {}` sets the one flag instead of zero-filling the
    // whole (value-initialized) object: it runs on every success of the per-frame path.
    Result() noexcept {}  // NOLINT(modernize-use-equals-default)
    Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit

    bool has_value() const noexcept { return !error_.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }
    // Asserting success: aborts with the error's message, like Result<T>::value().
    void value() const {
        if (error_) detail::report_bad_result_access(*error_);
    }

    const Error& error() const& {
        if (!error_) detail::report_bad_error_access();
        return *error_;
    }
    Error&& error() && {
        if (!error_) detail::report_bad_error_access();
        return std::move(*error_);
    }

private:
    std::optional<Error> error_;
};

}  // namespace texshare

template <>
struct fmt::formatter<texshare::Error> : fmt::formatter<std::string_view> {
    template <typename Context>
    auto format(const texshare::Error& error, Context& ctx) const {
        return fmt::format_to(ctx.out(), "{}: {}", texshare::to_string(error.code), error.message);
    }
};
