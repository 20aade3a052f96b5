#!/usr/bin/env bash
# The GPU check: one prepared script for one lease of a GPU machine (H100/H200):
#   1. builds the CUDA backend for sm_90 (-DCMAKE_CUDA_ARCHITECTURES=90, -Werror), only the
#      targets the check runs;
#   2. runs the tests labelled cuda (ctest -L cuda): every op-table case on the GPU against
#      the CPU, the bf16 GEMM, host I/O, 10-step CPU/GPU training parity of four models, and
#      `vita train` with device: cuda (fp32 and bf16) against the same stage on the CPU;
#   3. the GPU benchmarks: GEMM TFLOP/s next to a plain cuBLASLt call (bench_cuda_gemm),
#      fused attention forward / backward TFLOP/s (bench_cuda_attn), and the training MFU of a
#      ~0.5B Qwen2 at sequence 2048 (bench_cuda_train), in bf16 mixed precision and in f32.
# Each part runs under `timeout`, so the whole stays under 8 minutes; a part that fails or
# times out is reported and the next one still runs (limits: 45 + 140 + 80 + 30 + 30 + 75 + 50 s = 7.5 min). The log goes to $OUT/gpu_check.log when
# OUT is set (else to the build directory), a summary table is printed last.
#   bench/gpu_check.sh [build-dir]        (default: build-gpu under the source tree)
# Environment: JOBS (build parallelism, default nproc), VT_GPU_PREBUILT=1 (skip the build and
# use the build directory as it is). The machine needs the project's build dependencies
# (setup.sh's list: OpenBLAS, FFTW, jansson, libyaml, HDF5, FFmpeg, ...); a missing one fails
# the configure part with CMake's message, shown at the end.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-gpu}
LOGDIR=${OUT:-$BUILD}
mkdir -p "$LOGDIR" "$BUILD"
LOG=$LOGDIR/gpu_check.log
: >"$LOG"
JOBS=${JOBS:-$(nproc)}
declare -a SUMMARY

log() { echo "$@" | tee -a "$LOG"; }

# part NAME SECONDS CMD...: runs CMD under timeout, its output into the log (and, when it
# fails, its last lines to the terminal), and records the outcome for the summary.
part() {
  local name=$1 secs=$2
  shift 2
  log "==== $name (limit ${secs}s): $*"
  local t0=$SECONDS part_log="$LOGDIR/part.$$.log"
  timeout --signal=TERM --kill-after=10 "$secs" "$@" >"$part_log" 2>&1
  local rc=$?
  cat "$part_log" >>"$LOG"
  # a failure shows its last lines here too (the reply of a remote run carries the end)
  [ $rc -ne 0 ] && [ $rc -ne 77 ] && tail -15 "$part_log"
  rm -f "$part_log"
  local what="ok"
  [ $rc -eq 124 ] && what="TIMED OUT"
  [ $rc -eq 77 ] && what="skipped (no GPU)"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 77 ] && what="FAILED (rc $rc)"
  SUMMARY+=("$(printf '%-14s %-18s %4ds' "$name" "$what" $((SECONDS - t0)))")
  log "==== $name: $what after $((SECONDS - t0))s"
  return $rc
}

log "gpu_check: source $SRC, build $BUILD, log $LOG, $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv >>"$LOG" 2>&1 ||
  log "nvidia-smi: not available"

TESTS="test_backend_ops test_gemm test_host_io test_cuda_train vita"
BENCHES="bench_cuda_gemm bench_cuda_attn bench_cuda_train"
built=1
if [ "${VT_GPU_PREBUILT:-0}" != 1 ]; then
  part configure 45 cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DVT_ENABLE_CUDA=ON -DVT_ENABLE_MPI=OFF -DVT_WERROR=ON || built=0
  if [ $built = 1 ]; then
    # shellcheck disable=SC2086
    part build 140 cmake --build "$BUILD" -j"$JOBS" --target $TESTS $BENCHES || built=0
  fi
fi
if [ $built = 1 ]; then
  part "ctest -L cuda" 80 ctest --test-dir "$BUILD" -L cuda --output-on-failure -j1
  part gemm 30 "$BUILD/bench/bench_cuda_gemm" 20
  part attention 30 "$BUILD/bench/bench_cuda_attn" 5
  part train-bf16 75 "$BUILD/bench/bench_cuda_train" --bf16 4 2 2048 1
  part train-f32 50 "$BUILD/bench/bench_cuda_train" 2 1 2048 1
fi

log ""
log "---- results ----"
grep -h -e '^RESULT' -e 'passed, .* failed' -e ': loss .* on cuda:0' "$LOG" | tee -a "$LOG.tmp"
cat "$LOG.tmp" >>"$LOG" 2>/dev/null
rm -f "$LOG.tmp"
log ""
log "---- summary ----"
for s in "${SUMMARY[@]}"; do log "$s"; done
log "total ${SECONDS}s; full log: $LOG"
