# Install rules: headers, the exported targets, a CMake package and pkg-config files.
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/texshare"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" FILES_MATCHING PATTERN "*.hpp")
set(TEXSHARE_INSTALLED_TARGETS texshare)
set(TEXSHARE_COMPILED_LAYERS)
foreach(optional texshare_gbm texshare_egl texshare_vulkan)
  if(TARGET ${optional})
    list(APPEND TEXSHARE_INSTALLED_TARGETS ${optional})
    list(APPEND TEXSHARE_COMPILED_LAYERS ${optional})
  endif()
endforeach()
install(TARGETS ${TEXSHARE_INSTALLED_TARGETS} EXPORT texshare-targets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")

set(TEXSHARE_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/texshare")
install(EXPORT texshare-targets NAMESPACE texshare:: DESTINATION "${TEXSHARE_CMAKE_DIR}")

# Tells texshare-config.cmake whether to look for GBM and epoxy (texshare::gbm, ::egl).
set(TEXSHARE_WITH_GPU_TARGETS ${TEXSHARE_GPU})
# ... and whether to look for Vulkan (texshare::vulkan).
if(TARGET texshare_vulkan)
  set(TEXSHARE_WITH_VULKAN_TARGET ON)
else()
  set(TEXSHARE_WITH_VULKAN_TARGET OFF)
endif()
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/texshare-config.cmake.in"
  "${PROJECT_BINARY_DIR}/texshare-config.cmake" INSTALL_DESTINATION "${TEXSHARE_CMAKE_DIR}")
# Header-only, the package fits any architecture; once compiled libraries are in it, a
# 32-bit build must not accept the 64-bit libraries (the version file then checks
# CMAKE_SIZEOF_VOID_P).
if(TEXSHARE_COMPILED_LAYERS)
  set(TEXSHARE_ARCH_INDEPENDENT)
else()
  set(TEXSHARE_ARCH_INDEPENDENT ARCH_INDEPENDENT)
endif()
write_basic_package_version_file("${PROJECT_BINARY_DIR}/texshare-config-version.cmake"
  COMPATIBILITY SameMinorVersion ${TEXSHARE_ARCH_INDEPENDENT})
install(FILES "${PROJECT_BINARY_DIR}/texshare-config.cmake"
              "${PROJECT_BINARY_DIR}/texshare-config-version.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/TexshareDependencies.cmake"
        DESTINATION "${TEXSHARE_CMAKE_DIR}")

# pkg-config: texshare (the header-only core) and one file per compiled layer
# (texshare-gbm, texshare-egl), in libdir/pkgconfig, where pkg-config looks for
# architecture-dependent packages. Each .pc finds its prefix relative to itself, so the
# installed tree can be moved or installed with --prefix.
set(TEXSHARE_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(TEXSHARE_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH TEXSHARE_PC_UP "/root/${TEXSHARE_PC_DIR}" "/root")  # "../.."
  string(REGEX REPLACE "/$" "" TEXSHARE_PC_UP "${TEXSHARE_PC_UP}")
  set(TEXSHARE_PC_PREFIX "\${pcfiledir}/${TEXSHARE_PC_UP}")
endif()
# texshare_pkg_config(NAME DESCRIPTION REQUIRES PRIVATE_REQUIRES LIBRARY): writes and
# installs NAME.pc. PRIVATE_REQUIRES are what LIBRARY links privately: a static library's
# consumers must link them too (Requires), a shared one records them itself (DT_NEEDED),
# so there they are Requires.private, which only `pkg-config --static` reads.
function(texshare_pkg_config name description requires private_requires library)
  if(private_requires AND NOT BUILD_SHARED_LIBS)
    set(requires "${requires}, ${private_requires}")
    set(private_requires "")
  endif()
  set(lines "prefix=${TEXSHARE_PC_PREFIX}"
            "includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}"
            "libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}"
            ""
            "Name: ${name}"
            "Description: ${description}"
            "Version: ${PROJECT_VERSION}"
            "Requires: ${requires}")
  if(private_requires)
    list(APPEND lines "Requires.private: ${private_requires}")
  endif()
  if(library)
    list(APPEND lines "Libs: -L\${libdir} -l${library}")
  endif()
  list(APPEND lines "Cflags: -I\${includedir}")
  list(JOIN lines "\n" content)
  file(WRITE "${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc" "${content}\n")
  install(FILES "${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc" DESTINATION "${TEXSHARE_PC_DIR}")
endfunction()

texshare_pkg_config(texshare "${PROJECT_DESCRIPTION}: the header-only core (C++20)"
                    "fmt >= 9, libdrm >= 2.4.113" "" "")
if(TARGET texshare_gbm)
  texshare_pkg_config(texshare-gbm "texshare::gbm: DRM device discovery and GBM allocation"
                      "texshare = ${PROJECT_VERSION}" "gbm" texshare_gbm)
endif()
if(TARGET texshare_egl)
  texshare_pkg_config(texshare-egl "texshare::egl: EGL/GL import and export of DMA-BUFs (libepoxy)"
                      "texshare = ${PROJECT_VERSION}, epoxy" "" texshare_egl)
endif()
if(TARGET texshare_vulkan)
  texshare_pkg_config(texshare-vulkan "texshare::vulkan: Vulkan import of DMA-BUFs"
                      "texshare = ${PROJECT_VERSION}, vulkan" "" texshare_vulkan)
endif()
