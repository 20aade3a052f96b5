#!/usr/bin/env bash
# fbank throughput, vita-train's C (FFTW) against torchaudio's compliance.kaldi.fbank, one after
# the other with the same thread count and clips, REPS rounds alternating the sides; prints each
# side's best seconds of audio per second and the ratio C / torchaudio (target: at least 2).
# Usage: bench/run_fbank_vs_torchaudio.sh [BUILD_DIR]   env: THREADS (2), CLIP (10 s), CLIPS (30)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
export OMP_NUM_THREADS=${THREADS:-2}
clip=${CLIP:-10} clips=${CLIPS:-30}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ); threads $OMP_NUM_THREADS"
for r in 1 2; do
  "$build/bench/bench_fbank" "$clip" "$clips" 3 | tee -a "$log"
  python3 "$here/bench_fbank_torch.py" "$clip" "$clips" 3 | tee -a "$log"
done
c=$(grep '^c fbank' "$log" | sed 's/.*-> \([0-9]*\) s of audio.*/\1/' | sort -n | tail -1)
t=$(grep '^torchaudio' "$log" | sed 's/.*-> \([0-9]*\) s of audio.*/\1/' | sort -n | tail -1)
echo "best: C $c s/s, torchaudio $t s/s, C / torchaudio = $(awk -v a="$c" -v b="$t" 'BEGIN{printf "%.2f", a/b}')"
