# ctest-labels: e2e
# vita train from the command line: SIGINT and SIGTERM finish the step, save and exit with
# 130/143; --resume completes the run with one metrics line per step; then eval, plot and
# export work on the result, and a config with an unknown key is refused (exit 1).
set -u
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fail=$((fail+1)); }

"$VITA" gen-data --out "$T/data" --samples 128 --vocab 96 --min-len 16 --max-len 40 >/dev/null || bad gen-data
cat > "$T/train.yaml" <<YAML
model:
  config: $VT_FIXTURES/qwen2_tiny/config.json
data:
  mixture: data/mixture.yaml
  max_len: 40
train:
  steps: 3000
  batch_size: 2
  seed: 5
  lr: 1.0e-2
output:
  dir: run
  save_every: 1000
  log_every: 100
YAML

# run until a few steps are logged, then interrupt
interrupt() { # interrupt SIGNAL EXPECTED_RC
  "$VITA" train --config "$T/train.yaml" ${3:-} > "$T/out.txt" 2>&1 &
  local pid=$! i=0
  while [ "$(wc -l < "$T/run/metrics.jsonl" 2>/dev/null || echo 0)" -lt "$4" ] && [ $i -lt 600 ]; do
    sleep 0.1; i=$((i+1))
  done
  kill -"$1" $pid
  wait $pid; local rc=$?
  if [ $rc = "$2" ] && grep -q 'stopped at step' "$T/out.txt"; then ok "$1 exit $rc"; else bad "$1: exit $rc: $(cat "$T/out.txt")"; fi
}
interrupt INT 130 "" 3
step=$(sed -n 's/.*stopped at step \([0-9]*\).*/\1/p' "$T/out.txt")
[ -d "$T/run/checkpoints/$(printf 'step-%08d' "$step")" ] && ok "checkpoint of step $step" || bad "no checkpoint for step $step"
[ "$(wc -l < "$T/run/metrics.jsonl")" = "$step" ] && ok "metrics up to step $step" || bad "metrics lines $(wc -l < "$T/run/metrics.jsonl") != $step"
interrupt TERM 143 --resume $((step + 2))
"$VITA" train --config "$T/train.yaml" --resume > "$T/out.txt" 2>&1 && grep -q 'resumed from' "$T/out.txt" && ok resume || bad "resume: $(cat "$T/out.txt")"
[ "$(wc -l < "$T/run/metrics.jsonl")" = 3000 ] && ok "3000 metrics lines" || bad "metrics lines: $(wc -l < "$T/run/metrics.jsonl")"
seq 1 3000 | cmp -s - <(sed 's/{"step": \([0-9]*\),.*/\1/' "$T/run/metrics.jsonl") && ok "steps 1..3000 once each" || bad "steps in metrics"

out=$("$VITA" eval --config "$T/train.yaml" --weights "$T/run/checkpoints/step-00003000" 2>&1)
grep -qE 'eval: loss [0-9.]+ over [0-9]+, token_acc 0\.[0-9]+ over [0-9]+ \(128 samples' <<<"$out" && ok eval || bad "eval: $out"
"$VITA" plot "$T/run" >/dev/null 2>&1 && [ -s "$T/run/loss.png" ] && ok plot || bad plot
"$VITA" export --from "$T/run" --out "$T/export" >/dev/null 2>&1 && [ -s "$T/export/config.json" ] && ok export || bad export

printf 'model:\n  config: x\n  recompte: true\n' > "$T/bad.yaml"
out=$("$VITA" train --config "$T/bad.yaml" 2>&1); rc=$?
[ $rc = 1 ] && grep -q 'recompte' <<<"$out" && grep -q 'bad.yaml' <<<"$out" && ok "unknown key" || bad "unknown key ($rc): $out"

echo "$((11 - fail)) passed, $fail failed"
[ $fail = 0 ]
