# The VM lane: test binaries that need real kernel DMA-BUFs, run inside qemu guests because
# these machines' kernel has no exporter. Two guests, one ctest test each (label vm), every
# binary of TEXSHARE_VM_TESTS in both:
#   vm.lane            Debian 12's 6.1 kernel (vgem, virtio-gpu) with the host's Mesa 22.3
#   vm.lane.backports  bookworm-backports' 6.12 kernel (also DMA-BUF heaps, udmabuf) with
#                      Mesa 25 (a prefix unpacked into the cache; the host is not upgraded),
#                      plus TEXSHARE_VM_BACKPORTS_TESTS, which need what only it has
# Each prepares its guest (cached in the build tree), boots it once and runs every binary
# there; it fails, never skips, under CI. Run them alone: ctest -L vm. Where a fact differs
# between the guests the test asserts each guest's (tests/vm/vm_stack.hpp,
# docs/vm-lane-facts.md).
set(TEXSHARE_VM_TESTS gbm_vm_test fence_vm_test)
texshare_add_test_binary(gbm_vm_test vm/gbm_vm_test.cpp texshare::gbm)
# Real unsignalled fences from vgem (vm/vgem_fence.hpp) through sync_file and the frame protocol.
texshare_add_test_binary(fence_vm_test vm/fence_vm_test.cpp texshare::gbm)
# DRM syncobj timelines (drm_syncobj.hpp): real on 6.12's virtio_gpu, refused on 6.1 and vgem.
texshare_add_test_binary(drm_syncobj_vm_test vm/drm_syncobj_vm_test.cpp texshare::gbm)
list(APPEND TEXSHARE_VM_TESTS drm_syncobj_vm_test)
# negotiation_vm_test: between vgem and virtio_gpu, the cross-device fallback for real.
foreach(binary egl_vm_test egl_fence_vm_test frame_import_vm_test negotiation_vm_test)
  texshare_add_test_binary(${binary} vm/${binary}.cpp texshare::egl texshare::gbm texshare_gl_support)
  list(APPEND TEXSHARE_VM_TESTS ${binary})
endforeach()
# egl/import_listener.hpp's mirror: an ImportListener needs an Importer, which needs EGL
# DMA-BUF import, which only the guest has (the host's surfaceless llvmpipe has none).
texshare_add_test_binary(egl_import_listener_test unit/egl/import_listener_test.cpp texshare::egl texshare::gbm
                         texshare_gl_support)
list(APPEND TEXSHARE_VM_TESTS egl_import_listener_test)
if(TARGET texshare_info)
  # texshare-info in the guest: fails unless both DRM devices are listed and zero-copy works.
  find_package(nlohmann_json 3 REQUIRED)
  texshare_add_test_binary(texshare_info_vm_test vm/texshare_info_vm_test.cpp nlohmann_json::nlohmann_json)
  target_compile_definitions(texshare_info_vm_test PRIVATE TEXSHARE_INFO_BINARY="$<TARGET_FILE:texshare_info>")
  add_dependencies(texshare_info_vm_test texshare_info)
  list(APPEND TEXSHARE_VM_TESTS texshare_info_vm_test)
endif()

# Only in the backports guest: what needs DMA-BUF heaps, udmabuf or Mesa 25's lavapipe.
# TEXSHARE_VM_BACKPORTS_TESTS: GoogleTest binaries; TEXSHARE_VM_BACKPORTS_COMMANDS: more
# "-- command args" entries (e.g. a benchmark smoke run).
set(TEXSHARE_VM_BACKPORTS_TESTS "")
set(TEXSHARE_VM_BACKPORTS_COMMANDS "")
# The timeline attacks (tests/hostile) whose second half needs a real DRM syncobj, which only
# 6.12's virtio_gpu has (on the host those tests skip, saying so).
list(APPEND TEXSHARE_VM_BACKPORTS_TESTS timeline_attacks_test frame_timeline_test)
# Timeline sync through FrameSender / FrameReceiver across two processes (virtio_gpu syncobjs).
texshare_add_test_binary(frame_timeline_vm_test vm/frame_timeline_vm_test.cpp)
list(APPEND TEXSHARE_VM_BACKPORTS_TESTS frame_timeline_vm_test)
# DMA-BUF heap and udmabuf images across two processes, read back by the CPU and by lavapipe
# (tests/support/vulkan_readback.hpp, which needs libvulkan-dev, one of the GPU packages).
if(TARGET texshare_vulkan_support)
  foreach(binary dma_heap_vm_test udmabuf_vm_test)
    texshare_add_test_binary(${binary} vm/${binary}.cpp texshare::egl texshare::gbm texshare_gl_support
                             texshare_vulkan_support)
    list(APPEND TEXSHARE_VM_BACKPORTS_TESTS ${binary})
  endforeach()
elseif("$ENV{CI}" STREQUAL "true")
  message(FATAL_ERROR "texshare: the VM lane's 6.12 tests need Vulkan (libvulkan-dev), which CMake did not find")
else()
  message(WARNING "texshare: Vulkan (libvulkan-dev) not found: the VM lane's 6.12 tests are not built")
endif()
list(APPEND TEXSHARE_VM_BACKPORTS_TESTS ${TEXSHARE_VULKAN_VM_TESTS})  # texshare::vulkan's, where built (tests/VulkanTests.cmake)
list(APPEND TEXSHARE_VM_BACKPORTS_TESTS ${TEXSHARE_VULKAN_EXPORT_VM_TESTS})  # its export side, where built (tests/VulkanExportTests.cmake)
if(TARGET support_vulkan_pattern_test)
  list(APPEND TEXSHARE_VM_BACKPORTS_TESTS support_vulkan_pattern_test)  # the pattern shader on Mesa 25's lavapipe
endif()
# ---- texshare_bench smoke (issue 14 item 6, bench/guest_section.cpp) ----
# The benchmark's guest section for 2 frames a repetition: fails if it skips (no udmabuf, no
# Vulkan DMA-BUF import) or a frame's pixels read back wrong; its times mean nothing here.
# bench/ is added after tests/, so texshare_bench is not a target yet: the conditions are
# bench's own (its CMakeLists), and a bench that still was not built fails the lane as `false`.
if(TEXSHARE_BUILD_BENCH AND TARGET texshare_vulkan_support)
  find_package(benchmark QUIET)
  if(benchmark_FOUND)
    list(APPEND TEXSHARE_VM_BACKPORTS_COMMANDS
         -- "$<$<TARGET_EXISTS:texshare_bench>:$<TARGET_FILE:texshare_bench>>$<$<NOT:$<TARGET_EXISTS:texshare_bench>>:false>"
         --sections=guest --scale=0.1 --require-guest)
  endif()
endif()
# ---- end of the texshare_bench smoke ----

set(vm_binaries "")
foreach(binary ${TEXSHARE_VM_TESTS})
  list(APPEND vm_binaries -- $<TARGET_FILE:${binary}>)
endforeach()
if(TARGET texshare_host_renderer)
  # The example on its GBM + EGL path (forced: a memfd fallback would not prove anything
  # here), with its whole plan (resize, SIGKILL, respawn) in half the default frames.
  list(APPEND vm_binaries -- $<TARGET_FILE:texshare_host_renderer> --allocator=gbm --frames=150
       --resize-at=50 --kill-at=100 --output=/tmp/texshare_vm_lane_last_frame.png)
  # A renderer without a GPU (memfds the host imports through udmabuf where its EGL can, else
  # reads with a copy, saying which): 6.1 has no udmabuf, Mesa 25's EGL refuses it.
  list(APPEND vm_binaries -- $<TARGET_FILE:texshare_host_renderer> --allocator=udmabuf --frames=60
       --resize-at=20 --kill-at=40 --output=/tmp/texshare_vm_lane_udmabuf.png)
  # The swapchain from the system DMA-BUF heap, which only 6.12 has.
  list(APPEND TEXSHARE_VM_BACKPORTS_COMMANDS -- $<TARGET_FILE:texshare_host_renderer> --allocator=heap --frames=60
       --resize-at=20 --kill-at=40 --output=/tmp/texshare_vm_lane_heap.png)
  # --api=vulkan: the renderer's Vulkan-exported DMA-BUFs, drawn by a compute shader, imported
  # by the host's Vulkan (Mesa 25's lavapipe); exits 3, failing the lane, if that driver cannot.
  if(TARGET texshare::vulkan AND TARGET texshare_vulkan_pattern)
    list(APPEND TEXSHARE_VM_BACKPORTS_COMMANDS -- $<TARGET_FILE:texshare_host_renderer> --api=vulkan --frames=60
         --output=/tmp/texshare_vm_lane_vulkan.png)
    # The same with vulkan::Fences' CPU-wait fallback (what a driver without SYNC_FD gets).
    list(APPEND TEXSHARE_VM_BACKPORTS_COMMANDS -- $<TARGET_FILE:texshare_host_renderer> --api=vulkan --frames=20
         --fences=cpu_wait --output=/tmp/texshare_vm_lane_vulkan_cpu_wait.png)
  endif()
endif()
set(vm_backports_binaries ${vm_binaries})
foreach(binary ${TEXSHARE_VM_BACKPORTS_TESTS})
  list(APPEND vm_backports_binaries -- $<TARGET_FILE:${binary}>)
endforeach()
list(APPEND vm_backports_binaries ${TEXSHARE_VM_BACKPORTS_COMMANDS})
add_test(NAME vm.lane
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/vm/run_vm_lane.sh --stack bookworm ${CMAKE_BINARY_DIR}/vm-cache
                 ${vm_binaries})
add_test(NAME vm.lane.backports
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/vm/run_vm_lane.sh --stack backports
                 ${CMAKE_BINARY_DIR}/vm-cache-backports ${vm_backports_binaries})
set_tests_properties(vm.lane vm.lane.backports PROPERTIES LABELS vm TIMEOUT 900 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
