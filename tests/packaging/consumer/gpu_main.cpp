// Links the compiled layers and calls one function of each: proof that texshare::gbm,
// texshare::egl and texshare::vulkan (or texshare-gbm.pc, texshare-egl.pc and
// texshare-vulkan.pc) bring their libraries and their dependencies' (libgbm, libdrm,
// libepoxy, libvulkan) to the link. On a machine without DRM or EGL
// the calls fail, and saying so is success: what is tested is that they link and run.
#include <texshare/egl/importer.hpp>
#include <texshare/gbm/allocator.hpp>
#include <texshare/vulkan/device.hpp>

#include <cstdio>

int main() {
    auto nodes = texshare::gbm::list_drm_nodes();
    auto display = texshare::egl::Display::open_surfaceless();
    std::printf("gpu consumer: %s DRM nodes, surfaceless EGL display %s\n",
                nodes ? std::to_string(nodes->size()).c_str() : "no list of",
                display ? "opened" : "did not open");
    std::printf("gpu consumer: texshare::vulkan names %s\n", texshare::vulkan::result_name(VK_SUCCESS).c_str());
    return 0;
}
