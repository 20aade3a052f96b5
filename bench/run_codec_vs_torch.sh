#!/usr/bin/env bash
# The codec of stage 3.1 on the CPU: vita-train's bench/bench_codec and PyTorch's
# bench/bench_codec_torch.py on the same model.json, one after the other (never concurrently)
# with the same threads, REPS rounds alternating the sides. Prints each side's best training
# step (both phases) and inference real-time factor, wall and process CPU time, and the
# ratios torch / C (> 1: C is faster; the issue's target is >= 1.2 for both).
# Usage: bench/run_codec_vs_torch.sh [BUILD_DIR]
#   env: THREADS (1), CONFIG (configs/tiny/codec.json), BATCH (2), STEPS (2), WARMUP (1),
#        REPS (2)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${THREADS:-1} cfg=${CONFIG:-$here/../configs/tiny/codec.json} batch=${BATCH:-2}
steps=${STEPS:-2} warmup=${WARMUP:-1} reps=${REPS:-2}
bin=$build/bench/bench_codec
[ -x "$bin" ] || { echo "no $bin: build first" >&2; exit 1; }
seg=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('segment_size', 24000))" "$cfg")
export OMP_NUM_THREADS=$threads
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "machine: $(nproc --all) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ);" \
  "threads $threads, $cfg, batch $batch x $seg samples"
for r in $(seq "$reps"); do
  "$bin" "$cfg" "$batch" "$seg" "$steps" "$warmup" | grep RESULT | tee -a "$log"
  python3 "$here/bench_codec_torch.py" "$cfg" "$batch" "$steps" "$warmup" 2>/dev/null |
    grep RESULT | tee -a "$log"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$log" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT"):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    b = best.setdefault(kv["impl"], {})
    for k in ("step_ms", "rtf", "cpu_step_ms", "cpu_rtf"):
        b[k] = min(b.get(k, float("inf")), float(kv[k]))
c, t = best.get("c"), best.get("torch")
if not c or not t:
    sys.exit("missing a side's RESULT line")
for k, what in (("step_ms", "training step ms"), ("rtf", "inference RTF")):
    print(f"{what}: c {c[k]:.4g} (cpu {c['cpu_' + k]:.4g}), torch {t[k]:.4g} "
          f"(cpu {t['cpu_' + k]:.4g}); torch / c {t[k] / c[k]:.2f} wall, "
          f"{t['cpu_' + k] / c['cpu_' + k]:.2f} cpu")
PY
