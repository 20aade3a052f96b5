# ctest-labels: unit
# vita codec: init a tiny codec, decode tokens to a wav of the right duration, encode that wav
# back to as many tokens, decode with VITA-1.5's fixed global tokens, export to the release
# layout and import back (same tokens, same speech, same bytes), and the errors that name the
# file, the line and the field.
set -u
fail=0; n=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() { n=$((n + 1)); if ! eval "$1"; then echo "FAIL: $2"; fail=$((fail + 1)); fi; }

out=$("$VITA" codec init --config "$VT_SOURCE_DIR/configs/tiny/codec.json" --out "$tmp/c" --seed 3 2>&1)
check '[ $? = 0 ] && [ -f "$tmp/c/config.json" ] && [ -f "$tmp/c/model.safetensors" ]' "init: $out"
# 50 frames of hop 600: 30000 samples, 1.25 s
{ echo "# hand-written"; printf 'global 1 2 3 4 5 6 7 8\n'; for i in $(seq 0 49); do printf '%d ' $((i * 17 % 1024)); done; echo; } > "$tmp/t.txt"
out=$("$VITA" codec decode "$tmp/t.txt" --weights "$tmp/c" --out "$tmp/a.wav" 2>&1)
check '[ $? = 0 ] && grep -q "50 tokens -> .*(1.250 s at 24000 Hz)" <<<"$out"' "decode: $out"
check '[ "$(stat -c %s "$tmp/a.wav")" = $((44 + 2 * 30000)) ]' "wav size $(stat -c %s "$tmp/a.wav" 2>/dev/null)"
out=$("$VITA" codec encode "$tmp/a.wav" --weights "$tmp/c" --out "$tmp/b.txt" 2>&1)
check '[ $? = 0 ] && grep -q "^global( [0-9]+){8}$" -E "$tmp/b.txt"' "encode: $out $(head -3 "$tmp/b.txt" 2>/dev/null)"
check '[ "$(grep -v "^#" "$tmp/b.txt" | grep -v "^global" | wc -w)" = 50 ]' "encode: token count"
# no global line: VITA-1.5's fixed global tokens
grep -v '^global' "$tmp/t.txt" > "$tmp/t2.txt"
out=$("$VITA" codec decode "$tmp/t2.txt" --weights "$tmp/c" --out "$tmp/c.wav" 2>&1)
check '[ $? = 0 ] && [ "$(stat -c %s "$tmp/c.wav")" = $((44 + 2 * 30000)) ]' "fixed global tokens: $out"
# errors
printf 'global 1 2 3 4 5 6 7 8\n3 1024 5\n' > "$tmp/bad.txt"
out=$("$VITA" codec decode "$tmp/bad.txt" --weights "$tmp/c" --out "$tmp/d.wav" 2>&1); rc=$?
check '[ $rc = 1 ] && grep -q "bad.txt:2: expected a token id in \[0, 1024), found \"1024" <<<"$out"' "range ($rc): $out"
printf 'global 1 2 3\n3 4\n' > "$tmp/bad2.txt"
out=$("$VITA" codec decode "$tmp/bad2.txt" --weights "$tmp/c" --out "$tmp/d.wav" 2>&1); rc=$?
check '[ $rc = 1 ] && grep -q "bad2.txt:1: global: expected 8 tokens" <<<"$out"' "global count ($rc): $out"
printf 'RIFFxxxxWAVEjunk' > "$tmp/bad.wav"
out=$("$VITA" codec encode "$tmp/bad.wav" --weights "$tmp/c" 2>&1); rc=$?
check '[ $rc = 1 ] && grep -q "bad.wav: no fmt and data chunks" <<<"$out"' "bad wav ($rc): $out"
out=$("$VITA" codec encode "$tmp/a.wav" 2>&1); rc=$?
check '[ $rc = 2 ] && grep -q -- "--weights DIR is required" <<<"$out"' "usage ($rc): $out"
sed 's/"segment_size": 4800/"segment_size": 4801/' "$VT_SOURCE_DIR/configs/tiny/codec.json" > "$tmp/badcfg.json"
out=$("$VITA" codec init --config "$tmp/badcfg.json" --out "$tmp/e" 2>&1); rc=$?
check '[ $rc = 1 ] && grep -q "badcfg.json: field \"segment_size\": 4801 must be a positive multiple of the hop 600" <<<"$out"' "bad config ($rc): $out"
# the release layout (vita_tts_ckpt/codec/): model.json + encoder, quantizer and generator only
out=$("$VITA" codec export --weights "$tmp/c" --out "$tmp/rel" 2>&1)
check '[ $? = 0 ] && grep -q "codec export: [0-9]* tensors" <<<"$out"' "export: $out"
check 'grep -q "\"model_type\": \"ticodec\"" "$tmp/rel/model.json" && grep -q "\"upsample_rates\"" "$tmp/rel/model.json"' "release model.json"
hdr() { head -c $((8 + $(od -A n -t u8 -N 8 "$1" | tr -d ' '))) "$1" | tail -c +9; }
hdr "$tmp/rel/model.safetensors" | grep -o '"[a-z_]*\.[a-zA-Z0-9_.]*":' | tr -d '":' | sort >"$tmp/names.txt"
check 'grep -q "^generator\.ups\.0\.weight_g$" "$tmp/names.txt" && grep -q "^generator\.ups\.0\.weight_v$" "$tmp/names.txt"' "weight_g/weight_v names"
check 'grep -q "^quantizer\.quantizer_modules\.0\.embedding\.weight$" "$tmp/names.txt" && grep -q "^encoder\." "$tmp/names.txt"' "quantizer/encoder names"
check '! grep -q -E "^(mpd|msd|mstftd)\." "$tmp/names.txt" && ! grep -q -v -E "^(encoder|quantizer|generator)\." "$tmp/names.txt"' "only release tensors: $(grep -v -E '^(encoder|quantizer|generator)\.' "$tmp/names.txt" | head -3)"
# import it back: the same tokens and the same speech; exported again, the same bytes
out=$("$VITA" codec import "$tmp/rel" --out "$tmp/c2" 2>&1)
check '[ $? = 0 ] && grep -q "codec import: $(wc -l <"$tmp/names.txt") tensors" <<<"$out"' "import: $out"
"$VITA" codec encode "$tmp/a.wav" --weights "$tmp/c2" --out "$tmp/b2.txt" >/dev/null 2>&1
check 'cmp -s <(grep -v "^#" "$tmp/b.txt") <(grep -v "^#" "$tmp/b2.txt")' "imported codec encodes differently"
"$VITA" codec decode "$tmp/t.txt" --weights "$tmp/c2" --out "$tmp/a2.wav" >/dev/null 2>&1
check 'cmp -s "$tmp/a.wav" "$tmp/a2.wav"' "imported codec decodes differently"
"$VITA" codec export --weights "$tmp/c2" --out "$tmp/rel2" >/dev/null 2>&1
check 'cmp -s "$tmp/rel/model.safetensors" "$tmp/rel2/model.safetensors"' "export of the import differs"
# a release whose model.json does not match its weights is refused, naming a tensor and shapes
mkdir -p "$tmp/relbad" && cp "$tmp/rel/model.safetensors" "$tmp/relbad/"
sed 's/"encoder_channels": 4/"encoder_channels": 8/' "$tmp/rel/model.json" >"$tmp/relbad/model.json"
out=$("$VITA" codec import "$tmp/relbad" --out "$tmp/c3" 2>&1); rc=$?
check '[ $rc = 1 ] && grep -q "mismatched: encoder.conv_pre.weight_g (file \[4, 1, 1\] F32, parameter \[8, 1, 1\] F32)" <<<"$out"' "mismatch ($rc): $out"
# the full-size codec's parameter count (encoder, quantizer, generator and discriminators)
out=$("$VITA" info "$VT_SOURCE_DIR/configs/models/ticodec-vita.json" 2>&1)
check 'grep -q "hop 600 (4 stages), latent 512, 1024 codes, 8 global codebooks of 16" <<<"$out"' "info: $out"
echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]
