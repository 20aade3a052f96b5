#!/usr/bin/env bash
# The vision tower + adapter, forward + backward, fp32 on the CPU: vita-train's bench/bench_vit
# and PyTorch's bench/bench_vit_torch.py one after the other (never concurrently) with the same
# threads, REPS rounds alternating the sides; prints each side's best tiles/s and the ratio, then
# the C side's peak step memory of a 13-tile sample with and without recompute.
# Usage: bench/run_vit_vs_torch.sh [BUILD_DIR]
#   env: THREADS (2), LAYERS (2 of the 24), TILES (1 a step), STEPS (3), WARMUP (1), REPS (2)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${THREADS:-2} layers=${LAYERS:-2} tiles=${TILES:-1} steps=${STEPS:-3}
warmup=${WARMUP:-1} reps=${REPS:-2}
bin=$build/bench/bench_vit
[ -x "$bin" ] || { echo "no $bin: build first" >&2; exit 1; }
cores=$(nproc --all)
export OMP_NUM_THREADS=$threads
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "machine: $cores cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ);" \
  "threads $threads, layers $layers, tiles $tiles"
for r in $(seq "$reps"); do
  mem=--no-memory
  [ "$r" = "$reps" ] && mem=
  "$bin" "$layers" "$tiles" "$steps" "$warmup" $mem | grep -E 'RESULT|MEMORY' | tee -a "$log"
  python3 "$here/bench_vit_torch.py" --layers "$layers" --tiles "$tiles" --steps "$steps" \
    --warmup "$warmup" --threads "$threads" 2>/dev/null | grep RESULT | tee -a "$log"
done
python3 - "$log" <<'PY'
import sys
best, cpu = {}, {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT"):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    best[kv["impl"]] = max(best.get(kv["impl"], 0.0), float(kv["tiles_per_s"]))
    cpu[kv["impl"]] = min(cpu.get(kv["impl"], 1e30), float(kv.get("cpu_ms", "nan")))
c, t = best.get("c", 0.0), best.get("torch", 0.0)
print(f"best tiles/s: c {c:.3f}, torch {t:.3f}, c / torch {c / t if t else float('nan'):.2f}")
# a step's CPU time (all threads): at THREADS=1 the work itself, fair on a loaded machine too;
# at 2 threads it also counts OpenMP's spinning
cc, tc = cpu.get("c", float("nan")), cpu.get("torch", float("nan"))
print(f"best step CPU time: c {cc:.0f} ms, torch {tc:.0f} ms, torch / c {tc / cc:.2f}")
PY
