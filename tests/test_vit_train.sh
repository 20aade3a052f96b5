# ctest-labels: e2e
# The vision path end to end: VITA JSON with images and a video -> vita prep (tiles of 56 px in
# the shards) -> vita train on a tiny VITA model (InternViT-shaped tower, mlp2x_gelu, Qwen2 with
# the full vocabulary): each tile becomes its span of adapter outputs plus "\n" in the row, the
# loss falls; a stage 1.1-style run trains the adapter alone and leaves every frozen tensor
# byte-identical (compared by name); the export carries the VITA-1.5 release names and config
# and imports back. Skips (77) without the tokenizer.
set -u
TOK="$VT_SHARED_DIR/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "no shared tokenizer at $TOK: skipped"; exit 77; }
T=$(mktemp -d); trap "rm -rf $T" EXIT; [ -n "${KEEP:-}" ] && trap - EXIT && echo "kept $T"
fail=0
FX=$VT_FIXTURES
for i in $(seq 0 23); do
  case $((i % 4)) in
    0) m='"image": "image/synth_rgb.png"'; q="<image>\\nDescribe the picture."; a="Red and blue stripes." ;;
    1) m='"image": "image/photo_a.png"'; q="<image>\\nWho is this?"; a="A woman in uniform." ;;
    2) m='"image": "image/photo_b.png"'; q="What is this? <image>"; a="A circuit board." ;;
    3) m='"video": "video/c2s_10fps.mp4"'; q="<video>\\nWhat happens?"; a="The colour changes." ;;
  esac
  printf '{"id": "v%d", "set": "fx", %s, "conversations": [{"from": "human", "value": "%s"}, {"from": "gpt", "value": "%s"}]}\n' \
    "$i" "$m" "$q" "$a"
done > "$T/vis.jsonl"
printf 'tokenizer: %s\nmax_len: 512\nsets:\n  fx:\n    folder: %s\nmedia:\n  tile_size: 56\n  max_tiles: 2\n' \
  "$TOK" "$FX" > "$T/prep.yaml"
"$VITA" prep --config "$T/prep.yaml" --out "$T/shards" --quiet "$T/vis.jsonl" > "$T/prep.txt" 2>&1 \
  && grep -q '24 written' "$T/prep.txt" && echo "ok prep" || { echo "FAIL prep: $(cat "$T/prep.txt")"; fail=$((fail+1)); }
printf 'seed: 1\npack: false\ndatasets:\n  - name: vis\n    shards: shards\n' > "$T/mix.yaml"
cat > "$T/config.json" <<'J'
{"model_type": "vita-Qwen2", "vocab_size": 151936, "hidden_size": 32, "intermediate_size": 64,
 "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
 "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 128,
 "vision_config": {"image_size": 56, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64,
                   "num_hidden_layers": 2, "num_attention_heads": 2, "drop_path_rate": 0.1}}
J
loss_at() { sed -n "s/.*\"step\": $2, \"loss\": \([0-9.]*\),.*/\1/p" "$1/metrics.jsonl"; }
printf 'model: {config: config.json}\ndata: {mixture: mix.yaml, max_len: 512}\ntrain: {steps: 12, batch_size: 4, lr: 1.0e-2}\noutput: {dir: run, log_every: 0}\n' > "$T/train.yaml"
out=$("$VITA" train --config "$T/train.yaml" 2>&1)
first=$(loss_at "$T/run" 1) last=$(loss_at "$T/run" 12)
if [ -n "$first" ] && [ -n "$last" ] && ! grep -q "skipping" <<<"$out" &&
   awk -v f="$first" -v l="$last" 'BEGIN { exit !(f > 8 && l < f - 2) }'; then
  echo "ok train: loss $first -> $last, no sample skipped"
else
  echo "FAIL train: loss '$first' -> '$last': $out"; fail=$((fail+1))
fi
# stage 1.1's shape: the adapter alone trains (128 * 32 + 32 + 32 * 32 + 32 = 5,184 parameters);
# with a random LLM twelve steps need not lower the loss, but they change it through the images
# (step 1 has lr 0 in the warmup: step 3 is the first to differ from the full run)
printf 'model:\n  config: config.json\n  parts: {adapter: model.mm_projector.*}\ndata: {mixture: mix.yaml, max_len: 512}\ntrain: {steps: 12, batch_size: 4, lr: 5.0e-2, trainable: [adapter]}\noutput: {dir: run11, log_every: 0, save_every: 1, keep_last: 20}\n' > "$T/s11.yaml"
out=$("$VITA" train --config "$T/s11.yaml" 2>&1)
first=$(loss_at "$T/run11" 1) last=$(loss_at "$T/run11" 12)
if [ -n "$first" ] && [ -n "$last" ] && grep -q "(5,184 trainable)" <<<"$out" &&
   [ "$(loss_at "$T/run11" 3)" != "$(loss_at "$T/run" 3)" ]; then
  echo "ok adapter only: 5,184 trainable, loss $first -> $last"
else
  echo "FAIL adapter only: loss '$first' -> '$last': $out"; fail=$((fail+1))
fi
# frozen parts byte-identical, by name: step 1 (lr 0 in the warmup: the initial weights) against
# step 12; only the adapter's tensors may differ, and they must
hdr_len() { od -An -t u8 -N 8 "$1" | tr -d ' '; }
ranges() { # "name first end" (data offsets) of every tensor of a safetensors file
  local len; len=$(hdr_len "$1")
  head -c $((8 + len)) "$1" | tail -c "$len" |
    grep -o '"[^"]*":{"dtype":"[A-Z0-9]*","shape":\[[0-9,]*\],"data_offsets":\[[0-9]*,[0-9]*\]' |
    sed 's/^"\([^"]*\)".*"data_offsets":\[\([0-9]*\),\([0-9]*\)\]/\1 \2 \3/'
}
a=$T/run11/checkpoints/step-00000001/model.safetensors b=$T/run11/checkpoints/step-00000012/model.safetensors
same=0 changed=0 bad=0
if [ -f "$a" ] && [ -f "$b" ] && [ "$(ranges "$a")" = "$(ranges "$b")" ]; then
  ha=$(hdr_len "$a")
  while read -r name lo hi; do
    x=$(tail -c +$((9 + ha + lo)) "$a" | head -c $((hi - lo)) | md5sum)
    y=$(tail -c +$((9 + ha + lo)) "$b" | head -c $((hi - lo)) | md5sum)
    case $name in
      model.mm_projector.*) if [ "$x" != "$y" ]; then changed=$((changed+1)); else bad=$((bad+1)); fi ;;
      *) if [ "$x" = "$y" ]; then same=$((same+1)); else bad=$((bad+1)); echo "frozen $name changed"; fi ;;
    esac
  done < <(ranges "$a")
else
  bad=1; echo "no checkpoints at steps 1 and 12, or their layouts differ"
fi
if [ "$bad" = 0 ] && [ "$changed" = 4 ] && [ "$same" -gt 50 ]; then
  echo "ok frozen: $same tensors byte-identical, the adapter's 4 changed"
else
  echo "FAIL frozen: $same same, $changed adapter changed, $bad wrong"; fail=$((fail+1))
fi
# export: the VITA-1.5 release names and config, and the import back checks every name
"$VITA" export --from "$T/run" --out "$T/export" --tokenizer "$TOK" > "$T/export.txt" 2>&1
hdr=$(head -c 20000 "$T/export/model.safetensors" 2>/dev/null | tr -d '\0')
if grep -q '"model_type": *"vita-Qwen2"' "$T/export/config.json" 2>/dev/null &&
   grep -q '"mm_projector_type": *"mlp2x_gelu"' "$T/export/config.json" &&
   grep -q '"model.mm_projector.2.weight":{"dtype":"BF16"' <<<"$hdr" &&
   grep -q '"model.vision_tower.vision_tower.encoder.layers.1.attn.qkv.weight"' <<<"$hdr" &&
   "$VITA" import --from "$T/export" --out "$T/reimport" > "$T/import.txt" 2>&1; then
  echo "ok export + import: release names, vita-Qwen2 config"
else
  echo "FAIL export/import: $(cat "$T/export.txt" "$T/import.txt" 2>/dev/null)"; fail=$((fail+1))
fi
echo "$((5 - fail)) passed, $fail failed"
[ $fail = 0 ]
