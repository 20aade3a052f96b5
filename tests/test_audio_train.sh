#!/usr/bin/env bash
# ctest-labels: e2e
# Stage 2.1a through `vita train`, end to end on two cores: espeak-ng speaks 12 words into WAV
# files, `vita prep --audio-features` stores their fbank in the shards with the words as
# "transcribe" answers, and the audio_ctc model (a 1-layer encoder with a CTC head over the
# Qwen ids) trains on them: the CTC loss falls and the eval line prints the CER.
# Skips (77) without espeak-ng or the shared tokenizer.
set -euo pipefail
: "${VITA:?}"
TOK="${VT_SHARED_DIR:-../shared}/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "skip: no tokenizer at $TOK"; exit 77; }
command -v espeak-ng >/dev/null || { echo "skip: no espeak-ng"; exit 77; }
T="$(mktemp -d /tmp/vt_test_audio_train_XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$T/wav"
for w in yes no one two three four; do
  for s in 140 180; do
    espeak-ng -s "$s" -w "$T/wav/$w$s.wav" "$w"
    printf '{"id": "%s", "audio": "wav/%s.wav", "conversations": [{"from": "human", "value": "<audio>\\nTranscribe."}, {"from": "gpt", "value": "%s"}]}\n' \
      "$w$s" "$w$s" "$w" >>"$T/data.jsonl"
  done
done
"$VITA" prep --audio-features --tokenizer "$TOK" --out "$T/shards" --quiet "$T/data.jsonl" \
  >"$T/prep.txt" || fail "prep: $(cat "$T/prep.txt")"
grep -q "12 written" "$T/prep.txt" && grep -q "12 audio clips" "$T/prep.txt" || fail "$(cat "$T/prep.txt")"
printf 'seed: 1\nverify: true\npack: false\nmax_len: 256\ndatasets:\n  - name: asr\n    shards: shards\n    ratio: 1.0\n' >"$T/mix.yaml"
cat >"$T/enc.json" <<'JSON'
{"model_type": "vita_audio_encoder", "n_mels": 80, "hidden_size": 32, "num_attention_heads": 2,
 "intermediate_size": 64, "num_hidden_layers": 1, "ctc_vocab": 152064, "chunk_mode": "full",
 "dropout": 0.0}
JSON
cat >"$T/stage.yaml" <<'YAML'
stage: "2.1a-smoke"
device: cpu
model:
  name: audio_ctc
  config: enc.json
data:
  mixture: mix.yaml
  eval_mixture: mix.yaml
  max_len: 256
train:
  steps: 20
  batch_size: 4
  seed: 1
  optimizer: adamw
  lr: 3.0e-3
  weight_decay: 0.0
schedule:
  kind: constant
output:
  dir: run
  save_every: 0
  keep_last: 1
  log_every: 10
  eval_every: 20
YAML
"$VITA" train --config "$T/stage.yaml" >"$T/out.txt" 2>&1 || fail "train: $(tail -5 "$T/out.txt")"
cat "$T/out.txt"
grep -q "step 20: eval loss [0-9.]*, cer [0-9.]* over 12 samples" "$T/out.txt" || fail "no eval cer line"
sed -n 's/^{"step": [0-9]*, "loss": \([0-9.e+-]*\),.*/\1/p' "$T/run/metrics.jsonl" >"$T/loss.txt"
[ "$(wc -l <"$T/loss.txt")" = 20 ] || fail "metrics: $(wc -l <"$T/loss.txt") loss lines"
awk 'NR <= 3 { f += $1 } NR > 17 { l += $1 }
     END { printf "ctc loss %.2f -> %.2f\n", f / 3, l / 3; exit !(l < 0.6 * f) }' "$T/loss.txt" ||
  fail "the CTC loss did not fall"
echo "1 passed, 0 failed"
