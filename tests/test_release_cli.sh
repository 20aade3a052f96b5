#!/usr/bin/env bash
# ctest-labels: e2e
# `vita export` / `vita import` of the VITA-1.5 release layout from the command line, on a
# curriculum-shaped run (RUN/1-llm/: a tiny vita model with vision and audio whose stage trained
# the LLM only; RUN/2-tts/: a tiny speech decoder stage): the export takes each stage's newest
# checkpoint, writes the release files and side directories and the trained speech decoder with
# its model.json, and leaves out the audio encoder (no stage trained it) unless --parts audio or
# --all; the import brings the decoder back beside the weights; refusals exit 1 naming the
# problem; a stale partial output of ours is cleared, another directory is not touched.
set -u
: "${VITA:?}"
T=$(mktemp -d /tmp/vt_test_release_cli_XXXXXX); trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fail=$((fail+1)); }
cd "$T"

"$VITA" gen-data --out lm --samples 32 --vocab 96 --min-len 16 --max-len 40 >/dev/null || bad gen-data
"$VITA" gen-data --kind tts --out tts --samples 64 --eval-samples 8 >/dev/null || bad "gen-data tts"
cat > vita.json <<'J'
{"model_type": "vita-Qwen2", "vocab_size": 96, "hidden_size": 32, "intermediate_size": 64,
 "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
 "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false,
 "image_newline_token_id": 10, "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 128,
 "vision_config": {"image_size": 56, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64,
                   "num_hidden_layers": 1, "num_attention_heads": 2},
 "audio_config": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32,
                  "num_hidden_layers": 1, "chunk_mode": "full"}}
J
cat > llm.yaml <<Y
model:
  config: vita.json
  parts: {llm: [model.embed_tokens.*, model.layers.*, model.norm.*, lm_head.*]}
data: {mixture: lm/mixture.yaml, max_len: 40}
train: {steps: 2, batch_size: 2, lr: 1.0e-2, trainable: [llm]}
output: {dir: run/1-llm, log_every: 0}
Y
sed -e "s|\.\./\.\./runs/tts-tiny/data|$T/tts|g" -e "s|dir: \.\./\.\./runs/tts-tiny|dir: $T/run/2-tts|" \
  -e "s|steps: 300|steps: 2|" -e "s|eval_every: 100|eval_every: 0|" \
  "$VT_SOURCE_DIR/configs/stages/3.2-tiny.yaml" > tts.yaml
cp "$VT_SOURCE_DIR/configs/stages/tts-tiny.json" .
"$VITA" train --config llm.yaml > llm.txt 2>&1 || bad "train llm: $(tail -3 llm.txt)"
"$VITA" train --config tts.yaml > tts.txt 2>&1 || bad "train tts: $(tail -3 tts.txt)"

# the curriculum run: LLM + vision, the trained speech decoder, no audio (never trained)
"$VITA" export --from run --out rel > rel.txt 2>&1; rc=$?
if [ $rc = 0 ] && grep -q "VITA-1.5 layout" rel.txt && grep -q "audio encoder + adapter not exported" rel.txt &&
   [ -s rel/model.safetensors ] && [ -s rel/InternViT-300M-448px/config.json ] &&
   [ -s rel/InternViT-300M-448px/preprocessor_config.json ] && [ ! -e rel/audio-encoder ] &&
   grep -q '"mm_vision_tower": "/.*/rel/InternViT-300M-448px"' rel/config.json &&
   ! grep -q '"mm_audio_encoder"\|"audio_config"' rel/config.json &&
   [ -s rel/vita_tts_ckpt/decoder/model.safetensors ] && grep -q "2-tts" rel.txt; then
  ok "curriculum export: LLM + vision + speech decoder, audio left out"
else
  bad "curriculum export ($rc): $(cat rel.txt)"
fi
# model.json is [idim, odim, {args}] with the release's argument names
mj=$(tr -d ' \n' < rel/vita_tts_ckpt/decoder/model.json 2>/dev/null)
if [[ "$mj" == "[64,1024,{"* ]] && grep -q '"transformer_num_blocks":2' <<<"$mj" &&
   grep -q '"odim":1024' <<<"$mj"; then
  ok "model.json [idim, odim, {args}]"
else
  bad "model.json: $mj"
fi
# --parts audio: the audio-encoder directory and the release's audio keys
"$VITA" export --from run --out rel_a --parts audio --dtype f32 > rel_a.txt 2>&1; rc=$?
if [ $rc = 0 ] && [ -s rel_a/audio-encoder/train.yaml ] && [ -s rel_a/audio-encoder/global_cmvn ] &&
   [ -s rel_a/audio-encoder/model.safetensors ] && grep -q '"mm_audio_encoder"' rel_a/config.json &&
   grep -q 'transformer-num-blocks: 1' rel_a/audio-encoder/train.yaml &&
   grep -q '"mean_stat"' rel_a/audio-encoder/global_cmvn; then
  ok "--parts audio: audio-encoder/{train.yaml, global_cmvn, model.safetensors}"
else
  bad "--parts audio ($rc): $(cat rel_a.txt)"
fi
# import back: our layout, the decoder beside it; the weights are the run's (f32 export)
"$VITA" import --from rel_a --out imp > imp.txt 2>&1; rc=$?
if [ $rc = 0 ] && grep -q "speech decoder -> imp/vita_tts_ckpt/decoder" imp.txt &&
   [ -s imp/model.safetensors ] && grep -q '"audio_config"' imp/config.json &&
   [ -s imp/vita_tts_ckpt/decoder/model.safetensors ] &&
   "$VITA" info imp > info.txt 2>&1 && grep -q "audio encoder" info.txt; then
  ok "import: weights, config with audio_config, speech decoder"
else
  bad "import ($rc): $(cat imp.txt info.txt 2>/dev/null)"
fi
if "$VITA" export --from imp --out rel_b --dtype f32 --all > rel_b.txt 2>&1 &&
   cmp -s rel_a/model.safetensors rel_b/model.safetensors; then
  ok "import -> export reproduces the f32 release byte for byte"
else
  bad "re-export differs: $(cat rel_b.txt)"
fi

# a stage run alone: a speech decoder must be named; --tts names one
out=$("$VITA" export --from run/1-llm --out x --parts tts 2>&1); rc=$?
[ $rc = 1 ] && grep -q -- "--tts DIR" <<<"$out" && [ ! -e x ] && ok "--parts tts without one: exit 1" ||
  bad "--parts tts ($rc): $out"
"$VITA" export --from run/1-llm --out rel_t --tts run/2-tts > t.txt 2>&1 &&
  [ -s rel_t/vita_tts_ckpt/decoder/model.json ] && ok "--tts DIR" || bad "--tts: $(cat t.txt)"
# the codec: generator, quantizer and encoder, no discriminators; imported back
"$VITA" codec init --config "$VT_SOURCE_DIR/configs/tiny/codec.json" --out codec > /dev/null 2>&1 || bad "codec init"
"$VITA" export --from run --out rel_c --codec codec > c.txt 2>&1; rc=$?
hdr=$(head -c 200000 rel_c/vita_tts_ckpt/codec/model.safetensors 2>/dev/null | tr -d '\0')
if [ $rc = 0 ] && grep -q "codec codec -> vita_tts_ckpt/codec" c.txt &&
   grep -q '"generator\.' <<<"$hdr" && grep -q '"quantizer\.' <<<"$hdr" && grep -q '"encoder\.' <<<"$hdr" &&
   ! grep -q '"mpd\.\|"msd\.' <<<"$hdr" && [ -s rel_c/vita_tts_ckpt/codec/model.json ] &&
   "$VITA" import --from rel_c --out imp_c > ic.txt 2>&1 && grep -q "codec -> imp_c/vita_tts_ckpt/codec" ic.txt; then
  ok "--codec: generator/quantizer/encoder, no discriminators; imported back"
else
  bad "--codec ($rc): $(cat c.txt ic.txt 2>/dev/null)"
fi
out=$("$VITA" export --from run --out x --parts audio,speech 2>&1); rc=$?
[ $rc = 1 ] && grep -q 'unknown part "speech"' <<<"$out" && ok "unknown part: exit 1" || bad "parts ($rc): $out"
out=$("$VITA" export --from run --out rel 2>&1); rc=$?
[ $rc = 1 ] && grep -q "not an empty directory" <<<"$out" && ok "existing output: exit 1" || bad "existing ($rc): $out"
# partial outputs: ours (marker) cleared, another directory refused and kept
mkdir -p y.part && touch y.part/.vita-release-partial y.part/junk
"$VITA" export --from run --out y > y.txt 2>&1 && [ -s y/config.json ] && [ ! -e y.part ] &&
  ok "stale partial output cleared" || bad "stale: $(cat y.txt)"
mkdir -p z.part && touch z.part/mine
out=$("$VITA" export --from run --out z 2>&1); rc=$?
[ $rc = 1 ] && [ -e z.part/mine ] && grep -q "not a partial output of ours" <<<"$out" &&
  ok "foreign z.part kept" || bad "foreign ($rc): $out"
# a plain Qwen2 still exports as HF Qwen2
"$VITA" export --from "$VT_FIXTURES/qwen2_tiny" --out q > q.txt 2>&1 && ! grep -q "VITA-1.5" q.txt &&
  [ ! -e q/InternViT-300M-448px ] && ok "qwen2: plain HF export" || bad "qwen2: $(cat q.txt)"
echo "$((12 - fail)) passed, $fail failed"
[ $fail = 0 ]
