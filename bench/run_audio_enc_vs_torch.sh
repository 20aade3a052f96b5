#!/usr/bin/env bash
# Audio encoder forward + backward frames/s, vita-train (C) against PyTorch on the same shape, one
# after the other with the same threads, two rounds alternating; prints the best of each and the
# ratio C / torch (target: at least 1.2).
# Usage: bench/run_audio_enc_vs_torch.sh [BUILD_DIR]  env: THREADS (2), SHAPE ("256 4 2 1000 3")
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
cores=$(nproc --all)
export OMP_NUM_THREADS=${THREADS:-2}
shape=${SHAPE:-256 4 2 1000 3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "machine: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ); threads $OMP_NUM_THREADS"
for r in 1 2; do
  # shellcheck disable=SC2086
  "$build/bench/bench_audio_enc" $shape | tee -a "$log"
  # shellcheck disable=SC2086
  python3 "$here/bench_audio_enc_torch.py" $shape | tee -a "$log"
done
best() { grep "impl=$1 " "$log" | sed 's/.*frames_per_s=\([0-9.]*\).*/\1/' | sort -g | tail -1; }
# the step's CPU time (all threads): at THREADS=1 the work itself, so a loaded machine still
# gives a fair ratio; at 2 threads it also counts OpenMP's spinning
cpu() { grep "impl=$1 " "$log" | sed 's/.*cpu_ms=\([0-9.]*\).*/\1/' | sort -g | head -1; }
c=$(best c) t=$(best torch) cc=$(cpu c) tc=$(cpu torch)
echo "best: C $c frames/s, torch $t frames/s, C / torch = $(awk -v a="$c" -v b="$t" 'BEGIN{printf "%.2f", a/b}')"
echo "best step CPU time: C $cc ms, torch $tc ms, torch / C = $(awk -v a="$cc" -v b="$tc" 'BEGIN{printf "%.2f", b/a}')"
