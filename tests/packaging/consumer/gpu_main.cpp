// Links both compiled layers and calls one function of each: proof that texshare::gbm and
// texshare::egl (or texshare-gbm.pc and texshare-egl.pc) bring their libraries and their
// dependencies' (libgbm, libdrm, libepoxy) to the link. On a machine without DRM or EGL
// the calls fail, and saying so is success: what is tested is that they link and run.
#include <texshare/egl/importer.hpp>
#include <texshare/gbm/allocator.hpp>

#include <cstdio>

int main() {
    auto nodes = texshare::gbm::list_drm_nodes();
    auto display = texshare::egl::Display::open_surfaceless();
    std::printf("gpu consumer: %s DRM nodes, surfaceless EGL display %s\n",
                nodes ? std::to_string(nodes->size()).c_str() : "no list of",
                display ? "opened" : "did not open");
    return 0;
}
