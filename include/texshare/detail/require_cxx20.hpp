// Stops a translation unit compiled without C++20 at texshare's first header, with one
// message that says what to do, instead of a hundred errors about concepts, designated
// initializers and std::span further down. Every public header includes it first.
//
// CMake consumers never see it: texshare::texshare carries cxx_std_20. It is for builds
// that take texshare's flags from pkg-config (whose Cflags leave the language standard to
// the consumer) or copy its headers by hand. #error alone does not end compilation in GCC or
// Clang, so an include that cannot be found follows it: a fatal error ends the unit there.
#pragma once

#if !defined(__cplusplus) || __cplusplus < 202002L
#error "texshare needs C++20: compile with -std=c++20 or newer (the CMake target texshare::texshare asks for it)"
#include <texshare_stops_here_without_cxx20>
#endif
