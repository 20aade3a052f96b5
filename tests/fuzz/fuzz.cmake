# libFuzzer targets (clang, -DVT_FUZZ=ON). The code under test is compiled into the fuzzer
# itself so it carries the coverage and sanitizer instrumentation; the corpus lives in
# tests/fuzz/corpus/NAME and is replayed by a regular ctest (tests/test_*_corpus.c).
#   fuzz_safetensors -max_total_time=300 tests/fuzz/corpus/safetensors
file(GLOB VT_FUZZ_ST_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/checkpoints/safetensors*.c)
add_executable(fuzz_safetensors ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_safetensors.c
                                ${VT_FUZZ_ST_SRC})
target_compile_options(fuzz_safetensors PRIVATE -fsanitize=fuzzer,address,undefined -g
                       -fno-omit-frame-pointer)
target_link_options(fuzz_safetensors PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(fuzz_safetensors PRIVATE vt_autograd PkgConfig::VT_CKPT_DEPS)
