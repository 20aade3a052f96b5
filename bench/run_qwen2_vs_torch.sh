#!/usr/bin/env bash
# Trains the issue-5 Qwen2-shaped model with vita-train's C bench and with PyTorch on the CPU,
# one after the other (never concurrently), with the same thread count, REPS times each, and
# prints each side's best tokens/s, its peak RSS (max over its runs) and the ratios C / torch.
# Usage: bench/run_qwen2_vs_torch.sh [BUILD_DIR]
#   env: THREADS (default 2), STEPS (8), WARMUP (2), REPS (2), ATTN (eager|sdpa, default eager:
#   the faster of the two here), C_ARGS (extra bench args, e.g. --recompute)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${THREADS:-2} steps=${STEPS:-8} warmup=${WARMUP:-2} reps=${REPS:-2} attn=${ATTN:-eager}
bin=$build/bench/bench_qwen2_train
if [ ! -x "$bin" ]; then
  echo "no $bin: build first (cmake --build $build)" >&2
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
for r in $(seq "$reps"); do
  OMP_NUM_THREADS=$threads "$bin" "$steps" "$warmup" ${C_ARGS:-} | tee -a "$log" | grep RESULT
  python3 "$here/bench_qwen2_torch.py" --steps "$steps" --warmup "$warmup" --threads "$threads" \
    --attn "$attn" 2>/dev/null | tee -a "$log" | grep RESULT
done
python3 - "$log" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT"):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    impl, tps, rss = kv["impl"], float(kv["tokens_per_s"]), float(kv["peak_rss_mib"])
    b = best.setdefault(impl, {"tps": 0.0, "gflops": 0.0, "rss": 0.0})
    if tps > b["tps"]:
        b["tps"], b["gflops"] = tps, float(kv["gflops"])
    b["rss"] = max(b["rss"], rss)
c, t = best["c"], best["torch"]
for name, b in (("c", c), ("torch", t)):
    print(f"{name:6s} best tokens/s {b['tps']:8.1f}  GFLOP/s {b['gflops']:6.2f}  "
          f"peak RSS {b['rss']:7.1f} MiB")
print(f"SUMMARY tokens_per_s_ratio={c['tps'] / t['tps']:.2f} "
      f"peak_rss_ratio={c['rss'] / t['rss']:.2f} (C / torch; target >= 1.5 and <= 1.0)")
PY
