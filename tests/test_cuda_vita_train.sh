# ctest-labels: e2e cuda
# `vita train` with `device: cuda`: the same stage (a tiny Qwen2 on generated shards, 12 AdamW
# steps with clipping and a cosine schedule) on the CPU and on cuda:0 logs the same loss at
# every step within 1e-2 relative, and in bf16 mixed precision (train.precision: bf16) within
# 5e-2; the GPU run's checkpoint exists. Skips (77) when no GPU is usable.
set -u
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fail=$((fail+1)); }

"$VITA" gen-data --out "$T/data" --samples 64 --vocab 96 --min-len 16 --max-len 40 >/dev/null || bad gen-data
stage() { # stage NAME DEVICE PRECISION
  cat > "$T/$1.yaml" <<YAML
device: $2
model:
  config: $VT_FIXTURES/qwen2_tiny/config.json
data:
  mixture: data/mixture.yaml
  max_len: 40
train:
  steps: 12
  batch_size: 2
  seed: 5
  lr: 1.0e-2
  max_grad_norm: 1.0
  precision: $3
schedule:
  kind: cosine
  warmup_ratio: 0.1
output:
  dir: $1
  save_every: 12
  log_every: 100
YAML
}
stage cpu cpu fp32
stage gpu cuda fp32
stage gpubf16 cuda bf16

"$VITA" train --config "$T/gpu.yaml" > "$T/gpu.txt" 2>&1
rc=$?
if grep -q "is not usable" "$T/gpu.txt"; then
  echo "no GPU: $(grep 'is not usable' "$T/gpu.txt")"
  exit 77
fi
[ $rc = 0 ] && ok "train on cuda" || bad "train on cuda: exit $rc: $(tail -3 "$T/gpu.txt")"
"$VITA" train --config "$T/cpu.yaml" > "$T/cpu.txt" 2>&1 || bad "train on cpu: $(tail -3 "$T/cpu.txt")"
[ -d "$T/gpu/checkpoints/step-00000012" ] && ok "gpu checkpoint" || bad "no checkpoint of the GPU run"

losses() { sed -n 's/.*"loss": \([^,]*\),.*/\1/p' "$T/$1/metrics.jsonl"; }
compare() { # compare RUN TOL
  local n
  n=$(paste <(losses cpu) <(losses "$1") | awk -v tol="$2" '
    { d = $1 - $2; if (d < 0) d = -d; s = $1 < 0 ? -$1 : $1; if (s < 1e-3) s = 1e-3;
      if (d / s > tol) { printf "step %d: cpu %s %s\n", NR, $1, $2 > "/dev/stderr"; bad++ } }
    END { print (NR == 12 ? bad + 0 : 99) }')
  [ "$n" = 0 ] && ok "$1 losses match the CPU's (tol $2)" || bad "$1: $n steps differ from the CPU's"
}
compare gpu 1e-2
"$VITA" train --config "$T/gpubf16.yaml" > "$T/gpubf16.txt" 2>&1 ||
  bad "train in bf16 on cuda: $(tail -3 "$T/gpubf16.txt")"
compare gpubf16 5e-2
[ $fail = 0 ] && echo "test_cuda_vita_train: all passed" || echo "test_cuda_vita_train: $fail failed"
[ $fail = 0 ]
