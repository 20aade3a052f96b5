#!/usr/bin/env bash
# ctest-labels: e2e
# Speech out end to end on two cores: espeak-ng speaks 8 words; a tiny codec trains 2 steps of
# stage 3.1 on their waveforms (`vita train`); `vita prep --codec` of that checkpoint turns
# the (text, audio) pairs into (text, codec tokens) shards, as many tokens as the codec's
# encoder gives (checked against `vita codec encode` of the same audio at 24 kHz); without
# --codec they are skipped with the reason; a tiny speech decoder (3.2) trains on them; and
# `vita speak` says a sentence through both: a valid 16-bit mono WAV at 24 kHz whose length is
# the printed codec token count x the hop (600), and a longer text in the demo's chunks. Skips (77) without espeak-ng or the tokenizer.
set -euo pipefail
: "${VITA:?}" "${VT_SOURCE_DIR:?}"
TOK="${VT_SHARED_DIR:-../shared}/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "skip: no tokenizer at $TOK"; exit 77; }
command -v espeak-ng >/dev/null || { echo "skip: no espeak-ng"; exit 77; }
T="$(mktemp -d /tmp/vt_test_codec_speak_XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$T/wav"
words="yes no one two three four five six"
for w in $words; do
  espeak-ng -s 160 -w "$T/wav/$w.wav" "$w"
  printf '{"id": "a-%s", "audio": "wav/%s.wav", "conversations": [{"from": "human", "value": "<audio>\\nTranscribe."}, {"from": "gpt", "value": "%s"}]}\n' \
    "$w" "$w" "$w" >>"$T/asr.jsonl"
  printf '{"id": "s-%s", "text": "%s", "audio": "wav/%s.wav"}\n' "$w" "$w" "$w" >>"$T/speech.jsonl"
done

# stage 3.1: two steps of the tiny codec
"$VITA" prep --audio-features --wave-rate 24000 --tokenizer "$TOK" --out "$T/waves" --quiet \
  "$T/asr.jsonl" >/dev/null || fail "prep waves"
printf 'seed: 1\npack: false\nmax_len: 256\ndatasets:\n  - name: speech\n    shards: waves\n    ratio: 1.0\n' >"$T/waves.yaml"
mkdir -p "$T/stages" "$T/tiny"
cp "$VT_SOURCE_DIR/configs/tiny/codec.json" "$T/tiny/"
sed -e "s|\.\./\.\./runs/ticodec-tiny/mixture.yaml|$T/waves.yaml|" \
  -e "s|dir: \.\./\.\./runs/ticodec-tiny|dir: $T/codec_run|" -e "s|steps: 200|steps: 2|" \
  -e "s|save_every: 100|save_every: 0|" -e "s|eval_every: 100|eval_every: 0|" \
  "$VT_SOURCE_DIR/configs/stages/ticodec-3.1-tiny.yaml" >"$T/stages/codec.yaml"
"$VITA" train --config "$T/stages/codec.yaml" >"$T/codec.txt" 2>&1 ||
  fail "codec train: $(tail -5 "$T/codec.txt")"
CODEC="$T/codec_run/checkpoints/step-00000002"
[ -f "$CODEC/model.safetensors" ] || fail "no codec checkpoint"

# codec tokens from prep: the count is what `vita codec encode` gives for each clip
"$VITA" prep --codec "$CODEC" --tokenizer "$TOK" --out "$T/speech" --quiet "$T/speech.jsonl" \
  >"$T/prep.txt" 2>&1 || fail "prep --codec: $(cat "$T/prep.txt")"
cat "$T/prep.txt"
grep -q "8 written" "$T/prep.txt" || fail "prep --codec wrote: $(cat "$T/prep.txt")"
n_prep=$(sed -n 's/^prep: \([0-9]*\) codec tokens$/\1/p' "$T/prep.txt")
# the same clips through `vita codec encode --resample` (libsoxr to 24 kHz, as prep loads them)
total=0
for w in $words; do
  "$VITA" codec encode --resample "$T/wav/$w.wav" --weights "$CODEC" --out "$T/$w.tok" ||
    fail "encode $w"
  total=$((total + $(grep -v '^#' "$T/$w.tok" | grep -v '^global' | wc -w)))
done
echo "codec tokens: prep $n_prep, vita codec encode $total"
[ -n "$n_prep" ] && [ "$n_prep" = "$total" ] || fail "prep gave $n_prep codec tokens, encode $total"
# without a codec, speech given as audio is skipped and says why
"$VITA" prep --tokenizer "$TOK" --out "$T/nocodec" --quiet --skipped "$T/skipped.tsv" \
  "$T/speech.jsonl" >"$T/prep2.txt" 2>&1 || fail "prep without codec: $(cat "$T/prep2.txt")"
grep -q "0 written" "$T/prep2.txt" || fail "$(cat "$T/prep2.txt")"
grep -q "needs a codec to encode .*yes.wav (vita prep --codec DIR)" "$T/skipped.tsv" ||
  fail "skip reason: $(head -2 "$T/skipped.tsv")"
# stage 3.2: a tiny speech decoder on those codec tokens, conditioned on a (random, frozen)
# table of the Qwen vocabulary's width
cat >"$T/tiny/tts.json" <<'JSON'
{"model_type": "tts_decoder", "hidden_size": 16, "num_attention_heads": 2,
 "intermediate_size": 32, "nar_layers": 1, "ar_layers": 1, "codec_vocab": 1024,
 "llm_vocab_size": 151936, "llm_hidden_size": 32, "rope_theta": 10000.0,
 "rms_norm_eps": 1e-06, "initializer_range": 0.02}
JSON
printf 'seed: 1\npack: false\nmax_len: 32\ndatasets:\n  - name: speech\n    shards: speech\n    ratio: 1.0\n' >"$T/speech.yaml"
cat >"$T/stages/tts.yaml" <<YAML
stage: "3.2-speak-test"
device: cpu
model:
  name: tts_decoder
  config: ../tiny/tts.json
  parts:
    decoder: [embedding.*, layers_pre_nn.*, layers.*, norm.*, out_fnn.*]
    llm_embed: model.embed_tokens.weight
data:
  mixture: $T/speech.yaml
  max_len: 32
train:
  steps: 30
  batch_size: 8
  seed: 1
  trainable: [decoder]
  frozen: [llm_embed]
  optimizer: adamw
  lr: 1.0e-2
  weight_decay: 0.0
schedule:
  kind: constant
output:
  dir: $T/tts_run
  save_every: 0
  keep_last: 1
  log_every: 10
YAML
"$VITA" train --config "$T/stages/tts.yaml" >"$T/tts.txt" 2>&1 || fail "tts train: $(tail -5 "$T/tts.txt")"
tail -2 "$T/tts.txt"

# vita speak through both, laid out as vita_tts_ckpt/ (decoder/, codec/) with the tokenizer
mkdir "$T/w"
ln -s "$T/tts_run/checkpoints/step-00000030" "$T/w/decoder"
ln -s "$CODEC" "$T/w/codec"
cp "$TOK/tokenizer.json" "$T/w/"
[ -f "$TOK/tokenizer_config.json" ] && cp "$TOK/tokenizer_config.json" "$T/w/"
"$VITA" speak --weights "$T/w" --text "four" --out "$T/say.wav" --max-tokens 120 --tokens "$T/say.tok" \
  >"$T/speak.txt" 2>&1 || fail "speak: $(cat "$T/speak.txt")"
cat "$T/speak.txt"
# the decoder learnt its data: greedy speech of a trained word opens as its codec tokens do
first() { grep -v '^#' "$1" | grep -v '^global' | tr -s ' \n' ' ' | cut -d' ' -f1-2; }
echo "\"four\": spoken $(first "$T/say.tok") ..., encoded $(first "$T/four.tok") ..."
[ "$(first "$T/say.tok")" = "$(first "$T/four.tok")" ] || fail "the decoder did not learn \"four\""
# the tokens it wrote decode (vita codec decode) to the very same file
"$VITA" codec decode "$T/say.tok" --weights "$T/w/codec" --out "$T/again.wav" >/dev/null ||
  fail "decode of the spoken tokens"
cmp -s "$T/say.wav" "$T/again.wav" || fail "vita codec decode of --tokens differs from speak's wav"
ntok=$(sed -n 's/.* -> \([0-9]*\) codec tokens (.*/\1/p' "$T/speak.txt")
[ -n "$ntok" ] && [ "$ntok" -ge 1 ] && [ "$ntok" -le 120 ] || fail "token count '$ntok'"
grep -q "$((ntok * 600)) samples, .* at 24000 Hz" "$T/speak.txt" || fail "printed length"
# the WAV itself: RIFF/WAVE, PCM (1), mono, 24000 Hz, 16 bits, data of ntok x 600 samples
u() { od -A n -t "u$2" -j "$1" -N "$2" "$T/say.wav" | tr -d ' '; }
[ "$(head -c 4 "$T/say.wav")" = RIFF ] && [ "$(dd if="$T/say.wav" bs=1 skip=8 count=4 2>/dev/null)" = WAVE ] ||
  fail "not a RIFF/WAVE file"
[ "$(u 20 2)" = 1 ] && [ "$(u 22 2)" = 1 ] && [ "$(u 24 4)" = 24000 ] && [ "$(u 34 2)" = 16 ] ||
  fail "format: tag $(u 20 2), channels $(u 22 2), rate $(u 24 4), bits $(u 34 2)"
[ "$(dd if="$T/say.wav" bs=1 skip=36 count=4 2>/dev/null)" = data ] || fail "no data chunk at 36"
[ "$(u 40 4)" = $((ntok * 600 * 2)) ] || fail "data bytes $(u 40 4), expected $((ntok * 1200))"
[ "$(stat -c %s "$T/say.wav")" = $((44 + ntok * 1200)) ] || fail "file size"
# top-k sampling runs too and is seeded: the same seed, the same file
"$VITA" speak --weights "$T/w" --text "one two three" --out "$T/k1.wav" --top-k 5 \
  --temperature 0.8 --seed 7 --max-tokens 40 >/dev/null 2>&1 || fail "top-k"
"$VITA" speak --weights "$T/w" --text "one two three" --out "$T/k2.wav" --top-k 5 \
  --temperature 0.8 --seed 7 --max-tokens 40 >/dev/null 2>&1 || fail "top-k again"
cmp -s "$T/k1.wav" "$T/k2.wav" || fail "top-k with one seed differs"
# a longer text is said in the demo's chunks, each through the decoder and the codec: the
# first cut at its first mark, the next once it has 5 characters; the WAV is their sum
"$VITA" speak --weights "$T/w" --text "One, two three four. Five" --out "$T/ch.wav" \
  --max-tokens 20 >"$T/ch.txt" 2>&1 || fail "chunked speak: $(cat "$T/ch.txt")"
cat "$T/ch.txt"
grep -q 'chunk 1/3 "one。"' "$T/ch.txt" && grep -q 'chunk 2/3 " two three four."' "$T/ch.txt" &&
  grep -q 'chunk 3/3 " five"' "$T/ch.txt" || fail "chunks: $(cat "$T/ch.txt")"
sum=$(sed -n 's/.* text tokens, \([0-9]*\) codec tokens, .*/\1/p' "$T/ch.txt" | paste -sd+)
sum=$((sum))
grep -q "3 chunks, .* -> $sum codec tokens (.*$((sum * 600)) samples" "$T/ch.txt" ||
  fail "chunk tokens add to $sum: $(tail -1 "$T/ch.txt")"
out=$("$VITA" speak --weights "$T/w" --out "$T/x.wav" 2>&1) && fail "no --text accepted"
grep -q -- "--text" <<<"$out" || fail "usage: $out"
echo "test_codec_speak: ok"
