// Kept only for includers outside the frame layer (egl/import_listener.hpp,
// examples/host_renderer/frame_reader.hpp) until they include image_listener.hpp: the frame
// endpoints no longer share a base class (see sender.hpp, receiver.hpp).
#pragma once

#include "texshare/frame/image_listener.hpp"
