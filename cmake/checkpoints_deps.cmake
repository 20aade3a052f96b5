# Dependencies of the checkpoints layer (vt_checkpoints): JSON headers and indexes (jansson),
# torch.save zip archives (libzip). Debian: libjansson-dev, libzip-dev. With -DVT_FUZZ=ON and
# clang, also the libFuzzer targets.
pkg_check_modules(VT_CKPT_DEPS REQUIRED IMPORTED_TARGET jansson)
target_link_libraries(vt_checkpoints PUBLIC PkgConfig::VT_CKPT_DEPS)
# torch.save checkpoints are zip archives (libzip; Debian: libzip-dev).
pkg_check_modules(VT_ZIP REQUIRED IMPORTED_TARGET libzip)
target_link_libraries(vt_checkpoints PUBLIC PkgConfig::VT_ZIP)

option(VT_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)
if(VT_FUZZ)
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    include(${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz.cmake)
  else()
    message(WARNING "VT_FUZZ needs clang (CC=clang); fuzz targets not built")
  endif()
endif()

# Checkpoint manifests carry a CRC32 per file (zlib; Debian: zlib1g-dev).
find_package(ZLIB REQUIRED)
target_link_libraries(vt_checkpoints PUBLIC ZLIB::ZLIB)
