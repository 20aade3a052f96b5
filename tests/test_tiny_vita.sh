#!/usr/bin/env bash
# ctest-labels: e2e
# The README's main job, short: `vita demo` generates the VITA dataset (size tiny) and runs
# the tiny curriculum 0 -> 1.1 -> 1.2 -> 1.3 -> 2.1a -> 2.1b -> 2.2 -> 3.2 of configs/tiny-vita
# with every stage's steps scaled down (--scale), then plots each stage's loss and exports the
# run in the VITA-1.5 release layout. Checks: every stage finished from the one before (its
# init line), the summary and the loss plots exist, the export is the VITA-1.5 release layout
# (side directories, the speech decoder), 1.3's per-type accuracy is printed, and
# the held-out metrics that a short run already moves beat their chance levels (caption loss
# vs the unigram loss; speech-token accuracy vs the unigram guess); the others are printed
# with their chance level. `vita demo --kind lm` (the token-language demo) still runs.
# Skips (77) without espeak-ng.
set -euo pipefail
: "${VITA:?}" "${VT_SOURCE_DIR:?}"
command -v espeak-ng >/dev/null || { echo "skip: no espeak-ng"; exit 77; }
T="$(mktemp -d /tmp/vt_test_tiny_vita_XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start=$(date +%s)
"$VITA" demo --size tiny --scale 0.2 --configs "$VT_SOURCE_DIR/configs/tiny-vita" --out "$T/demo" \
  >"$T/out.txt" 2>&1 || fail "demo: $(tail -20 "$T/out.txt")"
echo "demo: $(($(date +%s) - start)) s"
tail -12 "$T/out.txt"
grep -q "== stage 8/8 3.2" "$T/out.txt" || fail "no stage 8/8 header"
[ "$(grep -c '^init: .* parameter tensors from .*/run/' "$T/out.txt")" -ge 7 ] ||
  fail "stages 2..8 did not start from the stages before them"
for n in 1-0-llm 2-1.1 3-1.2 4-1.3 5-2.1a 6-2.1b 7-2.2 8-3.2; do
  [ -s "$T/demo/run/$n/loss.png" ] || fail "no loss plot for $n"
  grep -q '"status": "done"' "$T/demo/run/$n/stage.json" || fail "$n not done"
done
# the export: the VITA-1.5 release layout of the whole run (stages/stage_release.h)
E="$T/demo/export"
hdr=$(for f in "$E"/model*.safetensors; do head -c 40000 "$f"; done | tr -d '\0')
grep -q '"model_type": *"vita-Qwen2"' "$E/config.json" || fail "export config"
grep -q '"mm_vision_tower": *"/.*/export/InternViT-300M-448px"' "$E/config.json" ||
  fail "export config lacks the vision tower's side directory"
[ -s "$E/InternViT-300M-448px/config.json" ] || fail "no InternViT side directory"
grep -q '"model.mm_projector.2.weight"' <<<"$hdr" || fail "export lacks the projector"
grep -q '"model.audio_encoder.adpter.project.weight"' <<<"$hdr" || fail "export lacks the audio adapter"
[ -s "$E/tokenizer.json" ] || fail "export lacks the tokenizer"
[ -s "$E/vita_tts_ckpt/decoder/model.safetensors" ] || fail "no speech decoder in the release"
[ -s "$T/demo/run/qa-per-type.json" ] || fail "no per-type QA accuracy"
grep -q "QA accuracy per question type" "$T/out.txt" || fail "per-type QA accuracy not printed"

# metric vs chance: the demo's closing table (stage, metric, name, value, chance, yes/no)
table=$(sed -n '/^stage  *held-out metric/,/^demo: [0-9]* of/p' "$T/out.txt")
[ -n "$table" ] || fail "no metric table"
for s in 0-llm 1.1 1.2 3.2; do # moved by a short run; the others need the full one
  [ "$(awk -v s="$s" '$1 == s { print $NF }' <<<"$table")" = yes ] || fail "stage $s: $table"
done
"$VITA" demo --kind lm --steps 4 --batch 2 --out "$T/lm" >"$T/lm.txt" 2>&1 &&
  grep -q "demo: loss" "$T/lm.txt" || fail "vita demo --kind lm: $(tail -3 "$T/lm.txt")"
echo "test_tiny_vita: ok"
