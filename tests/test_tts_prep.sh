#!/usr/bin/env bash
# ctest-labels: unit
# `vita prep` on stage 3.2 speech lines (text + codec ids): good lines land in shards with
# their codec tokens counted, each bad kind is skipped and counted with its id, the shards
# verify. Skips (77) without the shared tokenizer.
set -euo pipefail

TOK="${VT_SHARED_DIR:-../shared}/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "skip: no tokenizer at $TOK"; exit 77; }
: "${VITA:?VITA must point at the vita binary}"
FX="${VT_FIXTURES:?}/tts"
TMP="$(mktemp -d /tmp/vt_test_tts_prep_XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$VITA" prep --config "$FX/data.yaml" --tokenizer "$TOK" --out "$TMP/out" --quiet \
  --skipped "$TMP/skipped.tsv" "$FX/speech.jsonl" >"$TMP/summary.txt" 2>"$TMP/stderr.txt" ||
  fail "prep exited $?: $(cat "$TMP/stderr.txt")"
cat "$TMP/summary.txt"
grep -q "9 samples read, 3 written to 2 shard(s)" "$TMP/summary.txt" || fail "counts"
grep -q "6 skipped" "$TMP/summary.txt" || fail "skipped count"
grep -q "prep: 13 codec tokens" "$TMP/summary.txt" || fail "codec token count"
grep -q " 0 trained" "$TMP/summary.txt" || fail "text labels must not be trained"
grep -E "^skipped bad field +3:.*tts-bad-range.*tts-bad-empty.*tts-bad-text" \
  "$TMP/summary.txt" >/dev/null || fail "bad field line"
grep -E "^skipped malformed JSON +1:" "$TMP/summary.txt" >/dev/null || fail "malformed line"
grep -E "^skipped unknown set +1: tts-bad-set" "$TMP/summary.txt" >/dev/null || fail "set line"
grep -E "^skipped too long +1: tts-long" "$TMP/summary.txt" >/dev/null || fail "too long line"
grep -q "codec\[1\]: 1024 is not a codec id (expected 0 to 1023)" "$TMP/skipped.tsv" ||
  fail "range message: $(cat "$TMP/skipped.tsv")"
grep -q "speech.jsonl:5: text: expected a non-empty string" "$TMP/skipped.tsv" ||
  fail "text message names file and line"
"$VITA" prep --verify "$TMP/out" >"$TMP/verify.txt" || fail "verify"
grep -q "shard-00001.h5: 1 samples" "$TMP/verify.txt" || fail "verify output"
echo "test_tts_prep: ok"
