#!/usr/bin/env bash
# The GPU check: one prepared script for one lease of a GPU machine (H100/H200):
#   1. builds the CUDA backend for sm_90 (-DCMAKE_CUDA_ARCHITECTURES=90, -Werror), only the
#      targets the check runs;
#   2. runs the tests labelled cuda (ctest -L cuda): every op-table case on the GPU against
#      the CPU, the tensor-core flash attention against the CPU (test_cuda_attn), the bf16
#      GEMM, host I/O, 10-step CPU/GPU training parity of four models, and `vita train` with
#      device: cuda (fp32 and bf16) against the same stage on the CPU, and the release of
#      sharded f32 masters in VMM chunks (test_cuda_vmm: cudaMemGetInfo rises by the chunks);
#   3. the op table again with VT_CUDA_SIMPLE=1, the switch that bypasses the fast kernels
#      (flash attention, cuBLASLt's bias epilogue, the float4 elementwise / norm / softmax
#      passes, the sorted index_add) for the simple ones: if a fast kernel is broken, this part
#      passing says which side to blame, and the switch is the workaround; then the host
#      emulation of the fused kernels (test_cuda_sim: SwiGLU, RoPE + q/k/v split, sorted
#      index_add against the CPU), which needs no GPU and says whether the kernel code or the
#      device is at fault;
#   4. the GPU benchmarks: GEMM TFLOP/s next to a plain cuBLASLt call (bench_cuda_gemm),
#      attention forward / backward TFLOP/s of the simple and the flash kernels at the MFU
#      model's shape and two others (bench_cuda_attn), and the training MFU of a ~0.5B Qwen2
#      at sequence 2048 in bf16 mixed precision (bench_cuda_train --bf16: flash attention),
#      then the same with VT_CUDA_SIMPLE=1 (the simple attention) for the difference.
# Each part runs under `timeout`, so the whole stays under 8 minutes; a part that fails or
# times out is reported and the next one still runs (limits: 40 + 140 + 90 + 30 + 10 + 25 +
# 35 + 75 + 30 s = 7.9 min). The log goes to $OUT/gpu_check.log when OUT is set (else to the build
# directory), a summary table is printed last. Exit code: 0 when every part passed, 1 when one
# failed or timed out, 77 when the machine has no GPU (said first; the build still runs, the
# GPU parts skip).
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
have_gpu=1
if ! nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv >>"$LOG" 2>&1 ||
  ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  have_gpu=0
  log "gpu_check: no GPU on this machine (nvidia-smi lists none): the build runs, every GPU part"
  log "           skips, and the script exits 77. Run it on the GPU machine for the real check."
fi

TESTS="test_backend_ops test_cuda_attn test_gemm test_gemm_epilogue test_host_io test_cuda_train vita
  test_cuda_sim test_cuda_vmm"
BENCHES="bench_cuda_gemm bench_cuda_attn bench_cuda_train"
built=1
if [ "${VT_GPU_PREBUILT:-0}" != 1 ]; then
  part configure 40 cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DVT_ENABLE_CUDA=ON -DVT_ENABLE_MPI=OFF -DVT_WERROR=ON || built=0
  if [ $built = 1 ]; then
    # shellcheck disable=SC2086
    part build 140 cmake --build "$BUILD" -j"$JOBS" --target $TESTS $BENCHES || built=0
  fi
fi
if [ $built = 1 ]; then
  part "ctest -L cuda" 90 ctest --test-dir "$BUILD" -L cuda --output-on-failure -j1
  part "ops (simple)" 30 env VT_CUDA_SIMPLE=1 ctest --test-dir "$BUILD" -R '^test_backend_ops$' \
    --output-on-failure
  part "host sim" 10 ctest --test-dir "$BUILD" -R '^test_cuda_sim$' --output-on-failure
  part gemm 25 "$BUILD/bench/bench_cuda_gemm" 20
  part attention 35 "$BUILD/bench/bench_cuda_attn" 5
  part train-bf16 75 "$BUILD/bench/bench_cuda_train" --bf16 4 2 2048 1
  part train-simple 30 env VT_CUDA_SIMPLE=1 "$BUILD/bench/bench_cuda_train" --bf16 2 1 2048 1
fi

log ""
log "---- results ----"
grep -h -e '^RESULT' -e 'passed, .* failed' -e ': loss .* on cuda:0' -e '^flash ' -e '^simple ' \
  "$LOG" | tee -a "$LOG.tmp"
cat "$LOG.tmp" >>"$LOG" 2>/dev/null
rm -f "$LOG.tmp"
log ""
log "---- summary ----"
for s in "${SUMMARY[@]}"; do log "$s"; done
log "total ${SECONDS}s; full log: $LOG"
failed=0
for s in "${SUMMARY[@]}"; do
  case "$s" in *FAILED* | *"TIMED OUT"*) failed=1 ;; esac
done
[ $built = 1 ] || failed=1
[ $failed = 1 ] && exit 1
[ $have_gpu = 0 ] && exit 77
exit 0
