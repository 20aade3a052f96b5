#!/usr/bin/env bash
# ctest-labels: e2e
# Stage 3.2 end to end on two cores: `vita gen-data --kind tts` writes (text, codec) pairs with
# a learnable rule and a random LLM embedding table; `vita train --config 3.2-tiny.yaml` (the
# shipped tiny config, its paths pointed at this run) loads the table, prints a falling loss,
# and its held-out token accuracy beats the best constant guess (unigram_acc), both printed at
# each eval; `vita eval` on the checkpoint agrees with the last eval line; texts longer than
# data.max_len are skipped, not cut.
set -euo pipefail
: "${VITA:?}" "${VT_SOURCE_DIR:?}"
T="$(mktemp -d /tmp/vt_test_tts_train_XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$VITA" gen-data --kind tts --out "$T/data" --samples 1024 --eval-samples 96 >/dev/null ||
  fail "gen-data"
[ -s "$T/data/llm/model.safetensors" ] || fail "no LLM table"
cp "$VT_SOURCE_DIR/configs/stages/tts-tiny.json" "$T/"
sed -e "s|\.\./\.\./runs/tts-tiny/data|$T/data|g" -e "s|dir: \.\./\.\./runs/tts-tiny|dir: $T/run|" \
  -e "s|steps: 300|steps: 160|" -e "s|eval_every: 100|eval_every: 80|" \
  "$VT_SOURCE_DIR/configs/stages/3.2-tiny.yaml" >"$T/3.2.yaml"
"$VITA" train --config "$T/3.2.yaml" >"$T/out.txt" 2>&1 || fail "train: $(tail -5 "$T/out.txt")"
cat "$T/out.txt"
grep -q "init: 1 parameter tensors (model.embed_tokens.weight)" "$T/out.txt" || fail "LLM table not loaded"

# the loss falls: the mean of the last 20 steps is far below the first step's (ln 1028 = 6.9)
sed -n 's/^{"step": [0-9]*, "loss": \([0-9.e+-]*\),.*/\1/p' "$T/run/metrics.jsonl" >"$T/loss.txt"
[ "$(wc -l <"$T/loss.txt")" = 160 ] || fail "metrics: $(wc -l <"$T/loss.txt") loss lines"
awk 'NR == 1 { f = $1 } NR > 140 { s += $1; n++ }
     END { printf "loss %.3f -> %.3f\n", f, s / n; exit !(f > 6.5 && s / n < 0.5 * f) }' \
  "$T/loss.txt" || fail "loss did not fall"

# each eval line prints the loss, token_acc and unigram_acc; accuracy beats the baseline
line=$(grep "step 160: eval" "$T/out.txt") || fail "no eval at step 160"
acc=$(sed -n 's/.*token_acc \([0-9.]*\).*/\1/p' <<<"$line")
uni=$(sed -n 's/.*unigram_acc \([0-9.]*\).*/\1/p' <<<"$line")
first=$(grep "step 80: eval" "$T/out.txt" | sed -n 's/.*eval loss \([0-9.]*\).*/\1/p')
last=$(sed -n 's/.*eval loss \([0-9.]*\).*/\1/p' <<<"$line")
echo "held-out: token_acc $acc, unigram baseline $uni; eval loss $first -> $last"
awk -v a="$acc" -v u="$uni" 'BEGIN { exit !(a > 2 * u && a > 0.5) }' || fail "token_acc $acc vs unigram $uni"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "eval loss did not fall"

# vita eval on the checkpoint reads the same model and gives the same held-out numbers
ck="$T/run/checkpoints/step-00000160"
[ -d "$ck" ] || fail "no final checkpoint"
"$VITA" eval --config "$T/3.2.yaml" --weights "$ck" >"$T/eval.txt" 2>&1 || fail "eval: $(cat "$T/eval.txt")"
cat "$T/eval.txt"
acc2=$(sed -n 's/.*token_acc \([0-9.]*\) over.*/\1/p' "$T/eval.txt")
awk -v a="$acc" -v b="$acc2" 'BEGIN { d = a - b; exit !(d < 1e-4 && d > -1e-4) }' ||
  fail "vita eval's token_acc $acc2 differs from the run's $acc"
# texts longer than data.max_len are skipped (cut, they would no longer match their speech)
sed -e "s|max_len: 32|max_len: 3|" -e "s|steps: 160|steps: 3|" -e "s|eval_every: 80|eval_every: 0|" \
  -e "s|dir: $T/run|dir: $T/run-short|" "$T/3.2.yaml" >"$T/short.yaml"
"$VITA" train --config "$T/short.yaml" >"$T/short.txt" 2>&1 || fail "short run: $(cat "$T/short.txt")"
grep -q "skipping .*its text is longer than data.max_len" "$T/short.txt" ||
  fail "long texts not skipped: $(cat "$T/short.txt")"
echo "test_tts_train: ok"
