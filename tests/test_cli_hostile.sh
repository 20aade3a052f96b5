# ctest-labels: unit
# The vita commands on hostile arguments: negative integers are usage errors for every command,
# ids outside int32 are refused by tokenize --decode (not wrapped), a huge gen-data --max-len
# and an unwritable prep --skipped file fail with a message and exit 1, a FIFO config is
# refused at once, and export refuses a checkpoint without its manifest.
set -u
fail=0
tmp=$(mktemp -d /tmp/vt_cli_hostile_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
check() { # check NAME EXPECTED_RC PATTERN -- CMD...
  local name=$1 want=$2 pat=$3; shift 4
  local out rc
  out=$(timeout 60 "$@" 2>&1 </dev/null); rc=$?
  if [ "$rc" != "$want" ]; then echo "FAIL $name: exit $rc, want $want: $out"; fail=$((fail+1)); return; fi
  if ! grep -qE -- "$pat" <<<"$out"; then echo "FAIL $name: output lacks /$pat/: $out"; fail=$((fail+1)); return; fi
  echo "ok $name"
}
n=0
check negative-log-every 2 "'--log-every' expects an integer >= 0, got '-1'" -- "$VITA" demo --log-every -1; n=$((n+1))
check negative-seed 2 "'--seed' expects an integer >= 0" -- "$VITA" gen-data --out "$tmp/g" --seed -1; n=$((n+1))
check huge-max-len 1 "max_len <= 16777216" -- "$VITA" gen-data --out "$tmp/g" --max-len 4611686018427387904; n=$((n+1))
check huge-vocab 2 "--vocab must be at most 2147483647" -- "$VITA" gen-data --out "$tmp/g" --vocab 4294967298; n=$((n+1))
mkfifo "$tmp/fifo.yaml"
check fifo-config 1 "not a regular file" -- "$VITA" train --config "$tmp/fifo.yaml"; n=$((n+1))
tok="${VT_SHARED_DIR:-/nonexistent}/data/qwen-tokenizer"
if [ -f "$tok/tokenizer.json" ]; then
  out=$(echo "4294967296 5" | "$VITA" tokenize --tokenizer "$tok" --decode 2>&1); rc=$?
  if [ $rc = 1 ] && grep -q "id 4294967296 is outside" <<<"$out"; then echo "ok decode-range"; else echo "FAIL decode-range: $rc $out"; fail=$((fail+1)); fi
  n=$((n+1))
  echo '{"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}' > "$tmp/in.jsonl"
  check skipped-unwritable 1 "--skipped $tmp/no/such/dir/skips.tsv: cannot write: No such file" -- \
    "$VITA" prep --tokenizer "$tok" --out "$tmp/shards" --skipped "$tmp/no/such/dir/skips.tsv" "$tmp/in.jsonl"; n=$((n+1))
fi
# export: a training checkpoint without its manifest, or with one that lists only config.json
if "$VITA" demo --steps 2 --batch 2 --log-every 0 --out "$tmp/run" >/dev/null 2>&1; then
  ck=$(ls -d "$tmp"/run/*/checkpoints/step-* "$tmp"/run/checkpoints/step-* 2>/dev/null | tail -1)
  cp -r "$ck" "$tmp/nomanifest" && rm "$tmp/nomanifest/COMPLETE"
  check export-no-manifest 1 "no COMPLETE manifest: the checkpoint was never completed" -- \
    "$VITA" export --from "$tmp/nomanifest" --out "$tmp/exp1"; n=$((n+1))
  cp -r "$ck" "$tmp/partial" && grep -v "^file model.safetensors" "$ck/COMPLETE" > "$tmp/partial/COMPLETE"
  check export-partial-manifest 1 "model.safetensors: not listed in the manifest" -- \
    "$VITA" export --from "$tmp/partial" --out "$tmp/exp2"; n=$((n+1))
else
  echo "FAIL demo run for the export checks"; fail=$((fail+1))
fi
echo "$((n - fail)) passed, $fail failed"
[ "$fail" = 0 ]
