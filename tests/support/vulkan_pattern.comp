// texshare's test pattern, drawn by a Vulkan compute shader (tests/support/vulkan_pattern.hpp).
// Every pixel is a pure function of (x, y, frame) in 32-bit unsigned integers, so the CPU's
// copy of the same function (vulkan_pattern.cpp, expected_rgba) predicts every byte exactly.
// The RGBA8 UNORM store writes channel/255.0, which the conversion to 8 bits turns back into
// the channel itself (Vulkan spec, "Conversion from Floating-Point to Normalized Fixed-Point").
// After editing, run tests/support/gen_vulkan_pattern_spirv.sh: the build uses the SPIR-V
// header it writes, and support_vulkan_pattern_test fails while that header is stale.
#version 450

layout(local_size_x = 8, local_size_y = 8, local_size_z = 1) in;

layout(set = 0, binding = 0, rgba8) uniform writeonly image2D target;

layout(push_constant) uniform Push {
    uint frame;
    uint width;
    uint height;
} push;

// Keep in step with expected_rgba() in vulkan_pattern.cpp.
uvec4 pattern(uint x, uint y, uint frame) {
    uint h = (x * 0x9E3779B1u) ^ (y * 0x85EBCA77u) ^ (frame * 0xC2B2AE3Du);
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    return uvec4((x + frame) & 0xFFu, (y + 2u * frame) & 0xFFu, h >> 24, 0xFFu);
}

void main() {
    const uvec2 p = gl_GlobalInvocationID.xy;
    if (p.x >= push.width || p.y >= push.height) return;
    imageStore(target, ivec2(p), vec4(pattern(p.x, p.y, push.frame)) / 255.0);
}
