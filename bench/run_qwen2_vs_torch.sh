#!/usr/bin/env bash
# Trains the issue-5 Qwen2-shaped model with vita-train's C bench and with PyTorch on the CPU,
# one after the other (never concurrently), with the same thread count, REPS rounds that
# alternate the sides, and prints each side's best tokens/s, its peak RSS (max over its runs)
# and the ratios C / torch, plus the C step's efficiency (model FLOP/s over plain sgemm's on
# the step's GEMM shapes, measured inside each C run). When the environment pins OpenBLAS's
# kernels (OPENBLAS_CORETYPE, e.g. Haswell = AVX2 sgemm) the C side also runs with the
# variable unset ("c-auto": OpenBLAS picks the kernels for this CPU, e.g. Cooperlake =
# AVX-512); "c" is the run as configured. With BF16=1 (the default when the CPU has bf16 units)
# both sides also run in bf16 mixed precision in the same rounds: "c-bf16" (bench --bf16:
# oneDNN bf16 GEMMs, f32 masters) and "torch-bf16" (torch.autocast("cpu", dtype=bfloat16)),
# with the bf16 targets' ratios: c-bf16 / torch-bf16 (target >= 1.5), c-bf16 / c (>= 2), and peak
# RSS c-bf16 / c (<= 1).
# Usage: bench/run_qwen2_vs_torch.sh [BUILD_DIR]
#   env: THREADS (default 2), STEPS (6), WARMUP (2), REPS (2), ATTN (eager|sdpa; default
#   eager, the faster of the two here), C_ARGS (extra C bench args, e.g. --recompute),
#   BF16 (1 or 0; default 1 when /proc/cpuinfo lists avx512_bf16 or amx_bf16)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${THREADS:-2} steps=${STEPS:-6} warmup=${WARMUP:-2} reps=${REPS:-2} attn=${ATTN:-eager}
bin=$build/bench/bench_qwen2_train
if [ ! -x "$bin" ]; then
  echo "no $bin: build first (cmake --build $build)" >&2
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export OMP_NUM_THREADS=$threads
c_variants=(c)
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  c_variants+=(c-auto)
fi
bf16_default=0
grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo && bf16_default=1
bf16=${BF16:-$bf16_default}
torch_variants=("")
if [ "$bf16" = 1 ]; then
  c_variants+=(c-bf16)
  torch_variants+=(--bf16)
fi
echo "machine: $(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ); threads $threads;" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
for r in $(seq "$reps"); do
  for v in "${c_variants[@]}"; do
    if [ "$v" = c-auto ]; then
      env -u OPENBLAS_CORETYPE "$bin" "$steps" "$warmup" ${C_ARGS:-} | sed 's/impl=c /impl=c-auto /'
    elif [ "$v" = c-bf16 ]; then
      "$bin" "$steps" "$warmup" --bf16 ${C_ARGS:-}
    else
      "$bin" "$steps" "$warmup" ${C_ARGS:-}
    fi | grep RESULT | tee -a "$log"
  done
  for tv in "${torch_variants[@]}"; do
    python3 "$here/bench_qwen2_torch.py" --steps "$steps" --warmup "$warmup" --threads "$threads" \
      --attn "$attn" $tv 2>/dev/null | grep RESULT | tee -a "$log"
  done
done
python3 - "$log" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    b = best.setdefault(kv["impl"], {"tps": 0.0, "gflops": 0.0, "rss": 0.0, "eff": None,
                                     "effs": []})
    if float(kv["tokens_per_s"]) > b["tps"]:
        b["tps"], b["gflops"] = float(kv["tokens_per_s"]), float(kv["gflops"])
    b["rss"] = max(b["rss"], float(kv["peak_rss_mib"]))
    if "efficiency" in kv:  # the C bench: model FLOP/s over sgemm's on the same shapes
        b["eff"] = max(b["eff"] or 0.0, float(kv["efficiency"]))
        b["effs"].append(kv["efficiency"])  # every round's: under load they scatter widely
t = best["torch"]
for name, b in best.items():
    eff = (f"  efficiency {b['eff']:.3f} (rounds {' '.join(b['effs'])})"
           if b["eff"] is not None else "")
    print(f"{name:6s} best tokens/s {b['tps']:8.1f}  GFLOP/s {b['gflops']:7.2f}  "
          f"peak RSS {b['rss']:7.1f} MiB{eff}")
for name, b in best.items():
    if name in ("c", "c-auto"):
        print(f"SUMMARY impl={name} tokens_per_s_ratio={b['tps'] / t['tps']:.2f} "
              f"peak_rss_ratio={b['rss'] / t['rss']:.2f} efficiency={b['eff'] or 0:.3f} "
              f"(vs torch; target >= 1.5 and <= 1.0; efficiency target >= 0.85)")
if "c-bf16" in best and "torch-bf16" in best:
    b, tb, c = best["c-bf16"], best["torch-bf16"], best["c"]
    print(f"SUMMARY impl=c-bf16 tokens_per_s_ratio={b['tps'] / tb['tps']:.2f} "
          f"vs_c_fp32={b['tps'] / c['tps']:.2f} peak_rss_vs_c_fp32={b['rss'] / c['rss']:.2f} "
          f"peak_rss_ratio={b['rss'] / tb['rss']:.2f} "
          f"(vs torch-bf16 autocast >= 1.5, vs our fp32 >= 2, peak RSS vs our fp32 <= 1.0)")
PY
