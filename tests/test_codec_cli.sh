# ctest-labels: unit
# vita codec: init a tiny codec, decode tokens to a wav of the right duration, encode that wav
# back to as many tokens, decode with VITA-1.5's fixed global tokens, export to the release
# layout and import back (same tokens, same speech, same bytes), import the public release's torch
# form (model.json + final.pt) to the same weights as our safetensors export of it, and the errors
# that name the file, the line and the field.
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
# the public release's torch form (TiCodec's model.json + final.pt, written by torch.save in
# tests/reference/gen_torch_release_fixture.py) and our bf16 safetensors export of the same tensors
# import to the same bytes: every weight, and the discriminators from the same seed
pt="$VT_FIXTURES/torch_release/pt/vita_tts_ckpt/codec" st="$VT_FIXTURES/torch_release/st/vita_tts_ckpt/codec"
out=$("$VITA" codec import "$pt" --out "$tmp/ipt" --seed 5 2>&1)
check '[ $? = 0 ] && grep -q "codec import: 157 tensors from .*final.pt (torch pickle)" <<<"$out" && grep -q "final.pt: 2 tensors skipped" <<<"$out"' "torch import: $out"
out=$("$VITA" codec import "$st" --out "$tmp/ist" --seed 5 2>&1)
check '[ $? = 0 ] && grep -q "codec import: 157 tensors from .*/st/vita_tts_ckpt/codec ->" <<<"$out"' "safetensors import: $out"
check 'cmp -s "$tmp/ipt/model.safetensors" "$tmp/ist/model.safetensors" && cmp -s "$tmp/ipt/config.json" "$tmp/ist/config.json"' "torch and safetensors imports differ"
check '[ ! -e "$tmp/ipt/.final-pt.safetensors" ] && [ "$(ls -A "$tmp/ipt" | wc -l)" = 2 ]' "staging left: $(ls -A "$tmp/ipt")"
# the weights file itself (model.json beside it), either form
"$VITA" codec import "$pt/final.pt" --out "$tmp/iptf" --seed 5 >/dev/null 2>&1
"$VITA" codec import "$st/model.safetensors" --out "$tmp/istf" --seed 5 >/dev/null 2>&1
check 'cmp -s "$tmp/ipt/model.safetensors" "$tmp/iptf/model.safetensors" && cmp -s "$tmp/ipt/model.safetensors" "$tmp/istf/model.safetensors"' "import of the file differs"
# the same tokens and the same wave
"$VITA" codec encode "$tmp/a.wav" --weights "$tmp/ipt" --out "$tmp/tp.txt" >/dev/null 2>&1
"$VITA" codec encode "$tmp/a.wav" --weights "$tmp/ist" --out "$tmp/ts.txt" >/dev/null 2>&1
check '[ "$(grep -v "^#" "$tmp/tp.txt" | grep -v "^global" | wc -w)" = 50 ] && cmp -s <(grep -v "^#" "$tmp/tp.txt") <(grep -v "^#" "$tmp/ts.txt")' "torch import encodes differently"
"$VITA" codec decode "$tmp/tp.txt" --weights "$tmp/ipt" --out "$tmp/wp.wav" >/dev/null 2>&1
"$VITA" codec decode "$tmp/tp.txt" --weights "$tmp/ist" --out "$tmp/ws.wav" >/dev/null 2>&1
check '[ "$(stat -c %s "$tmp/wp.wav")" = $((44 + 2 * 30000)) ] && cmp -s "$tmp/wp.wav" "$tmp/ws.wav"' "torch import decodes differently"
# refusals, each naming the file and what is wrong, leaving no output behind
bad() { rm -rf "$tmp/b_$1"; mkdir -p "$tmp/b_$1"; cp "$pt/model.json" "$pt/final.pt" "$tmp/b_$1/"; }
refused() { # name, expected message (grep -E), [--out of an existing directory]
  local o="$tmp/o_$1" want="$2"; [ -n "${3:-}" ] && mkdir -p "$o"
  out=$("$VITA" codec import "$tmp/b_$1" --out "$o" 2>&1); rc=$?
  check '[ $rc = 1 ] && grep -q -E "$want" <<<"$out"' "refused $1 ($rc): $out"
  check '[ -z "$(ls -A "$o" 2>/dev/null)" ]' "refused $1 left: $(ls -A "$o" 2>/dev/null)"
}
bad trunc; head -c 100000 "$pt/final.pt" >"$tmp/b_trunc/final.pt"
refused trunc "b_trunc/final.pt: not a readable zip archive"
bad junk; printf 'PK\003\004junk' >"$tmp/b_junk/final.pt"
refused junk "b_junk/final.pt: not a readable zip archive" existing
bad crc; size=$(stat -c %s "$pt/final.pt")
printf '\377' | dd of="$tmp/b_crc/final.pt" bs=1 seek=$((size / 2)) conv=notrunc status=none
refused crc "b_crc/final.pt: final/data/[0-9]+: CRC error \(tensor [a-z_.0-9]+\)" existing
bad evil; cp "$VT_FIXTURES/torch_pt/evil.pt" "$tmp/b_evil/final.pt"
refused evil "b_evil/final.pt: evil/data.pkl: at byte [0-9]+: global posix.system: not allowed"
bad nojson; rm "$tmp/b_nojson/model.json"
refused nojson "b_nojson: final.pt without model.json \(the codec's sizes\)"
bad field; sed -i 's/"segment_size": 4800/"segment_size": 4801/' "$tmp/b_field/model.json"
refused field "b_field/model.json: field \"segment_size\": 4801 must be a positive multiple of the hop 600"
bad sizes; sed -i 's/"encoder_channels": 2/"encoder_channels": 4/' "$tmp/b_sizes/model.json"
refused sizes "b_sizes/final.pt: does not match the parameters: [0-9]+ mismatched: encoder.conv_pre.weight_g \(file \[2, 1, 1\] F32, parameter \[4, 1, 1\] F32\)"
bad none; rm "$tmp/b_none/final.pt"
refused none "b_none: no model.safetensors and no final.pt"
# the full-size codec's parameter count (encoder, quantizer, generator and discriminators)
out=$("$VITA" info "$VT_SOURCE_DIR/configs/models/ticodec-vita.json" 2>&1)
check 'grep -q "hop 600 (4 stages), latent 512, 1024 codes, 8 global codebooks of 16" <<<"$out"' "info: $out"
echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]
