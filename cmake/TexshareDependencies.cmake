# The core's dependencies, found the same way in the build tree and by texshare-config.cmake.
include(CMakeFindDependencyMacro)
include(GNUInstallDirs)
find_dependency(fmt 9)
find_dependency(PkgConfig)
# GLOBAL so the target resolves wherever a consumer links texshare::texshare, including
# from a parent project that vendors texshare with add_subdirectory().
if(NOT TARGET PkgConfig::TEXSHARE_LIBDRM)
  pkg_check_modules(TEXSHARE_LIBDRM REQUIRED IMPORTED_TARGET GLOBAL libdrm>=2.4.113)
endif()
