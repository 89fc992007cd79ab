# The GPU lane's binaries (scripts/gpu-lane.sh runs them on the accelerator machine through
# the device tool; CI builds them, so they keep compiling, but never runs them: they need an
# NVIDIA GPU). Not registered with ctest. Included from tests/CMakeLists.txt where
# texshare::vulkan and the GPU layers exist.
texshare_add_test_binary(gpu_cuda_dma_buf_lane_test gpu/cuda_dma_buf_lane_test.cpp texshare::egl ${CMAKE_DL_LIBS})
texshare_add_test_binary(gpu_vulkan_opaque_lane_test gpu/vulkan_opaque_lane_test.cpp texshare::vulkan
                         texshare_vulkan_support texshare_vulkan_pattern)
set(TEXSHARE_GPU_LANE_TESTS gpu_cuda_dma_buf_lane_test gpu_vulkan_opaque_lane_test)
# texshare::vulkan's own tests, run again on NVIDIA by the lane: there the OPAQUE_FD paths
# (memory and semaphores) that no lavapipe can prove run for real, and what needs DMA-BUF
# import skips with the driver's answer.
set(TEXSHARE_GPU_LANE_VULKAN_TESTS vulkan_device_test vulkan_exporter_test vulkan_importer_test vulkan_fence_test
    vulkan_opaque_fence_vm_test vulkan_format_table_test)
add_custom_target(texshare_gpu_lane DEPENDS ${TEXSHARE_GPU_LANE_TESTS} ${TEXSHARE_GPU_LANE_VULKAN_TESTS})
