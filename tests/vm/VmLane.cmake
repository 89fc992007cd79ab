# The VM lane: test binaries that need real kernel DMA-BUFs, run inside a qemu guest with
# Debian's 6.1 kernel (vgem, virtio-gpu) because these machines' kernel has no exporter.
# One ctest test (label vm) prepares the guest (cached in the build tree), boots it once and
# runs every binary there; it fails, never skips, under CI. Run it alone: ctest -L vm.
set(TEXSHARE_VM_TESTS gbm_vm_test)
texshare_add_test_binary(gbm_vm_test vm/gbm_vm_test.cpp texshare::gbm)
if(TARGET texshare_egl AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/vm/egl_vm_test.cpp)
  texshare_add_test_binary(egl_vm_test vm/egl_vm_test.cpp texshare::egl texshare::gbm)
  list(APPEND TEXSHARE_VM_TESTS egl_vm_test)
endif()

set(vm_binaries "")
foreach(binary ${TEXSHARE_VM_TESTS})
  list(APPEND vm_binaries -- $<TARGET_FILE:${binary}>)
endforeach()
if(TARGET texshare_host_renderer)
  # The example on its GBM + EGL path (forced: a memfd fallback would not prove anything
  # here), with its whole plan (resize, SIGKILL, respawn) in half the default frames.
  list(APPEND vm_binaries -- $<TARGET_FILE:texshare_host_renderer> --allocator=gbm --frames=150
       --resize-at=50 --kill-at=100 --output=/tmp/texshare_vm_lane_last_frame.png)
endif()
add_test(NAME vm.lane
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/vm/run_vm_lane.sh ${CMAKE_BINARY_DIR}/vm-cache ${vm_binaries})
set_tests_properties(vm.lane PROPERTIES LABELS vm TIMEOUT 900 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
