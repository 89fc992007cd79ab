// The compositor side of the libwayland round trips (wayland_client.cpp has the client):
// a wl_display server in a child process whose one client is the parent, on a socket pair
// (wl_client_create), running wl_display_run until that client disconnects. It offers
// tsb_frames (protocol/texshare-bench.xml): each present's fence is closed and the image
// released at once. wl_display.sync needs nothing from us.
#include <unistd.h>

#include <wayland-server.h>

#include "children.hpp"
#include "texshare-bench-server-protocol.h"

namespace bench {
namespace {

using texshare::UniqueFd;

// The server: closes each fence it is handed and releases the image at once.
void present(wl_client*, wl_resource* resource, std::uint32_t image_id, std::int32_t acquire_fence) {
    ::close(acquire_fence);
    tsb_frames_send_release(resource, image_id);
}
constexpr struct tsb_frames_interface frames_implementation{present};

void bind_frames(wl_client* client, void*, std::uint32_t version, std::uint32_t id) {
    wl_resource* resource = wl_resource_create(client, &tsb_frames_interface, static_cast<int>(version), id);
    if (resource == nullptr) {
        wl_client_post_no_memory(client);
        return;
    }
    wl_resource_set_implementation(resource, &frames_implementation, nullptr, nullptr);
}

struct ClientGone {
    wl_listener listener{};
    wl_display* display = nullptr;
};

void client_destroyed(wl_listener* listener, void*) {
    ClientGone* gone = wl_container_of(listener, gone, listener);
    wl_display_terminate(gone->display);
}

}  // namespace

int wayland_server_child(const ChildArgs&) {
    UniqueFd socket = inherited_fd(0);
    wl_display* display = wl_display_create();
    if (display == nullptr) fail("wl_display_create");
    if (wl_global_create(display, &tsb_frames_interface, 1, nullptr, bind_frames) == nullptr) fail("wl_global_create");
    wl_client* client = wl_client_create(display, socket.release());  // the client owns it now
    if (client == nullptr) fail("wl_client_create");
    ClientGone gone;
    gone.display = display;
    gone.listener.notify = client_destroyed;
    wl_client_add_destroy_listener(client, &gone.listener);
    wl_display_run(display);
    wl_display_destroy(display);
    return 0;
}

}  // namespace bench
