#!/usr/bin/env bash
# ctest-labels: e2e
# Stage 2.1a with character targets, CI-sized: espeak-ng speaks sentences of 2-4 words
# (tests/gen_espeak_asr.sh), `vita prep --ctc-chars` derives the character vocabulary from the
# training transcripts (blank 0) and reuses it for the held-out set, and a small audio_ctc model
# trains on them, with the global CMVN stats of the training clips (`vita cmvn`) inline in its
# config. The held-out CER (edit distance / reference characters; predicting nothing
# scores 1.0, and an untrained CTC model predicts only blanks) must fall below 0.8. The full run
# (docs/audio.md: held-out CER 0.26 after 240 steps) is this with VT_AUDIO_CER_FULL=1.
# Skips (77) without espeak-ng or the shared tokenizer.
set -euo pipefail
: "${VITA:?}"
TOK="${VT_SHARED_DIR:-../shared}/data/qwen-tokenizer"
SRC="${VT_SOURCE_DIR:-.}"
[ -f "$TOK/tokenizer.json" ] || { echo "skip: no tokenizer at $TOK"; exit 77; }
command -v espeak-ng >/dev/null || { echo "skip: no espeak-ng"; exit 77; }
T="$(mktemp -d /tmp/vt_test_audio_cer_XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ -n "${VT_AUDIO_CER_FULL:-}" ]; then
  ntrain=400 neval=40 steps=240 every=80 want=0.5
else
  ntrain=200 neval=24 steps=200 every=200 want=0.8
fi
"$SRC/tests/gen_espeak_asr.sh" "$T" "$ntrain" "$neval" 1
for split in train eval; do
  "$VITA" prep --audio-features --tokenizer "$TOK" --ctc-chars "$T/chars.json" --out "$T/$split" \
    --quiet "$T/$split.jsonl" >"$T/prep-$split.txt" || fail "prep: $(cat "$T/prep-$split.txt")"
done
cat "$T/prep-train.txt"
grep -q "derived from the transcripts" "$T/prep-train.txt" && grep -q "chars.json read" "$T/prep-eval.txt" ||
  fail "the vocabulary was not derived once and reused"
vocab=$(sed -n 's/.*(ctc_vocab \([0-9]*\), space id \([0-9]*\)).*/\1/p' "$T/prep-train.txt")
space=$(sed -n 's/.*(ctc_vocab \([0-9]*\), space id \([0-9]*\)).*/\2/p' "$T/prep-train.txt")
[ "$vocab" -gt 10 ] && [ "$vocab" -lt 40 ] || fail "ctc_vocab '$vocab'"
"$VITA" cmvn "$T/train.jsonl" --out "$T/cmvn.json" >/dev/null || fail "vita cmvn"
for split in train eval; do
  printf 'seed: 1\nverify: true\npack: false\ndatasets:\n  - name: asr\n    shards: %s\n    ratio: 1.0\n' "$split" >"$T/$split.yaml"
done
cat >"$T/enc.json" <<JSON
{"model_type": "vita_audio_encoder", "n_mels": 80, "hidden_size": 64, "num_attention_heads": 4,
 "intermediate_size": 128, "num_hidden_layers": 2, "ctc_vocab": $vocab, "word_sep_id": $space,
 "chunk_mode": "full", "dropout": 0.0, "global_cmvn": $(cat "$T/cmvn.json")}
JSON
cat >"$T/stage.yaml" <<YAML
stage: "2.1a-chars"
device: cpu
model:
  name: audio_ctc
  config: enc.json
data:
  mixture: train.yaml
  eval_mixture: eval.yaml
  max_len: 256
train:
  steps: $steps
  batch_size: 16
  seed: 1
  optimizer: adamw
  lr: 5.0e-3
  weight_decay: 0.0
  max_grad_norm: 5.0
schedule:
  kind: constant
output:
  dir: run
  save_every: 0
  keep_last: 1
  log_every: $every
  eval_every: $every
YAML
# one thread: two cores shared by many jobs make threads spin more than they compute
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$VITA" train --config "$T/stage.yaml" >"$T/out.txt" 2>&1 ||
  fail "train: $(tail -5 "$T/out.txt")"
grep -E "eval|done" "$T/out.txt"
cer=$(sed -n "s/^step $steps: eval loss [0-9.]*, cer \([0-9.]*\), wer .* over $neval samples/\1/p" "$T/out.txt")
[ -n "$cer" ] || fail "no eval line with the CER over $neval held-out samples"
awk -v c="$cer" -v w="$want" 'BEGIN { exit !(c < w) }' ||
  fail "held-out CER $cer is not below $want (predicting nothing: 1.0)"
echo "held-out CER $cer < $want (predicting nothing: 1.0)"
echo "1 passed, 0 failed"
