# Dependencies of the data layer (vt_data): JSON (jansson), the pre-tokenizer regex (PCRE2),
# NFC normalisation (utf8proc), YAML configs (libyaml), shards (HDF5 C) and CRC32 (zlib); audio:
# decoding (libsndfile), resampling (libsoxr), the fbank FFT (FFTW).
# Debian: libjansson-dev libpcre2-dev libutf8proc-dev libyaml-dev libhdf5-dev zlib1g-dev
#         libsndfile1-dev libsoxr-dev libfftw3-dev
pkg_check_modules(VT_DATA_DEPS REQUIRED IMPORTED_TARGET
  jansson libpcre2-8 libutf8proc yaml-0.1 zlib)
pkg_check_modules(VT_AUDIO_DEPS REQUIRED IMPORTED_TARGET sndfile soxr fftw3)
find_package(HDF5 REQUIRED COMPONENTS C)
target_include_directories(vt_data PUBLIC ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_compile_definitions(vt_data PUBLIC ${HDF5_C_DEFINITIONS} ${HDF5_DEFINITIONS})
target_link_libraries(vt_data PUBLIC PkgConfig::VT_DATA_DEPS PkgConfig::VT_AUDIO_DEPS ${HDF5_C_LIBRARIES} m)
# Media: stb_image (header-only, Debian libstb-dev) for images, FFmpeg's libraries for video.
# Debian: libstb-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
pkg_check_modules(VT_MEDIA_DEPS REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
target_link_libraries(vt_data PUBLIC PkgConfig::VT_MEDIA_DEPS)
if(VT_SANITIZE)
  # stb_image shifts negative values by design; UBSan would stop on its code, not ours
  set_source_files_properties(${CMAKE_SOURCE_DIR}/data/image_stb.c PROPERTIES
                              COMPILE_OPTIONS "-fno-sanitize=undefined")
endif()
