# Install rules: headers, the exported targets, a CMake package and a pkg-config file.
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/texshare"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" FILES_MATCHING PATTERN "*.hpp")
set(TEXSHARE_INSTALLED_TARGETS texshare)
foreach(optional texshare_gbm texshare_egl)
  if(TARGET ${optional})
    list(APPEND TEXSHARE_INSTALLED_TARGETS ${optional})
  endif()
endforeach()
install(TARGETS ${TEXSHARE_INSTALLED_TARGETS} EXPORT texshare-targets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")

set(TEXSHARE_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/texshare")
install(EXPORT texshare-targets NAMESPACE texshare:: DESTINATION "${TEXSHARE_CMAKE_DIR}")

# Tells texshare-config.cmake whether to look for GBM and epoxy (texshare::gbm, ::egl).
set(TEXSHARE_WITH_GPU_TARGETS ${TEXSHARE_GPU})
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/texshare-config.cmake.in"
  "${PROJECT_BINARY_DIR}/texshare-config.cmake" INSTALL_DESTINATION "${TEXSHARE_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/texshare-config-version.cmake"
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/texshare-config.cmake"
              "${PROJECT_BINARY_DIR}/texshare-config-version.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/TexshareDependencies.cmake"
        DESTINATION "${TEXSHARE_CMAKE_DIR}")

configure_file("${PROJECT_SOURCE_DIR}/cmake/texshare.pc.in" "${PROJECT_BINARY_DIR}/texshare.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/texshare.pc" DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig")
