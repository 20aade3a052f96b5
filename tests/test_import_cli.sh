# ctest-labels: e2e
# vita import / vita export from the command line: the summary lines, the files written, and
# the exit codes: 1 with a message naming the problem on bad input, 2 on usage errors.
set -u
fail=0
pass=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fx="$VT_FIXTURES/qwen2_tiny"

ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
# expect RC PATTERN WHAT -- CMD...: runs CMD, checks its exit code and that its output matches
expect() {
  local want=$1 pat=$2 what=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$want" ] && grep -qE -- "$pat" <<<"$out"; then ok; else bad "$what (rc $rc): $out"; fi
}

expect 0 '^imported .* 27 tensors, 74,304 parameters, 0\.3 MB f32 in 1 file' "import" -- \
  "$VITA" import --from "$fx" --out "$tmp/imp"
[ -f "$tmp/imp/model.safetensors" ] && [ -f "$tmp/imp/config.json" ] && \
  [ -f "$tmp/imp/generation_config.json" ] && [ ! -e "$tmp/imp.tmp" ] && ok || bad "import files"
cmp -s "$fx/config.json" "$tmp/imp/config.json" && ok || bad "import config.json differs"

# the imported directory is a model directory for the other commands
expect 0 '^parameters: 74,304$' "info on the import" -- "$VITA" info "$tmp/imp"

tok="${VT_SHARED_DIR:-/nonexistent}/data/qwen-tokenizer"
tokargs=()
[ -f "$tok/tokenizer.json" ] && tokargs=(--tokenizer "$tok")
expect 0 '^exported .* 27 tensors, 74,304 parameters, 0\.1 MB bf16 in 3 shards' "sharded export" -- \
  "$VITA" export --from "$tmp/imp" --out "$tmp/exp" --max-shard-gb 0.00006 "${tokargs[@]}"
for f in model-00001-of-00003.safetensors model-00003-of-00003.safetensors \
  model.safetensors.index.json config.json generation_config.json; do
  [ -f "$tmp/exp/$f" ] && ok || bad "export lacks $f"
done
grep -q '"torch_dtype": "bfloat16"' "$tmp/exp/config.json" && ok || bad "export config dtype"
grep -q '"total_size": 148608' "$tmp/exp/model.safetensors.index.json" && ok || bad "total_size"
if [ ${#tokargs[@]} -gt 0 ]; then
  cmp -s "$tok/tokenizer.json" "$tmp/exp/tokenizer.json" && ok || bad "tokenizer.json not copied"
fi
expect 0 'in 1 file' "single-file export" -- "$VITA" export --from "$tmp/imp" --out "$tmp/exp1/"
[ -f "$tmp/exp1/model.safetensors" ] && [ ! -e "$tmp/exp1/model.safetensors.index.json" ] && \
  [ ! -e "$tmp/exp1.tmp" ] && ok || bad "single-file export files"
# an export imports back (sharded source with an index, bf16 -> f32)
expect 0 '^imported .* 0\.3 MB f32 in 1 file' "re-import of the export" -- \
  "$VITA" import --from "$tmp/exp" --out "$tmp/re"

# bad input: exit 1, one line naming the problem, nothing left behind
sed 's/"num_hidden_layers": 2/"num_hidden_layers": 3/' "$fx/config.json" > "$tmp/cfg3.json"
mkdir "$tmp/deep" && cp "$fx/model.safetensors" "$tmp/deep/" && cp "$tmp/cfg3.json" "$tmp/deep/config.json"
expect 1 '12 missing: model\.layers\.2\.input_layernorm\.weight, .*model\.layers\.2\.mlp\.down_proj\.weight' \
  "missing layer" -- "$VITA" import --from "$tmp/deep" --out "$tmp/bad"
sed 's/"num_hidden_layers": 2/"num_hidden_layers": 1/' "$fx/config.json" > "$tmp/cfg1.json"
mkdir "$tmp/shallow" && cp "$fx/model.safetensors" "$tmp/shallow/" && cp "$tmp/cfg1.json" "$tmp/shallow/config.json"
expect 1 '12 unexpected: model\.layers\.1\.' "extra layer" -- \
  "$VITA" import --from "$tmp/shallow" --out "$tmp/bad"
sed 's/"intermediate_size": 96/"intermediate_size": 128/' "$fx/config.json" > "$tmp/cfgw.json"
mkdir "$tmp/wide" && cp "$fx/model.safetensors" "$tmp/wide/" && cp "$tmp/cfgw.json" "$tmp/wide/config.json"
expect 1 '6 mismatched: .*model\.layers\.0\.mlp\.down_proj\.weight \(expected \[64, 128\] float, found \[64, 96\] F32\)' \
  "shape mismatch" -- "$VITA" import --from "$tmp/wide" --out "$tmp/bad"
mkdir "$tmp/trunc" && cp "$fx/config.json" "$tmp/trunc/" && head -c 5000 "$fx/model.safetensors" > "$tmp/trunc/model.safetensors"
expect 1 'trunc/model\.safetensors' "truncated weights" -- "$VITA" import --from "$tmp/trunc" --out "$tmp/bad"
expect 1 'nowhere: not a directory' "missing source" -- "$VITA" import --from "$tmp/nowhere" --out "$tmp/bad"
expect 1 'already exists' "occupied output" -- "$VITA" export --from "$tmp/imp" --out "$tmp/exp"
expect 1 'weights do not match' "export of a bad dir" -- "$VITA" export --from "$tmp/wide" --out "$tmp/bad"
[ ! -e "$tmp/bad" ] && [ ! -e "$tmp/bad.tmp" ] && ok || bad "a refused run left files behind"

# the public release's layout: the speech decoder and the codec as model.json + final.pt (torch
# pickles, tests/fixtures/torch_release/pt) beside the LLM; vita codec works on the import
rel="$tmp/pt_release"; mkdir "$rel"
for f in config.json model.safetensors InternViT-300M-448px audio-encoder; do
  ln -s "$VT_FIXTURES/vita_release/$f" "$rel/$f"
done
cp -r "$VT_FIXTURES/torch_release/pt/vita_tts_ckpt" "$rel/"
expect 0 'speech decoder -> .*/pt_imp/vita_tts_ckpt/decoder: 31 tensors' "import of torch pickles" -- \
  "$VITA" import --from "$rel" --out "$tmp/pt_imp"
expect 0 'codec/final\.pt: 2 tensors skipped \(outside generator' "skipped tensors named on stderr" -- \
  "$VITA" import --from "$rel" --out "$tmp/pt_imp2"
printf '1 2 3 1023\n' > "$tmp/tok.txt"
expect 0 '' "codec decode of the imported codec" -- \
  "$VITA" codec decode "$tmp/tok.txt" --weights "$tmp/pt_imp/vita_tts_ckpt/codec" --out "$tmp/pt.wav"
[ -s "$tmp/pt.wav" ] && ok || bad "no wav from the imported codec"
# a pickle that would run os.system when torch loads it: refused, nothing run, nothing written
cp "$VT_FIXTURES/torch_pt/evil.pt" "$rel/vita_tts_ckpt/codec/final.pt"
expect 1 'global posix\.system: not allowed' "a pickle calling os.system" -- \
  "$VITA" import --from "$rel" --out "$tmp/pt_bad"
[ ! -e "$tmp/pt_bad" ] && [ ! -e "$tmp/pt_bad.part" ] && ok || bad "a refused pickle left files behind"

# usage: exit 2
expect 2 'give --from HF_DIR and --out DIR' "import without --out" -- "$VITA" import --from "$fx"
expect 2 'give --from DIR and --out DIR' "export without --from" -- "$VITA" export --out "$tmp/x"
expect 2 'dtype int8: expected' "bad dtype" -- "$VITA" import --from "$fx" --out "$tmp/x" --dtype int8
expect 2 'max-shard-gb 0: expected' "zero shard size" -- \
  "$VITA" export --from "$tmp/imp" --out "$tmp/x" --max-shard-gb 0
expect 2 'bogus' "unknown flag" -- "$VITA" export --from "$tmp/imp" --out "$tmp/x" --bogus
expect 0 'max-shard-gb' "export --help" -- "$VITA" export --help

echo "$pass passed, $fail failed"
[ $fail = 0 ]
