# ctest-labels: unit
# `vita features audio` prints fbank frames, encoder frames and LLM tokens and writes `fbank`
# as safetensors; `vita cmvn` sums the stats over JSON samples, audio files and --list files,
# skips and counts bad audio, and fails when nothing is usable. Bad input gets one line naming
# the file and exit code 1; bad usage exit code 2.
set -u
fail=0; n=0
ok() { n=$((n + 1)); }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "FAIL: $*"; }
A="$VT_FIXTURES/audio"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$("$VITA" features audio "$A/chirp16k.wav" --out "$tmp/f.safetensors" 2>&1) || bad "features: $out"
grep -q '^fbank frames: *98 x 80' <<<"$out" && grep -q '^encoder frames: 23 ' <<<"$out" &&
  grep -q '^LLM tokens: *12 ' <<<"$out" && ok || bad "features counts: $out"
# safetensors: 8-byte header length, then a header naming fbank [98, 80] F32, then 98*80*4 bytes
size=$(stat -c %s "$tmp/f.safetensors" 2>/dev/null || echo 0)
hdr=$(head -c 200 "$tmp/f.safetensors" | tr -d '\0' | tr -c '[:print:]' ' ')
grep -q '"fbank":{"dtype":"F32","shape":\[98,80\]' <<<"$hdr" && [ "$size" -gt 31360 ] && ok ||
  bad "safetensors ($size bytes): $hdr"
out=$("$VITA" features audio "$A/espeak_hello.wav" --prompts 25 2>&1) || bad "espeak: $out"
grep -q 'resampled from 22050 Hz' <<<"$out" && grep -q '^LLM tokens: *37 ' <<<"$out" && ok ||
  bad "espeak counts: $out"
out=$("$VITA" features audio "$A/stereo16k.wav" --channel mix 2>&1)
grep -q '2 channels (mixed to mono)' <<<"$out" && ok || bad "stereo: $out"
out=$("$VITA" features audio "$tmp/missing.wav" 2>&1); rc=$?
[ $rc = 1 ] && grep -q "missing.wav: cannot decode audio" <<<"$out" && ok || bad "missing ($rc): $out"
printf 'RIFF\x10\x00\x00\x00WAVEjunk' > "$tmp/cut.wav"
out=$("$VITA" features audio "$tmp/cut.wav" 2>&1); rc=$?
[ $rc = 1 ] && grep -q "cut.wav" <<<"$out" && ok || bad "corrupt ($rc): $out"
out=$("$VITA" features audio "$A/chirp16k.wav" --max-seconds 0.5 2>&1); rc=$?
[ $rc = 1 ] && grep -q "expected at most 0.5 s (too_long)" <<<"$out" && ok || bad "too long ($rc): $out"
"$VITA" features audio --channel both "$A/chirp16k.wav" >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok || bad "bad --channel gave $rc"
"$VITA" features audio >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok || bad "no file gave $rc"

# cmvn over JSON samples (relative audio paths), a bad file, and a list
cp "$A/chirp16k.wav" "$A/espeak_hello.wav" "$tmp/"
cat > "$tmp/data.json" <<'JSON'
[{"id": "a", "audio": "chirp16k.wav", "conversations": [{"from": "human", "value": "<audio>\nWhat is it?"}, {"from": "gpt", "value": "A chirp."}]},
 {"id": "b", "audio": "cut.wav", "conversations": [{"from": "human", "value": "<audio>\nAnd this?"}, {"from": "gpt", "value": "Broken."}]},
 {"id": "c", "audio": "gone.wav", "conversations": [{"from": "human", "value": "<audio>\nAnd?"}, {"from": "gpt", "value": "Missing."}]},
 {"id": "d", "conversations": [{"from": "human", "value": "Text only"}, {"from": "gpt", "value": "Yes."}]}]
JSON
printf '%s\n' "# espeak" "$tmp/espeak_hello.wav" > "$tmp/list.txt"
out=$("$VITA" cmvn "$tmp/data.json" --list "$tmp/list.txt" --out "$tmp/global_cmvn" 2>&1) || bad "cmvn: $out"
grep -q '^cmvn: 2 audio files, 199 frames' <<<"$out" && grep -q 'unreadable_audio=1' <<<"$out" &&
  grep -q 'skipped sample c (missing media)' <<<"$out" && ok || bad "cmvn summary: $out"
j=$(cat "$tmp/global_cmvn" 2>/dev/null)
grep -q '"frame_num": 199}' <<<"$j" && [ "$(grep -o ',' <<<"$j" | wc -l)" = 160 ] && ok ||
  bad "cmvn json: ${j:0:200}"
out=$("$VITA" cmvn "$tmp/cut.wav" --out "$tmp/none" 2>&1); rc=$?
[ $rc = 1 ] && grep -q 'no usable audio' <<<"$out" && [ ! -e "$tmp/none" ] && ok || bad "cmvn nothing ($rc): $out"
"$VITA" cmvn >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok || bad "cmvn without inputs gave $rc"
echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]
