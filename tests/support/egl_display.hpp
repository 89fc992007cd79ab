// What the host-lane EGL tests share: a surfaceless display (llvmpipe at worst, wherever
// Mesa's EGL is installed) and a substring check for error messages. Includes no
// <epoxy/...>, so tests that prove the public egl headers pull in no GL can use it.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>

#include "texshare/egl/display.hpp"

namespace texshare::testing {

inline bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

// The surfaceless display, or an empty one after a test failure that says why.
inline egl::Display open_surfaceless_or_fail() {
    auto display = egl::Display::open_surfaceless();
    if (!display) {
        ADD_FAILURE() << "surfaceless display: " << display.error().message;
        return egl::Display();
    }
    return std::move(*display);
}

}  // namespace texshare::testing
