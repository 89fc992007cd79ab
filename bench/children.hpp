// The other processes of the cross-process benchmarks: this binary run as
// `texshare_bench --child=MODE ARGS...` (spawn_child), its ends on fds 3, 4, ...
// Each returns the process's exit status; any failure ends the child with status 1.
#pragma once

#include "harness.hpp"

namespace bench {

int raw_round_trip_child(const ChildArgs& args);       // "raw": echoes each ping
int texshare_round_trip_child(const ChildArgs& args);  // "texshare": a FrameReceiver releasing each frame
int raw_paced_round_trip_child(const ChildArgs& args);    // "raw_paced": a paced frame's 4 messages, raw
int paced_frame_round_trip_child(const ChildArgs& args);  // "paced": a paced FrameSender with feedback
int wayland_server_child(const ChildArgs& args);       // "wayland": a wl_display server
int copy_round_trip_child(const ChildArgs& args);      // "copy": reads or is told of a frame's pixels
int consumer_child(const ChildArgs& args);             // "consumer": section 4's pipelined consumer
int renderer_child(const ChildArgs& args);             // "renderer": one of section 4's 64 producers

}  // namespace bench
