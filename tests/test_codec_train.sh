#!/usr/bin/env bash
# ctest-labels: e2e
# Stage 3.1 through `vita train` on two cores: espeak-ng speaks 8 words, `vita prep
# --audio-features --wave-rate 24000` stores their waveforms in the shards, and the shipped
# tiny config (configs/stages/ticodec-3.1-tiny.yaml, paths pointed here) trains the tiny codec
# with both phases: every step logs the disc term and the generator's terms, each phase with
# its own learning rate. A run stopped after step 3 and resumed logs bit-identical losses and
# ends with byte-identical weights and optimizer states to an uninterrupted run. A shard
# without waveforms is refused sample by sample with the reason. Skips (77) without espeak-ng
# or the shared tokenizer.
set -euo pipefail
: "${VITA:?}" "${VT_SOURCE_DIR:?}"
TOK="${VT_SHARED_DIR:-../shared}/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "skip: no tokenizer at $TOK"; exit 77; }
command -v espeak-ng >/dev/null || { echo "skip: no espeak-ng"; exit 77; }
T="$(mktemp -d /tmp/vt_test_codec_train_XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$T/wav"
for w in yes no one two three four five six; do
  espeak-ng -s 160 -w "$T/wav/$w.wav" "$w"
  printf '{"id": "%s", "audio": "wav/%s.wav", "conversations": [{"from": "human", "value": "<audio>\\nTranscribe."}, {"from": "gpt", "value": "%s"}]}\n' \
    "$w" "$w" "$w" >>"$T/data.jsonl"
done
"$VITA" prep --audio-features --wave-rate 24000 --tokenizer "$TOK" --out "$T/shards" --quiet \
  "$T/data.jsonl" >"$T/prep.txt" || fail "prep: $(cat "$T/prep.txt")"
grep -q "8 written" "$T/prep.txt" || fail "$(cat "$T/prep.txt")"
printf 'seed: 1\nverify: true\npack: false\nmax_len: 256\ndatasets:\n  - name: speech\n    shards: shards\n    ratio: 1.0\n' >"$T/mixture.yaml"
mkdir -p "$T/tiny"
cp "$VT_SOURCE_DIR/configs/tiny/codec.json" "$T/tiny/"
mkdir -p "$T/stages"
sed -e "s|\.\./\.\./runs/ticodec-tiny/mixture.yaml|$T/mixture.yaml|" \
  -e "s|dir: \.\./\.\./runs/ticodec-tiny|dir: $T/run_a|" -e "s|steps: 200|steps: 6|" \
  -e "s|save_every: 100|save_every: 0|" -e "s|log_every: 10|log_every: 1|" \
  -e "s|eval_every: 100|eval_every: 6|" \
  "$VT_SOURCE_DIR/configs/stages/ticodec-3.1-tiny.yaml" >"$T/stages/a.yaml"
sed -e "s|run_a|run_b|" -e "s|save_every: 0|save_every: 2|" -e "s|eval_every: 6|eval_every: 0|" \
  "$T/stages/a.yaml" >"$T/stages/b.yaml"

"$VITA" train --config "$T/stages/a.yaml" >"$T/a.txt" 2>&1 || fail "train: $(tail -5 "$T/a.txt")"
cat "$T/a.txt"
m="$T/run_a/metrics.jsonl"
[ "$(grep -c '"loss":' "$m")" = 6 ] || fail "metrics: $(cat "$m")"
for k in disc adv fm mel vq consistency; do
  grep -q "\"loss_$k\": [0-9]" <(head -1 "$m") || fail "no $k term in $(head -1 "$m")"
done
# each phase with its own learning rate: disc 2e-4 (the step's lr), gen 1e-3
grep -q '"lr": 0.0002,.*"lr_gen": 0.001,' <(head -1 "$m") || fail "phase lrs: $(head -1 "$m")"
grep -q "step 6: eval .*mel_l1 [0-9.]*.*snr_db [-0-9.]*" "$T/a.txt" || fail "no eval line"
# the BatchNorm running statistics and spectral-norm vectors are buffers: saved, not trained
# (2,375 values: the BatchNorm statistics, the spectral norm's u and v vectors, the codebook's
# 1,024 code ages and its k-means flag)
grep -q "model ticodec, 588,602 parameters (586,227 trainable)" "$T/a.txt" || fail "buffers counted as trainable: $(head -1 "$T/a.txt")"

# interrupted after step 3 (checkpoint saved), resumed: the same numbers to the last bit
"$VITA" train --config "$T/stages/b.yaml" --stop-after 3 >"$T/b1.txt" 2>&1 ||
  fail "train b: $(tail -5 "$T/b1.txt")"
[ -d "$T/run_b/checkpoints/step-00000003" ] || fail "no checkpoint at the stop: $(cat "$T/b1.txt")"
"$VITA" train --config "$T/stages/b.yaml" --resume >"$T/b2.txt" 2>&1 ||
  fail "resume: $(tail -5 "$T/b2.txt")"
grep -q "resumed from" "$T/b2.txt" || fail "not resumed: $(cat "$T/b2.txt")"
strip() { sed -e 's/, "time_s": [0-9.e+-]*//' -e 's/, "step_s": [0-9.e+-]*//' \
  -e 's/, "samples_per_s": [0-9.e+-]*//' -e 's/, "tokens_per_s": [0-9.e+-]*//' "$1" |
  grep '"loss":'; }
diff <(strip "$m") <(strip "$T/run_b/metrics.jsonl") >"$T/diff.txt" ||
  fail "resumed losses differ: $(head -20 "$T/diff.txt")"
for f in model.safetensors optim.safetensors; do
  cmp "$T/run_a/checkpoints/step-00000006/$f" "$T/run_b/checkpoints/step-00000006/$f" ||
    fail "$f differs after resume"
done
echo "resume: 6 steps bit-identical, weights and both phases' optimizer states byte-identical"

# shards without waveforms: every sample is skipped with the reason, then the run gives up
"$VITA" prep --audio-features --tokenizer "$TOK" --out "$T/nowave" --quiet "$T/data.jsonl" \
  >/dev/null || fail "prep without waves"
sed "s|shards: shards|shards: nowave|" "$T/mixture.yaml" >"$T/nowave.yaml"
sed -e "s|$T/mixture.yaml|$T/nowave.yaml|g" -e "s|run_a|run_c|" "$T/stages/a.yaml" >"$T/stages/c.yaml"
if "$VITA" train --config "$T/stages/c.yaml" >"$T/c.txt" 2>&1; then fail "trained without waves"; fi
grep -q "no stored waveform (vita prep --audio-features --wave-rate RATE)" "$T/c.txt" ||
  fail "reason: $(tail -3 "$T/c.txt")"
echo "test_codec_train: ok"
