#!/usr/bin/env bash
# ctest-labels: unit
# `vita prep` on tests/fixtures/data: good samples land in complete shards, every bad kind is
# skipped and counted with its id, no temporary file is left; `vita prep --verify` accepts the
# shards and refuses a truncated one and one with flipped bytes, naming the file;
# `vita tokenize` encodes and decodes lines. Skips (77) without the shared tokenizer.
set -euo pipefail

TOK="${VT_SHARED_DIR:-../shared}/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "skip: no tokenizer at $TOK"; exit 77; }
: "${VITA:?VITA must point at the vita binary}"
FX="${VT_FIXTURES:?}/data"
TMP="$(mktemp -d /tmp/vt_test_prep_XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$VITA" prep --config "$FX/data.yaml" --tokenizer "$TOK" --out "$TMP/out" --progress \
  --skipped "$TMP/skipped.tsv" "$FX/good.json" "$FX/mixed.jsonl" "$FX/bad_array.json" \
  >"$TMP/summary.txt" 2>"$TMP/stderr.txt" || fail "prep exited $?: $(cat "$TMP/stderr.txt")"
cat "$TMP/summary.txt"

# 6 good + 3 good in mixed.jsonl + 2 good in bad_array.json; shard_samples is 4
grep -q "22 samples read, 11 written to 3 shard(s)" "$TMP/summary.txt" || fail "counts"
grep -q "11 skipped" "$TMP/summary.txt" || fail "skipped count"
expect_skip() { # reason count id
  grep -E "^skipped $1 +$2:.*$3" "$TMP/summary.txt" >/dev/null || fail "skip line for $1 ($3)"
}
expect_skip "malformed JSON" 2 "mixed.jsonl:2"
expect_skip "not UTF-8" 2 "bad-utf8 latin1"
expect_skip "unknown role" 1 "bad-role"
expect_skip "missing media" 1 "bad-media"
expect_skip "placeholder count mismatch" 1 "bad-count"
expect_skip "bad field" 1 "bad-field"
expect_skip "unknown set" 1 "bad-set"
expect_skip "bad template" 1 "bad-order"
expect_skip "too long" 1 "bad-long"
[ "$(wc -l <"$TMP/skipped.tsv")" -eq 11 ] || fail "skipped.tsv lines"
grep -q "prep \[##############################\] 100%" "$TMP/stderr.txt" || fail "progress bar"

ls "$TMP/out" >"$TMP/files.txt"
[ "$(cat "$TMP/files.txt" | tr '\n' ' ')" = "shard-00000.h5 shard-00001.h5 shard-00002.h5 " ] ||
  fail "shard files: $(cat "$TMP/files.txt")"

"$VITA" prep --verify "$TMP/out" >"$TMP/verify.txt" || fail "verify of good shards"
grep -q "shard-00002.h5: 3 samples" "$TMP/verify.txt" || fail "verify output"

# truncated and corrupted copies are refused, by name
head -c 3000 "$TMP/out/shard-00000.h5" >"$TMP/cut.h5"
if "$VITA" prep --verify "$TMP/cut.h5" 2>"$TMP/err.txt"; then fail "truncated shard accepted"; fi
grep -q "cut.h5" "$TMP/err.txt" || fail "truncation message: $(cat "$TMP/err.txt")"
cp "$TMP/out/shard-00001.h5" "$TMP/flip.h5"
size=$(stat -c %s "$TMP/flip.h5")
# overwrite 16 bytes at three places in the second half of the file (datasets live there)
for off in $((size / 2)) $((size * 3 / 4)) $((size - 300)); do
  head -c 16 /dev/zero | tr '\0' '\245' | dd of="$TMP/flip.h5" bs=1 seek="$off" conv=notrunc status=none
done
cmp -s "$TMP/flip.h5" "$TMP/out/shard-00001.h5" && fail "flip changed nothing"
if "$VITA" prep --verify "$TMP/flip.h5" 2>"$TMP/err.txt"; then fail "corrupt shard accepted"; fi
grep -q "flip.h5" "$TMP/err.txt" || fail "corruption message: $(cat "$TMP/err.txt")"

# a second run over the same output replaces the shards whole
"$VITA" prep --config "$FX/data.yaml" --tokenizer "$TOK" --out "$TMP/out" --quiet \
  "$FX/good.json" >/dev/null 2>"$TMP/err.txt" || fail "second run"
grep -q "shard-00002.h5 is from an earlier run" "$TMP/err.txt" || fail "no stale-shard warning"
grep -q "shard-00001.h5 is from" "$TMP/err.txt" && fail "rewritten shard called stale"
[ -z "$(ls "$TMP/out" | grep tmp || true)" ] || fail "temporary file left"

# usage errors exit 2, bad config exits 1 naming the key
set +e
"$VITA" prep --tokenizer "$TOK" "$FX/good.json" 2>/dev/null; [ $? -eq 2 ] || fail "no --out"
"$VITA" prep --config "$FX/bad_key.yaml" --tokenizer "$TOK" --out "$TMP/o2" "$FX/good.json" \
  2>"$TMP/err.txt"
[ $? -eq 1 ] && grep -q "image_dir" "$TMP/err.txt" || fail "bad config: $(cat "$TMP/err.txt")"
set -e

# vita tokenize: ids agree with HF tokenizers (values from tests/reference), and back
printf 'Hello world \xe2\x98\x9e\n\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c <|im_end|>\n' |
  "$VITA" tokenize --tokenizer "$TOK" >"$TMP/ids.txt"
[ "$(sed -n 1p "$TMP/ids.txt")" = "9707 1879 25125 252" ] || fail "tokenize line 1: $(cat "$TMP/ids.txt")"
[ "$(sed -n 2p "$TMP/ids.txt")" = "108386 3837 99489 220 151645" ] || fail "tokenize line 2"
"$VITA" tokenize --tokenizer "$TOK" --decode <"$TMP/ids.txt" >"$TMP/back.txt"
[ "$(sed -n 1p "$TMP/back.txt")" = "Hello world ☞" ] || fail "decode: $(cat "$TMP/back.txt")"
echo "test_prep: ok"
