# texshare_vulkan_support: Vulkan instance/device creation (vulkan_context.hpp) and a DMA-BUF
# import with readback (vulkan_readback.hpp) for texshare's own tests, tools and benchmark.
# Static, never installed or exported, built only when something links it and only where
# CMake found Vulkan (libvulkan-dev): not part of texshare's API.
add_library(texshare_vulkan_support STATIC EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/vulkan_context.cpp
            ${CMAKE_CURRENT_LIST_DIR}/vulkan_readback.cpp)
target_include_directories(texshare_vulkan_support PUBLIC ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(texshare_vulkan_support PUBLIC texshare::texshare Vulkan::Vulkan PRIVATE texshare::vulkan texshare_warnings)

# texshare_vulkan_pattern: the compute shader that draws the test pattern into a storage image
# and the CPU's copy of it (vulkan_pattern.hpp), for the example's Vulkan mode, the GPU lane
# and the Vulkan tests. Its SPIR-V is committed (vulkan_pattern_spirv.hpp, made by
# gen_vulkan_pattern_spirv.sh): building needs no shader compiler.
add_library(texshare_vulkan_pattern STATIC EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/vulkan_pattern.cpp)
target_include_directories(texshare_vulkan_pattern PUBLIC ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(texshare_vulkan_pattern PUBLIC texshare::texshare Vulkan::Vulkan PRIVATE texshare::vulkan texshare_warnings)
