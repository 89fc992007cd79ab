# texshare-info's host-lane tests (included from tests/CMakeLists.txt when the tool is
# built): its parts and renderers on hand-made reports (label unit), and the real binary on
# this machine (label tool). The guest's run is in vm/VmLane.cmake.
find_package(nlohmann_json 3 REQUIRED)

foreach(test texshare_info_report_test texshare_info_parts_test)
  texshare_add_test_binary(${test} tools/${test}.cpp texshare_info_probe nlohmann_json::nlohmann_json)
  target_include_directories(${test} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/tools)
  gtest_discover_tests(${test} PROPERTIES LABELS unit DISCOVERY_TIMEOUT 30)
endforeach()

texshare_add_test_binary(texshare_info_host_test tools/texshare_info_host_test.cpp texshare_info_probe
                         nlohmann_json::nlohmann_json)
target_compile_definitions(texshare_info_host_test PRIVATE
  TEXSHARE_INFO_BINARY="$<TARGET_FILE:texshare_info>" TEXSHARE_VERSION_STRING="${PROJECT_VERSION}")
add_dependencies(texshare_info_host_test texshare_info)
gtest_discover_tests(texshare_info_host_test PROPERTIES LABELS tool DISCOVERY_TIMEOUT 30)
