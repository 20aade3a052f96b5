#!/usr/bin/env bash
# ctest-labels: e2e
# Stage 2.2's shape through `vita train` on two cores: espeak-ng speaks questions into WAV files,
# half of them answered (☞) and half marked as turns not to answer (inserted_id, ☟); `vita prep
# --audio-features` stores their fbank; a tiny VITA model with an audio encoder, adapter and the
# modality head trains on them with LM CE + the modality term: each <audio> becomes its span of
# adapter rows, both losses fall, metrics.jsonl carries the `modality` term, and the eval line
# prints the head's accuracy. Skips (77) without espeak-ng or the shared tokenizer.
set -euo pipefail
: "${VITA:?}"
TOK="${VT_SHARED_DIR:-../shared}/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "skip: no tokenizer at $TOK"; exit 77; }
command -v espeak-ng >/dev/null || { echo "skip: no espeak-ng"; exit 77; }
T="$(mktemp -d /tmp/vt_test_vita_audio_XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$T/wav"
i=0
for q in "what colour is the sky" "how many legs has a dog" "what is two plus two" \
  "hmm let me think" "okay never mind" "sorry wrong room"; do
  for s in 150 190; do
    i=$((i + 1))
    espeak-ng -s "$s" -w "$T/wav/q$i.wav" "$q"
    case "$q" in
      what*|how*) ins="" ; a=$(case "$q" in *sky) echo blue ;; *dog) echo four ;; *) echo four ;; esac) ;;
      *) ins=', "inserted_id": 0' ; a="ignored" ;;
    esac
    printf '{"id": "q%d", "audio": "wav/q%d.wav"%s, "conversations": [{"from": "human", "value": "<audio>\\n"}, {"from": "gpt", "value": "%s"}]}\n' \
      "$i" "$i" "$ins" "$a" >>"$T/data.jsonl"
  done
done
"$VITA" prep --audio-features --tokenizer "$TOK" --out "$T/shards" --quiet "$T/data.jsonl" \
  >"$T/prep.txt" || fail "prep: $(cat "$T/prep.txt")"
grep -q "12 written" "$T/prep.txt" || fail "$(cat "$T/prep.txt")"
printf 'seed: 1\nverify: true\npack: false\ndatasets:\n  - name: sqa\n    shards: shards\n    ratio: 1.0\n' >"$T/mix.yaml"
cat >"$T/config.json" <<'JSON'
{"model_type": "vita-Qwen2", "vocab_size": 151936, "hidden_size": 32, "intermediate_size": 64,
 "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
 "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 128,
 "vision_config": {"image_size": 56, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64,
                   "num_hidden_layers": 1, "num_attention_heads": 2},
 "audio_config": {"n_mels": 80, "hidden_size": 32, "num_attention_heads": 2,
                  "intermediate_size": 64, "num_hidden_layers": 1, "chunk_mode": "full",
                  "dropout": 0.0, "audio_prompt_num": 2},
 "modality_head": {"class_weights": [1.0, 5.0, 1.0]}}
JSON
cat >"$T/stage.yaml" <<'YAML'
stage: "2.2-smoke"
device: cpu
model:
  name: vita
  config: config.json
  parts:
    vision: model.vision_tower.*
    adapter: model.mm_projector.*
    audio_encoder: model.audio_encoder.encoder.enc.*
    audio_adapter: [model.audio_encoder.adpter.*, model.audio_encoder.prompt_embeddings.*]
    llm: [model.embed_tokens.*, model.layers.*, model.norm.*]
    modality_head: model.predict_head.*
data:
  mixture: mix.yaml
  eval_mixture: mix.yaml
  max_len: 256
train:
  steps: 60
  batch_size: 4
  seed: 1
  trainable: [audio_encoder, audio_adapter, llm, modality_head]
  losses:
    lm: 1.0
    modality: 1.0
  optimizer: adamw
  lr: 1.0e-2
  weight_decay: 0.0
  groups:             # the LLM slower than the new parts, as the public scripts do
    - params: llm
      lr: 1.0e-3
schedule:
  kind: constant
output:
  dir: run
  save_every: 0
  keep_last: 1
  log_every: 30
  eval_every: 60
YAML
"$VITA" train --config "$T/stage.yaml" >"$T/out.txt" 2>&1 || fail "train: $(tail -5 "$T/out.txt")"
cat "$T/out.txt"
grep -q "skipping" "$T/out.txt" && fail "a sample was skipped"
grep -q "step 60: eval loss [0-9.]*, .*modality_acc [0-9.]* over 12 samples" "$T/out.txt" ||
  fail "no eval line with modality_acc"
head -2 "$T/run/metrics.jsonl"
for term in lm modality; do
  sed -n "s/^{\"step\": [0-9]*,.*\"loss_$term\": \([0-9.e+-]*\).*/\1/p" "$T/run/metrics.jsonl" >"$T/$term.txt"
  [ "$(wc -l <"$T/$term.txt")" = 60 ] || fail "metrics: $(wc -l <"$T/$term.txt") $term lines"
  awk -v t="$term" 'NR <= 3 { f += $1 } NR > 57 { l += $1 }
     END { printf "%s loss %.3f -> %.3f\n", t, f / 3, l / 3; exit !(l < 0.85 * f) }' "$T/$term.txt" ||
    fail "the $term loss did not fall"
done
acc=$(sed -n 's/.*modality_acc \([0-9.]*\).*/\1/p' "$T/out.txt" | tail -1)
awk -v a="$acc" 'BEGIN { exit !(a > 0.5) }' || fail "modality_acc $acc is not above chance (0.5)"
echo "modality_acc $acc (chance 0.5: half the clips are turns not to answer)"
echo "1 passed, 0 failed"
