# texshare::vulkan's tests (included from tests/CMakeLists.txt where the target exists).
# The unit tests mirror include/texshare/vulkan/ and run on the host: with Debian 12's
# lavapipe (no DMA-BUF extension) the refusals run and the tests needing the extension skip
# with a message; the VM lane's backports guest (Mesa 25's lavapipe) runs all of them, and
# the two-process import tests (vulkan_import_vm_test) only there: VmLane.cmake lists them.
foreach(header vulkan/format vulkan/device vulkan/importer vulkan/import_listener vulkan/format_table vulkan/ycbcr)
  texshare_add_unit_test(${header} texshare::vulkan)
endforeach()
texshare_add_test_binary(vulkan_import_vm_test vm/vulkan_import_vm_test.cpp texshare::vulkan texshare::gbm)
# A peer's shared memory converted through udmabuf by vulkan::ImportListener (issue 15).
texshare_add_test_binary(vulkan_udmabuf_vm_test vm/vulkan_udmabuf_vm_test.cpp texshare::vulkan)
# What VmLane.cmake appends to TEXSHARE_VM_BACKPORTS_TESTS: the unit tests again (there
# the driver has the DMA-BUF extensions, so none skips) and the two-process tests.
set(TEXSHARE_VULKAN_VM_TESTS vulkan_import_vm_test vulkan_device_test vulkan_importer_test vulkan_import_listener_test
    vulkan_format_table_test vulkan_udmabuf_vm_test)
# OPAQUE_FD across two processes (the opaque_fd backing): every lavapipe has OPAQUE_FD image
# memory, so it runs on the host too; in the backports guest also the DMA-BUF-as-opaque_fd
# refusal.
texshare_add_test_binary(vulkan_opaque_vm_test vm/vulkan_opaque_vm_test.cpp texshare::vulkan)
gtest_discover_tests(vulkan_opaque_vm_test PROPERTIES LABELS unit DISCOVERY_TIMEOUT 30)
list(APPEND TEXSHARE_VULKAN_VM_TESTS vulkan_opaque_vm_test)
# Colour per image (issue 16): an NV12 DMA-BUF's BT.709 limited label, carried across two
# processes, drives lavapipe's Y'CbCr conversion (backports guest: the system heap, Mesa 25).
texshare_add_test_binary(vulkan_ycbcr_vm_test vm/vulkan_ycbcr_vm_test.cpp texshare::vulkan)
list(APPEND TEXSHARE_VULKAN_VM_TESTS vulkan_ycbcr_vm_test)
include(VulkanExportTests.cmake)  # the export side: exporter, fences (helper vkexport)
