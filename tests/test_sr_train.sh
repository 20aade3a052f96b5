# ctest-labels: e2e
# train.stochastic_rounding in a real run (vita demo's stage, bf16 mixed precision, 20 steps):
# - on, the losses differ from the round-to-nearest run (the copies really change) but stay
#   within 0.05 + 2% of it at every step, and the loss falls;
# - a run stopped at step 8 and resumed logs the same losses, to every printed digit, as the
#   uninterrupted one (the rounding is keyed by seed, step and index, so resume is exact);
# - with precision fp32 the key is refused, naming both keys.
# Skips (77) when the CPU has no bf16 GEMM units.
set -u
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fail=$((fail+1)); }

if ! "$VITA" demo --out "$T/rne" --steps 20 --log-every 10 --precision bf16 >"$T/rne.log" 2>&1; then
  if grep -q "needs bf16 GEMM units" "$T/rne.log"; then
    echo "skipped: $(grep -o 'needs bf16 GEMM units.*' "$T/rne.log")"
    exit 77
  fi
  cat "$T/rne.log"; bad "bf16 demo"; exit 1
fi
mk() { # mk DIR: the demo's stage with stochastic rounding, its own output
  mkdir -p "$T/$1"
  sed -e 's/^  precision: bf16$/  precision: bf16\n  stochastic_rounding: true/' \
      -e "s#$T/rne#$T/$1#g" "$T/rne/stage.yaml" >"$T/$1/stage.yaml"
  cp "$T/rne/config.json" "$T/$1/"
  ln -s "$T/rne/data" "$T/$1/data"
}
mk sr
grep -q "stochastic_rounding: true" "$T/sr/stage.yaml" || bad "stage edit"
"$VITA" train --config "$T/sr/stage.yaml" >"$T/sr.log" 2>&1 || { cat "$T/sr.log"; bad "sr run"; }
python3 - "$T/rne/metrics.jsonl" "$T/sr/metrics.jsonl" <<'PY' && ok "sr losses near rne, not equal" || bad "sr losses"
import json, sys
a = [json.loads(l)["loss"] for l in open(sys.argv[1])]
b = [json.loads(l)["loss"] for l in open(sys.argv[2])]
assert len(a) == len(b) == 20, (len(a), len(b))
print(f"max |sr - rne| = {max(abs(x - y) for x, y in zip(a, b)):.2e}; last rne {a[-1]:.4f}, sr {b[-1]:.4f}")
assert a != b, "stochastic rounding changed nothing"
assert all(abs(x - y) <= 0.05 + 0.02 * abs(x) for x, y in zip(a, b)), "a step is too far off"
assert b[-1] < b[0] - 1.0, "the loss did not fall"
PY
mk r
"$VITA" train --config "$T/r/stage.yaml" --stop-after 8 >"$T/r1.log" 2>&1 || { cat "$T/r1.log"; bad "stopped run"; }
"$VITA" train --config "$T/r/stage.yaml" --resume >"$T/r2.log" 2>&1 || { cat "$T/r2.log"; bad "resume"; }
python3 - "$T/sr/metrics.jsonl" "$T/r/metrics.jsonl" <<'PY' && ok "resumed sr run is exact" || bad "resume not exact"
import json, sys
want = {json.loads(l)["step"]: json.loads(l)["loss"] for l in open(sys.argv[1])}
got = {json.loads(l)["step"]: json.loads(l)["loss"] for l in open(sys.argv[2])}
assert sorted(got) == sorted(want), (sorted(got), sorted(want))
diff = [s for s in want if want[s] != got[s]]
assert not diff, f"steps {diff} differ"
PY
mk f
sed -i 's/^  precision: bf16$/  precision: fp32/' "$T/f/stage.yaml"
if "$VITA" train --config "$T/f/stage.yaml" >"$T/f.log" 2>&1; then
  bad "fp32 with stochastic rounding accepted"
else
  grep -q "stochastic_rounding needs train.precision: bf16" "$T/f.log" && ok "fp32 refused" \
    || { cat "$T/f.log"; bad "fp32 message"; }
fi
exit $fail
