# libFuzzer targets (clang, -DVT_FUZZ=ON). The code under test is compiled into the fuzzer
# itself so it carries the coverage and sanitizer instrumentation; the corpus lives in
# tests/fuzz/corpus/NAME and is replayed by a regular ctest (tests/test_*_corpus.c), so what
# the fuzzers found stays checked with any compiler. One run at a time, e.g.
#   build-fuzz/fuzz_tokenizer -max_total_time=300 -jobs=1 tests/fuzz/corpus/tokenizer
function(vt_fuzz name)
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/${name}.c ${F_SOURCES})
  # -fno-sanitize-recover: undefined behaviour stops the run like a crash, so it is found
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=all -g -fno-omit-frame-pointer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined
                      -fno-sanitize-recover=all)
  target_link_libraries(${name} PRIVATE ${F_LIBS} vt_autograd)
endfunction()

file(GLOB VT_FUZZ_ST_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/checkpoints/safetensors*.c)
file(GLOB VT_FUZZ_DATA_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/data/*.c)
set(VT_FUZZ_COMMON ${CMAKE_SOURCE_DIR}/autograd/regfile.c)
vt_fuzz(fuzz_safetensors SOURCES ${VT_FUZZ_ST_SRC} LIBS PkgConfig::VT_CKPT_DEPS)
foreach(t tokenizer yaml jsonl shard media)
  if(EXISTS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${t}.c)
    vt_fuzz(fuzz_${t} SOURCES ${VT_FUZZ_DATA_SRC} ${VT_FUZZ_COMMON}
            LIBS $<TARGET_PROPERTY:vt_data,INTERFACE_LINK_LIBRARIES>)
    target_include_directories(fuzz_${t} PRIVATE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
  endif()
endforeach()
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_manifest.c)
  vt_fuzz(fuzz_manifest SOURCES ${CMAKE_SOURCE_DIR}/checkpoints/ckpt.c ${VT_FUZZ_COMMON}
          LIBS ZLIB::ZLIB)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_torch_pt.c)
  vt_fuzz(fuzz_torch_pt SOURCES ${CMAKE_SOURCE_DIR}/checkpoints/torch_pt.c ${CMAKE_SOURCE_DIR}/checkpoints/torch_pickle.c ${VT_FUZZ_ST_SRC}
          ${VT_FUZZ_COMMON} LIBS PkgConfig::VT_CKPT_DEPS PkgConfig::VT_ZIP)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_cli.c)
  vt_fuzz(fuzz_cli SOURCES ${CMAKE_SOURCE_DIR}/cli/cli.c)
endif()
# the config readers: the stage YAML (stages/) and every model's config.json (model/)
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_config.c)
  file(GLOB VT_FUZZ_MODEL_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/model/*.c)
  vt_fuzz(fuzz_config SOURCES ${CMAKE_SOURCE_DIR}/stages/stage_config.c ${VT_FUZZ_MODEL_SRC}
          ${VT_FUZZ_DATA_SRC} ${VT_FUZZ_COMMON}
          LIBS $<TARGET_PROPERTY:vt_data,INTERFACE_LINK_LIBRARIES>
          $<TARGET_PROPERTY:vt_model,INTERFACE_LINK_LIBRARIES>)
  target_include_directories(fuzz_config PRIVATE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
endif()
# trainer.json's reader (train/trainer_state.c; the data cursor's parser from data/)
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_trainer_state.c)
  vt_fuzz(fuzz_trainer_state SOURCES ${CMAKE_SOURCE_DIR}/train/trainer_state.c
          ${VT_FUZZ_DATA_SRC} ${VT_FUZZ_COMMON}
          LIBS $<TARGET_PROPERTY:vt_data,INTERFACE_LINK_LIBRARIES>)
  target_include_directories(fuzz_trainer_state PRIVATE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
endif()
