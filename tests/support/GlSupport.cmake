# texshare_gl_support: the GL helpers of tests/support/gl_helpers.hpp (clear, draw, read back
# a texture) for texshare's own tests, tools, example and benchmark. Static, never installed
# or exported, and built only when one of them links it: not part of texshare::egl's API.
add_library(texshare_gl_support STATIC EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/gl_helpers.cpp)
target_include_directories(texshare_gl_support PUBLIC ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(texshare_gl_support PUBLIC texshare::egl PkgConfig::TEXSHARE_EPOXY
                      PRIVATE texshare_warnings)
