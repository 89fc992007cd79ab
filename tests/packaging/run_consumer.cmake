# Installs texshare, or vendors it, and builds and runs tests/packaging/consumer one way, in
# a scratch directory:
#   cmake -DMODE=<mode> -DSOURCE_DIR=... -DWORK_DIR=... [-DPREFIX=...] -P run_consumer.cmake
# readme_install    runs the README's install commands, exactly as written there (the block
#                   after <!-- texshare-install-commands ...-->), in a copy of the source, with
#                   its /opt/texshare replaced by PREFIX; then checks what was installed
# install           the CMake consumer against PREFIX (find_package), core and GPU layers
# pkg-config        the consumer compiled with the flags of PREFIX's texshare.pc, and the
#                   GPU consumer with texshare-gbm.pc, texshare-egl.pc and texshare-vulkan.pc
# add_subdirectory  vendored for the core alone, with pkg-config unable to find libgbm and
#                   libepoxy: it must configure, build no GPU library and run
# add_subdirectory_gpu  vendored with TEXSHARE_GPU=ON and BUILD_SHARED_LIBS=ON: texshare::gbm
#                   and ::egl link and run as shared libraries with their SONAME,
#                   libtexshare_<layer>.so.<major>.<minor> (one build checks both: each
#                   build of the layers costs a minute of CPU on a 2-core machine)
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "failed (${result}): ${command}")
  endif()
endfunction()

function(require_file path)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "missing from the installed tree: ${path}")
  endif()
endfunction()

# `pkg-config ARGS...` into `out`, split into a list of arguments.
function(pkg_config_flags out)
  execute_process(COMMAND pkg-config ${ARGN} OUTPUT_VARIABLE flags ERROR_VARIABLE error
                  RESULT_VARIABLE result OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT result EQUAL 0)
    string(REPLACE ";" " " arguments "${ARGN}")
    message(FATAL_ERROR "pkg-config ${arguments} failed: ${error}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(${out} ${flags} PARENT_SCOPE)
endfunction()

# The repository's files without build trees, so the README's commands, run "in the
# source", touch nothing of the developer's.
function(copy_source destination)
  file(COPY "${SOURCE_DIR}/" DESTINATION "${destination}"
       PATTERN ".git" EXCLUDE PATTERN "build" EXCLUDE PATTERN "build-*" EXCLUDE PATTERN "out" EXCLUDE)
endfunction()

set(consumer "${SOURCE_DIR}/tests/packaging/consumer")

if(MODE STREQUAL "readme_install")
  file(READ "${SOURCE_DIR}/README.md" readme)
  set(marker "<!-- texshare-install-commands")
  string(FIND "${readme}" "${marker}" start)
  if(start EQUAL -1)
    message(FATAL_ERROR "README.md has no ${marker} before its install commands")
  endif()
  string(SUBSTRING "${readme}" ${start} -1 readme)
  string(FIND "${readme}" "```sh\n" open)
  string(FIND "${readme}" "\n```\n" close)
  if(open EQUAL -1 OR close LESS open)
    message(FATAL_ERROR "no ```sh block after ${marker} in README.md")
  endif()
  math(EXPR open "${open} + 6")
  math(EXPR length "${close} - ${open} + 1")
  string(SUBSTRING "${readme}" ${open} ${length} commands)
  string(FIND "${commands}" "/opt/texshare" has_prefix)
  if(has_prefix EQUAL -1)
    message(FATAL_ERROR "the README's install commands no longer install to /opt/texshare:\n${commands}")
  endif()
  string(REPLACE "/opt/texshare" "${PREFIX}" commands "${commands}")
  message(STATUS "the README's install commands, with the prefix replaced:\n${commands}")
  file(REMOVE_RECURSE "${PREFIX}")
  copy_source("${WORK_DIR}/src")
  execute_process(COMMAND sh -ec "${commands}" WORKING_DIRECTORY "${WORK_DIR}/src" RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "the README's install commands failed (${result})")
  endif()
  # What a user of each way in finds: the CMake package, one .pc per library under
  # libdir/pkgconfig (none left in share/), the layers, the headers and the tool.
  file(GLOB_RECURSE version_file "${PREFIX}/*/texshare-config-version.cmake")
  if(NOT version_file)
    message(FATAL_ERROR "no texshare-config-version.cmake under ${PREFIX}")
  endif()
  get_filename_component(libdir "${version_file}/../../.." ABSOLUTE)
  foreach(file pkgconfig/texshare.pc pkgconfig/texshare-gbm.pc pkgconfig/texshare-egl.pc
               libtexshare_gbm.a libtexshare_egl.a)
    require_file("${libdir}/${file}")
  endforeach()
  require_file("${PREFIX}/include/texshare/texshare.hpp")
  require_file("${PREFIX}/bin/texshare-info")
  if(EXISTS "${PREFIX}/share/pkgconfig")
    message(FATAL_ERROR "a .pc file went to share/pkgconfig, where architecture-independent packages go")
  endif()
  # With compiled libraries in it the package must not match another architecture.
  file(READ "${version_file}" version_check)
  string(FIND "${version_check}" "CMAKE_SIZEOF_VOID_P" checks_architecture)
  if(checks_architecture EQUAL -1)
    message(FATAL_ERROR "${version_file} is ARCH_INDEPENDENT although it installs compiled libraries")
  endif()
  run("${PREFIX}/bin/texshare-info" --json OUTPUT_QUIET ERROR_QUIET)
  return()
endif()

if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} -S "${consumer}" -B "${WORK_DIR}/build" "-DCMAKE_PREFIX_PATH=${PREFIX}")
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
  run("${WORK_DIR}/build/consumer")
  run("${WORK_DIR}/build/gpu_consumer")
elseif(MODE STREQUAL "pkg-config")
  # The way a non-CMake build consumes it: only the prefix's own .pc files are searched.
  file(GLOB_RECURSE core_pc "${PREFIX}/*/pkgconfig/texshare.pc")
  get_filename_component(pc_dir "${core_pc}" DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  pkg_config_flags(core_flags --cflags --libs texshare)
  # Each layer's .pc alone brings its library, its own dependency and the core's.
  foreach(expected "texshare-gbm;-ltexshare_gbm;-lgbm;-ldrm;-lfmt" "texshare-egl;-ltexshare_egl;-lepoxy;-ldrm;-lfmt")
    list(POP_FRONT expected package)
    pkg_config_flags(flags --cflags --libs ${package})
    foreach(flag ${expected} "-I${PREFIX}")
      string(FIND "${flags}" "${flag}" found)
      if(found EQUAL -1)
        message(FATAL_ERROR "pkg-config --cflags --libs ${package} lacks ${flag}: ${flags}")
      endif()
    endforeach()
  endforeach()
  pkg_config_flags(gpu_flags --cflags --libs texshare-gbm texshare-egl texshare-vulkan)
  file(MAKE_DIRECTORY "${WORK_DIR}/build")
  run(c++ -std=c++20 "${consumer}/main.cpp" ${core_flags} -o "${WORK_DIR}/build/consumer")
  run("${WORK_DIR}/build/consumer")
  run(c++ -std=c++20 "${consumer}/gpu_main.cpp" ${gpu_flags} -o "${WORK_DIR}/build/gpu_consumer")
  run("${WORK_DIR}/build/gpu_consumer")
elseif(MODE STREQUAL "add_subdirectory")
  # A pkg-config search path with libdrm alone: were libgbm or libepoxy needed, configuring fails.
  pkg_config_flags(drm_pc_dir --variable=pcfiledir libdrm)
  file(MAKE_DIRECTORY "${WORK_DIR}/pkgconfig")
  file(COPY "${drm_pc_dir}/libdrm.pc" DESTINATION "${WORK_DIR}/pkgconfig")
  set(ENV{PKG_CONFIG_LIBDIR} "${WORK_DIR}/pkgconfig")
  set(ENV{PKG_CONFIG_PATH} "")
  run(${CMAKE_COMMAND} -S "${consumer}" -B "${WORK_DIR}/build" -DTEXSHARE_CONSUME=add_subdirectory
      "-DTEXSHARE_SOURCE_DIR=${SOURCE_DIR}" -DTEXSHARE_EXPECT_GPU=OFF)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
  file(GLOB_RECURSE gpu_libraries "${WORK_DIR}/build/libtexshare_*")
  if(gpu_libraries)
    message(FATAL_ERROR "vendoring the core built GPU libraries: ${gpu_libraries}")
  endif()
  run("${WORK_DIR}/build/consumer")
elseif(MODE STREQUAL "add_subdirectory_gpu")
  run(${CMAKE_COMMAND} -S "${consumer}" -B "${WORK_DIR}/build" -DTEXSHARE_CONSUME=add_subdirectory
      "-DTEXSHARE_SOURCE_DIR=${SOURCE_DIR}" -DTEXSHARE_GPU=ON -DTEXSHARE_EXPECT_GPU=ON -DBUILD_SHARED_LIBS=ON)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
  run("${WORK_DIR}/build/consumer")
  run("${WORK_DIR}/build/gpu_consumer")
  file(STRINGS "${SOURCE_DIR}/CMakeLists.txt" project_line REGEX "^project\\(texshare VERSION")
  string(REGEX MATCH "VERSION ([0-9]+)\\.([0-9]+)\\.([0-9]+)" _ "${project_line}")
  set(soversion "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
  set(version "${soversion}.${CMAKE_MATCH_3}")
  foreach(layer gbm egl)
    file(GLOB_RECURSE library "${WORK_DIR}/build/libtexshare_${layer}.so.${version}")
    if(NOT library)
      message(FATAL_ERROR "no libtexshare_${layer}.so.${version} was built")
    endif()
    execute_process(COMMAND objdump -p "${library}" OUTPUT_VARIABLE dynamic COMMAND_ERROR_IS_FATAL ANY)
    string(REGEX MATCH "SONAME +[^\n]+" soname "${dynamic}")
    if(NOT soname MATCHES "SONAME +libtexshare_${layer}\\.so\\.${soversion}$")
      message(FATAL_ERROR "libtexshare_${layer} has '${soname}', not SONAME libtexshare_${layer}.so.${soversion}")
    endif()
  endforeach()
else()
  message(FATAL_ERROR "unknown MODE=${MODE}")
endif()
