#!/usr/bin/env bash
# ctest-labels: e2e
# Fine-tune in three commands, as the README shows them, on the tiny model: starting from a
# VITA-1.5 release-layout directory (here a tiny seeded vita model exported with `vita export
# --all`, standing for the downloaded release), a folder of the user's own images with a
# LLaVA/VITA JSON file goes through
#   1. vita prep    (JSON + images -> shards, tokenized with the release's tokenizer files)
#   2. vita train   (a stage config whose model and init are the release directory; the LLM
#                    and the adapters train, the towers stay frozen)
#   3. vita export  (back to the release layout)
# and the result is checked: the loss falls, the layout and config are the release's, every
# frozen tensor (vision tower, audio encoder) is byte-identical to the starting release and
# every LLM tensor changed, and the new release imports back. Skips (77) without the shared
# Qwen tokenizer.
set -u
: "${VITA:?}" "${VT_FIXTURES:?}"
TOK="$VT_SHARED_DIR/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "no shared tokenizer at $TOK: skipped"; exit 77; }
T=$(mktemp -d /tmp/vt_test_finetune_XXXXXX); trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fail=$((fail+1)); }
cd "$T"

# the user's folder: images and a LLaVA-style JSON list
mkdir my_data
cp "$VT_FIXTURES/image/photo_a.png" my_data/officer.png
cp "$VT_FIXTURES/image/photo_b.png" my_data/board.png
cp "$VT_FIXTURES/image/resize_0.png" my_data/pattern.png
{
  echo "["
  for i in $(seq 0 11); do
    case $((i % 3)) in
      0) img=officer.png; q="<image>\\nWho is in the picture?"; a="A woman in uniform." ;;
      1) img=board.png; q="What is this? <image>"; a="A circuit board." ;;
      2) img=pattern.png; q="<image>\\nDescribe the image."; a="A test pattern." ;;
    esac
    printf '  {"id": "s%d", "image": "%s", "conversations": [{"from": "human", "value": "%s"}, {"from": "gpt", "value": "%s"}]}%s\n' \
      "$i" "$img" "$q" "$a" "$([ $i = 11 ] || echo ,)"
  done
  echo "]"
} > my_data/train.json

# the starting release (stands for the downloaded VITA-1.5): a tiny vita model, exported
cat > tiny.json <<'J'
{"model_type": "vita-Qwen2", "vocab_size": 151936, "hidden_size": 32, "intermediate_size": 64,
 "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
 "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 128,
 "vision_config": {"image_size": 56, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64,
                   "num_hidden_layers": 2, "num_attention_heads": 2},
 "audio_config": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32,
                  "num_hidden_layers": 1, "chunk_mode": "full"}}
J
printf 'tokenizer: %s\nmax_len: 512\nsets: {x: {folder: my_data}}\nmedia: {tile_size: 56, max_tiles: 2}\n' "$TOK" > p0.yaml
"$VITA" prep --config p0.yaml --out s0 --quiet my_data/train.json > p0.txt 2>&1 || bad "prep 0: $(cat p0.txt)"
printf 'seed: 1\npack: false\ndatasets:\n  - {name: x, shards: s0}\n' > m0.yaml
printf 'model: {config: tiny.json}\ndata: {mixture: m0.yaml, max_len: 512}\ntrain: {steps: 1, batch_size: 2, lr: 0.0}\noutput: {dir: r0, log_every: 0}\n' > t0.yaml
"$VITA" train --config t0.yaml > t0.txt 2>&1 &&
  "$VITA" export --from r0 --out vita-1.5 --all --tokenizer "$TOK" > e0.txt 2>&1 ||
  bad "starting release: $(cat t0.txt e0.txt 2>/dev/null | tail -5)"

start=$(date +%s)
# 1. prep: the user's JSON + images -> shards, with the release's own tokenizer
cat > my_data/prep.yaml <<'Y'
tokenizer: ../vita-1.5        # the release directory holds tokenizer.json
max_len: 512
sets: {mine: {folder: .}}     # image paths are relative to this folder
media: {tile_size: 56, max_tiles: 2}   # the tiny tower's 56 px (448 for VITA-1.5)
Y
"$VITA" prep --config my_data/prep.yaml --out shards my_data/train.json > prep.txt 2>&1 &&
  grep -q "12 written" prep.txt && ok "1. prep: 12 samples" || bad "prep: $(cat prep.txt)"

# 2. train: the model and its initial weights are the release directory
cat > finetune.yaml <<'Y'
stage: finetune
model:
  config: vita-1.5                 # the release's config.json
  parts:
    vision: model.vision_tower.*
    audio_encoder: model.audio_encoder.encoder.*
    adapters: [model.mm_projector.*, model.audio_encoder.adpter.*]
    llm: [model.embed_tokens.*, model.layers.*, model.norm.*, lm_head.*]
init:
  - {from: vita-1.5, params: "*"}  # bf16 shards, read into f32 master weights
data:
  mixture: mine.yaml
  max_len: 512
train:
  steps: 10
  batch_size: 4
  seed: 1
  trainable: [llm, adapters]       # the towers stay frozen
  lr: 5.0e-3
  weight_decay: 0.0
output: {dir: runs/mine, log_every: 0}
Y
printf 'seed: 1\npack: false\ndatasets:\n  - {name: mine, shards: shards}\n' > mine.yaml
"$VITA" train --config finetune.yaml > train.txt 2>&1 || bad "train: $(tail -5 train.txt)"
loss_at() { sed -n "s/.*\"step\": $1, \"loss\": \([0-9.]*\),.*/\1/p" runs/mine/metrics.jsonl; }
first=$(loss_at 1) last=$(loss_at 10)
if [ -n "$first" ] && [ -n "$last" ] && grep -q "init:" train.txt &&
   awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < f - 1) }'; then
  ok "2. train from the release: loss $first -> $last"
else
  bad "train: loss '$first' -> '$last': $(tail -5 train.txt)"
fi

# 3. export back to the release layout
"$VITA" export --from runs/mine --out my-vita --tokenizer vita-1.5 > export.txt 2>&1; rc=$?
if [ $rc = 0 ] && [ -s my-vita/model.safetensors ] && [ -s my-vita/tokenizer.json ] &&
   [ -s my-vita/InternViT-300M-448px/config.json ] && [ -s my-vita/audio-encoder/train.yaml ] &&
   grep -q '"model_type": "vita-Qwen2"' my-vita/config.json &&
   grep -q '"architectures": \[\s*"VITAQwen2ForCausalLM"' <(tr -d '\n' < my-vita/config.json); then
  ok "3. export: release layout"
else
  bad "export ($rc): $(cat export.txt)"
fi
echo "three commands: $(( $(date +%s) - start )) s"

# frozen tensors byte-identical to the starting release, every LLM tensor changed
hdr_len() { od -An -t u8 -N 8 "$1" | tr -d ' '; }
ranges() {
  local len; len=$(hdr_len "$1")
  head -c $((8 + len)) "$1" | tail -c "$len" |
    grep -o '"[^"]*":{"dtype":"[A-Z0-9]*","shape":\[[0-9,]*\],"data_offsets":\[[0-9]*,[0-9]*\]' |
    sed 's/^"\([^"]*\)".*"data_offsets":\[\([0-9]*\),\([0-9]*\)\]/\1 \2 \3/'
}
a=vita-1.5/model.safetensors b=my-vita/model.safetensors
same=0 changed=0 wrong=0
if [ -f "$a" ] && [ -f "$b" ] && [ "$(ranges "$a")" = "$(ranges "$b")" ]; then
  ha=$(hdr_len "$a")
  while read -r name lo hi; do
    x=$(tail -c +$((9 + ha + lo)) "$a" | head -c $((hi - lo)) | md5sum)
    y=$(tail -c +$((9 + ha + lo)) "$b" | head -c $((hi - lo)) | md5sum)
    case $name in
      model.vision_tower.*|model.audio_encoder.encoder.*)
        if [ "$x" = "$y" ]; then same=$((same+1)); else wrong=$((wrong+1)); echo "frozen $name changed"; fi ;;
      model.embed_tokens.*|model.layers.*|model.norm.*)
        if [ "$x" != "$y" ]; then changed=$((changed+1)); else wrong=$((wrong+1)); echo "trained $name unchanged"; fi ;;
    esac
  done < <(ranges "$a")
else
  wrong=1; echo "the two releases hold different tensors"
fi
[ "$wrong" = 0 ] && [ "$same" -gt 30 ] && [ "$changed" -gt 15 ] &&
  ok "frozen: $same tensors byte-identical; trained: $changed LLM tensors changed" ||
  bad "freezing: $same same, $changed changed, $wrong wrong"
"$VITA" import --from my-vita --out my-vita-f32 > imp.txt 2>&1 && [ -s my-vita-f32/model.safetensors ] &&
  ok "the new release imports" || bad "import: $(cat imp.txt)"
echo "$((5 - fail)) passed, $fail failed"
[ $fail = 0 ]
