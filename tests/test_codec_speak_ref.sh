#!/usr/bin/env bash
# ctest-labels: e2e
# Stage 3.2 on a 3.1 codec's tokens, then `vita speak` of a held-out sentence, judged against
# espeak-ng's own speech of it. espeak-ng speaks number sentences; a tiny codec
# trains CODEC_STEPS steps of stage 3.1 on them (one thread); `vita prep --codec` turns the
# (text, speech) pairs into codec tokens; a tiny speech decoder trains TTS_STEPS steps on
# them; `vita speak` (greedy) says a sentence that is in neither run. Checks: (a) the WAV has
# the printed tokens x 600 samples at 24 kHz, and lasts within a factor of 3 of espeak's
# reference; (b) its log-mel (80 mels, n_fft 1024, hop 240; the reference's frames stretched
# linearly to the WAV's count, no DTW) is closer in L1 to the reference than to white noise
# of the WAV's length and RMS; the margin is printed, with the distinct codes the codec uses
# and the margin of its own resynthesis of the reference (what the decoder's tokens can reach
# at best). A miss fails. VT_SPEAK_FULL=1 trains the decoder longer. Skips (77) only without
# espeak-ng or the tokenizer.
set -euo pipefail
: "${VITA:?}" "${VT_SOURCE_DIR:?}"
TOK="${VT_SHARED_DIR:-../shared}/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "skip: no tokenizer at $TOK"; exit 77; }
command -v espeak-ng >/dev/null || { echo "skip: no espeak-ng"; exit 77; }
MELREF="${VT_MELREF:-$(dirname "$VITA")/tests/test_codec_melref}"
[ -x "$MELREF" ] || MELREF="$PWD/test_codec_melref"
[ -x "$MELREF" ] || { echo "FAIL: no test_codec_melref next to $VITA or in $PWD" >&2; exit 1; }
export OMP_NUM_THREADS=1
CODEC_STEPS=60 TTS_STEPS=200 NSENT=80
if [ "${VT_SPEAK_FULL:-0}" = 1 ]; then TTS_STEPS=300; fi
CODEC_STEPS=${VT_SPEAK_CODEC_STEPS:-$CODEC_STEPS} TTS_STEPS=${VT_SPEAK_TTS_STEPS:-$TTS_STEPS}
T="$(mktemp -d /tmp/vt_test_codec_speak_ref_XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$T/wav"
i=0
while read -r s; do
  i=$((i + 1))
  espeak-ng -s 160 -w "$T/wav/$i.wav" "$s"
  printf '{"id": "a-%s", "audio": "wav/%s.wav", "conversations": [{"from": "human", "value": "<audio>\\nTranscribe."}, {"from": "gpt", "value": "%s"}]}\n' \
    "$i" "$i" "$s" >>"$T/asr.jsonl"
  printf '{"id": "s-%s", "text": "%s", "audio": "wav/%s.wav"}\n' "$i" "$s" "$i" >>"$T/speech.jsonl"
done < <(awk -v N="$NSENT" 'BEGIN { split("one two three four five six seven eight nine", w, " ");
  for (i = 0; i < N; i++) { a = i % 9 + 1; b = (int(i / 9) + i) % 9 + 1; c = (i * 5 + 3) % 9 + 1;
    if (w[a] " " w[b] " " w[c] != "five nine four") print w[a] " " w[b] (i % 3 ? " " w[c] : "") } }')
HELD="five nine four"
espeak-ng -s 160 -w "$T/ref.wav" "$HELD"

# stage 3.1: the tiny codec on the sentences' waveforms
"$VITA" prep --audio-features --wave-rate 24000 --tokenizer "$TOK" --out "$T/waves" --quiet \
  "$T/asr.jsonl" >/dev/null || fail "prep waves"
printf 'seed: 1\npack: false\nmax_len: 256\ndatasets:\n  - name: speech\n    shards: waves\n    ratio: 1.0\n' >"$T/waves.yaml"
mkdir -p "$T/stages" "$T/tiny"
cp "$VT_SOURCE_DIR/configs/tiny/codec.json" "$T/tiny/"
sed -e "s|\.\./\.\./runs/ticodec-tiny/mixture.yaml|$T/waves.yaml|g" \
  -e "s|dir: \.\./\.\./runs/ticodec-tiny|dir: $T/codec_run|" -e "s|steps: 200|steps: $CODEC_STEPS|" \
  -e "s|save_every: 100|save_every: 0|" -e "s|eval_every: 100|eval_every: $CODEC_STEPS|" \
  "$VT_SOURCE_DIR/configs/stages/ticodec-3.1-tiny.yaml" >"$T/stages/codec.yaml"
"$VITA" train --config "$T/stages/codec.yaml" >"$T/codec.txt" 2>&1 ||
  fail "codec train: $(tail -5 "$T/codec.txt")"
grep "eval" "$T/codec.txt" || true
CODEC="$T/codec_run/checkpoints/step-$(printf %08d "$CODEC_STEPS")"
[ -f "$CODEC/model.safetensors" ] || fail "no codec checkpoint"

# codec tokens of the (text, speech) pairs
"$VITA" prep --codec "$CODEC" --tokenizer "$TOK" --out "$T/speech" --quiet "$T/speech.jsonl" \
  >"$T/prep.txt" 2>&1 || fail "prep --codec: $(cat "$T/prep.txt")"
grep -q "$NSENT written" "$T/prep.txt" || fail "prep --codec wrote: $(cat "$T/prep.txt")"

# stage 3.2: a tiny speech decoder on those tokens
cat >"$T/tiny/tts.json" <<'JSON'
{"model_type": "tts_decoder", "hidden_size": 32, "num_attention_heads": 2,
 "intermediate_size": 64, "nar_layers": 1, "ar_layers": 2, "codec_vocab": 1024,
 "llm_vocab_size": 151936, "llm_hidden_size": 32, "rope_theta": 10000.0,
 "rms_norm_eps": 1e-06, "initializer_range": 0.02}
JSON
printf 'seed: 1\npack: false\nmax_len: 128\ndatasets:\n  - name: speech\n    shards: speech\n    ratio: 1.0\n' >"$T/speech.yaml"
cat >"$T/stages/tts.yaml" <<YAML
stage: "3.2-speak-ref-test"
device: cpu
model:
  name: tts_decoder
  config: ../tiny/tts.json
  parts:
    decoder: [embedding.*, layers_pre_nn.*, layers.*, norm.*, out_fnn.*]
    llm_embed: model.embed_tokens.weight
data:
  mixture: $T/speech.yaml
  max_len: 128
train:
  steps: $TTS_STEPS
  batch_size: 8
  seed: 1
  trainable: [decoder]
  frozen: [llm_embed]
  optimizer: adamw
  lr: 5.0e-3
  weight_decay: 0.0
schedule:
  kind: constant
output:
  dir: $T/tts_run
  save_every: 0
  keep_last: 1
  log_every: 20
YAML
"$VITA" train --config "$T/stages/tts.yaml" >"$T/tts.txt" 2>&1 || fail "tts train: $(tail -5 "$T/tts.txt")"
tail -2 "$T/tts.txt"

# vita speak of the held-out sentence
mkdir "$T/w"
ln -s "$T/tts_run/checkpoints/step-$(printf %08d "$TTS_STEPS")" "$T/w/decoder"
ln -s "$CODEC" "$T/w/codec"
cp "$TOK/tokenizer.json" "$T/w/"
[ -f "$TOK/tokenizer_config.json" ] && cp "$TOK/tokenizer_config.json" "$T/w/"
ref_tok=$("$VITA" codec encode --resample "$T/ref.wav" --weights "$CODEC" --out "$T/ref.tok" >/dev/null &&
  grep -v '^#' "$T/ref.tok" | grep -v '^global' | wc -w)
echo "codec codes: the reference encodes to $ref_tok tokens, $(grep -v '^#' "$T/ref.tok" | grep -v '^global' | tr -s ' ' '\n' | grep . | sort -u | wc -l) distinct"
# the codec's own resynthesis of the reference: what the decoder's tokens could reach at best
"$VITA" codec decode "$T/ref.tok" --weights "$CODEC" --out "$T/ref_codec.wav" >/dev/null ||
  fail "codec decode of the reference"
echo "codec resynthesis of the reference: $("$MELREF" "$T/ref_codec.wav" "$T/ref.wav")"
max=$((ref_tok * 4))
"$VITA" speak --weights "$T/w" --text "$HELD" --out "$T/say.wav" --max-tokens "$max" --tokens "$T/say.tok" \
  >"$T/speak.txt" 2>&1 || fail "speak: $(cat "$T/speak.txt")"
cat "$T/speak.txt"
head -c 300 "$T/say.tok"; echo
ntok=$(sed -n 's/.* -> \([0-9]*\) codec tokens (.*/\1/p' "$T/speak.txt")
[ -n "$ntok" ] && [ "$ntok" -ge 1 ] || fail "token count '$ntok'"
grep -q "$((ntok * 600)) samples, .* at 24000 Hz" "$T/speak.txt" || fail "printed length"
u() { od -A n -t "u$2" -j "$1" -N "$2" "$T/say.wav" | tr -d ' '; }
[ "$(u 24 4)" = 24000 ] && [ "$(u 40 4)" = $((ntok * 1200)) ] ||
  fail "rate $(u 24 4), data bytes $(u 40 4), expected $((ntok * 1200))"
# a trained sentence, for comparison (not judged)
first=$(head -1 "$T/speech.jsonl" | sed 's/.*"text": "\([^"]*\)".*/\1/')
"$VITA" speak --weights "$T/w" --text "$first" --out "$T/train.wav" --max-tokens "$max" 2>&1 | tail -1
"$VITA" codec encode --resample "$T/wav/1.wav" --weights "$CODEC" --out "$T/1.tok" >/dev/null
echo "trained \"$first\": espeak $(grep -v '^#' "$T/1.tok" | grep -v '^global' | wc -w) codec tokens"
# (a) the duration against espeak's: within a factor of 3 (the reference in codec frames)
echo "duration: spoken $ntok codec tokens ($((ntok * 25)) ms), espeak reference $ref_tok ($((ref_tok * 25)) ms)"
# (b) the mel closer to espeak's than to noise of the same length and RMS
"$MELREF" "$T/say.wav" "$T/ref.wav" >"$T/mel.txt" || fail "mel distance: $(cat "$T/mel.txt")"
cat "$T/mel.txt"
margin=$(sed -n 's/.*margin \([-0-9.]*\)$/\1/p' "$T/mel.txt")
# The two learnt checks are never loosened. They need a codec that uses its codebook (the tiny
# config's k-means init and dead-code re-seeding, docs/codec.md): without them every frame
# mapped to one code and the decoder could not time EOS.
verdict=""
[ $((ntok * 3)) -ge "$ref_tok" ] && [ "$ntok" -le $((ref_tok * 3)) ] ||
  verdict="spoken $ntok tokens, reference $ref_tok: not within a factor of 3"
awk -v m="$margin" 'BEGIN { exit !(m > 0) }' ||
  verdict="$verdict${verdict:+; }the spoken mel is not closer to the espeak reference than to noise (margin $margin)"
n_spoken=$(grep -v '^#' "$T/say.tok" | grep -v '^global' | tr -s ' ' '\n' | grep -c . | tr -d ' ')
kinds=$(grep -v '^#' "$T/say.tok" | grep -v '^global' | tr -s ' ' '\n' | grep . | sort -u | wc -l)
echo "spoken tokens: $n_spoken, distinct codes among them: $kinds"
[ -z "$verdict" ] || fail "$verdict ($CODEC_STEPS codec, $TTS_STEPS decoder steps)"
echo "test_codec_speak_ref: ok"
