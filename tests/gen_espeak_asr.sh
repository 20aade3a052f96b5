#!/usr/bin/env bash
# ASR pairs spoken by espeak-ng for stage 2.1a runs (tests/test_audio_cer.sh, docs/audio.md):
#   tests/gen_espeak_asr.sh DIR N_TRAIN N_EVAL [SEED]
# writes DIR/wav/*.wav and DIR/train.jsonl, DIR/eval.jsonl: sentences of 2-4 words drawn from
# 24 words (colours, numbers, animals, sizes), each spoken by one of three English voices at
# 140-180 words per minute, as "transcribe" turns. The eval sentences are drawn apart from the
# training ones (another seed; a sentence that occurs in train is redrawn), so held-out CER
# measures words in new orders, not memorised utterances.
set -euo pipefail
dir=$1 ntrain=$2 neval=$3 seed=${4:-1}
command -v espeak-ng >/dev/null || { echo "no espeak-ng" >&2; exit 77; }
mkdir -p "$dir/wav"
words=(red green blue black white yellow one two three four five six seven eight nine ten
  cat dog bird fish big small old new)
voices=(en-us en-gb en-gb-x-rp)
# into $s, in this shell: a $(...) subshell would reseed RANDOM and the data would not repeat
sentence() {
  local n=$((2 + RANDOM % 3)) i
  s=""
  for ((i = 0; i < n; i++)); do s+="${s:+ }${words[RANDOM % ${#words[@]}]}"; done
}
declare -A seen
emit() { # split count seed
  local split=$1 count=$2 k=0 s
  RANDOM=$3
  : >"$dir/$split.jsonl"
  while [ "$k" -lt "$count" ]; do
    sentence
    if [ "$split" = eval ] && [ -n "${seen[$s]:-}" ]; then continue; fi
    [ "$split" = train ] && seen[$s]=1
    k=$((k + 1))
    espeak-ng -v "${voices[RANDOM % 3]}" -s $((140 + RANDOM % 41)) -w "$dir/wav/$split$k.wav" "$s"
    printf '{"id": "%s%d", "audio": "wav/%s%d.wav", "conversations": [{"from": "human", "value": "<audio>\\nTranscribe the speech."}, {"from": "gpt", "value": "%s"}]}\n' \
      "$split" "$k" "$split" "$k" "$s" >>"$dir/$split.jsonl"
  done
}
emit train "$ntrain" "$seed"
emit eval "$neval" $((seed + 1000))
