# texshare::vulkan's export side (included from VulkanTests.cmake): vulkan/exporter.hpp and
# vulkan/fence.hpp's unit tests run on the host (Debian 12's lavapipe: the refusal of a driver
# without DMA-BUF export and the CPU-wait fence fallback; what needs DMA-BUF export skips with
# a message) and again in the backports guest, where none skips; vulkan_export_vm_test
# (Vulkan producer -> Vulkan and GL consumers, two processes) runs only there.
foreach(header vulkan/exporter vulkan/fence)
  texshare_add_unit_test(${header} texshare::vulkan)
endforeach()
texshare_add_test_binary(vulkan_export_vm_test vm/vulkan_export_vm_test.cpp texshare::vulkan texshare::egl texshare::gbm
                         texshare_gl_support)
# OPAQUE_FD semaphores as the frame protocol's second fence kind, two processes: skips with
# the driver's answer where there are none (every lavapipe), runs on NVIDIA (the GPU lane).
texshare_add_test_binary(vulkan_opaque_fence_vm_test vm/vulkan_opaque_fence_vm_test.cpp texshare::vulkan)
# VmLane.cmake appends these to TEXSHARE_VM_BACKPORTS_TESTS.
set(TEXSHARE_VULKAN_EXPORT_VM_TESTS vulkan_export_vm_test vulkan_exporter_test vulkan_fence_test
                                    vulkan_opaque_fence_vm_test)
