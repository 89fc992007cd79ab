// libwayland's round trips between two processes, as a Wayland client and compositor do
// them: the parent is a wl_display client on one end of a socket pair, the child a
// wl_display server (wayland_server.cpp) with that client on the other end. Two kinds: wl_display_roundtrip (wl_display.sync answered by
// wl_callback.done), and tsb_frames.present carrying an fd, answered by tsb_frames.release
// (protocol/texshare-bench.xml through wayland-scanner).
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <wayland-client.h>

#include "round_trip.hpp"
#include "texshare-bench-client-protocol.h"

namespace bench {
namespace {

using texshare::UniqueFd;

class WaylandClient final : public RoundTrip {
public:
    explicit WaylandClient(WaylandRoundTrip kind) : kind_(kind) {
        auto [mine, theirs] = socket_pair(SOCK_STREAM);
        std::vector<UniqueFd> fds;
        fds.push_back(std::move(theirs));
        child_ = spawn_child("wayland", std::move(fds));
        display_ = wl_display_connect_to_fd(mine.release());  // the display owns it now
        if (display_ == nullptr) fail("wl_display_connect_to_fd");
        registry_ = wl_display_get_registry(display_);
        wl_registry_add_listener(registry_, &registry_listener, this);
        if (wl_display_roundtrip(display_) < 0 || frames_ == nullptr) fail("wayland: no tsb_frames global");
        tsb_frames_add_listener(frames_, &frames_listener, this);
        fence_.reset(::eventfd(0, EFD_CLOEXEC));
    }
    ~WaylandClient() override {
        tsb_frames_destroy(frames_);
        wl_registry_destroy(registry_);
        wl_display_disconnect(display_);
        expect_clean_exit(child_, "wayland");
    }

    void run(std::size_t iterations) override {
        for (std::size_t i = 0; i < iterations; ++i) {
            if (kind_ == WaylandRoundTrip::display_roundtrip) {
                if (wl_display_roundtrip(display_) < 0) fail("wl_display_roundtrip");
                continue;
            }
            released_ = false;
            tsb_frames_present(frames_, 7, fence_.get());  // libwayland sends a dup and closes it
            while (!released_) {
                if (wl_display_dispatch(display_) < 0) fail("wl_display_dispatch");
            }
        }
    }

private:
    static void global(void* data, wl_registry* registry, std::uint32_t name, const char* interface,
                       std::uint32_t) {
        auto* self = static_cast<WaylandClient*>(data);
        if (std::strcmp(interface, tsb_frames_interface.name) == 0) {
            self->frames_ = static_cast<tsb_frames*>(wl_registry_bind(registry, name, &tsb_frames_interface, 1));
        }
    }
    static void global_remove(void*, wl_registry*, std::uint32_t) {}
    static void release(void* data, tsb_frames*, std::uint32_t) { static_cast<WaylandClient*>(data)->released_ = true; }

    static constexpr wl_registry_listener registry_listener{global, global_remove};
    static constexpr tsb_frames_listener frames_listener{release};

    WaylandRoundTrip kind_;
    texshare::ChildProcess child_;
    wl_display* display_ = nullptr;
    wl_registry* registry_ = nullptr;
    tsb_frames* frames_ = nullptr;
    UniqueFd fence_;
    bool released_ = false;
};

}  // namespace

std::unique_ptr<RoundTrip> make_wayland_round_trip(WaylandRoundTrip kind) {
    return std::make_unique<WaylandClient>(kind);
}

}  // namespace bench
