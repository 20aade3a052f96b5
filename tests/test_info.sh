# ctest-labels: unit
# vita info reports the exact parameter count of Qwen2.5-7B from its config alone, and
# names the field of a broken config.
set -u
fail=0
out=$("$VITA" info "$VT_SOURCE_DIR/configs/models/qwen2.5-7b.json" 2>&1) || { echo "FAIL: $out"; fail=1; }
grep -q '^parameters: 7,615,616,512$' <<<"$out" || { echo "FAIL count: $out"; fail=1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed 's/"hidden_size": 3584/"hidden_size": "wide"/' "$VT_SOURCE_DIR/configs/models/qwen2.5-7b.json" > "$tmp/config.json"
out=$("$VITA" info "$tmp" 2>&1); rc=$?
[ $rc = 1 ] && grep -q 'field "hidden_size": expected an integer' <<<"$out" || { echo "FAIL bad field ($rc): $out"; fail=1; }
out=$("$VITA" info "$VT_FIXTURES/qwen2_tiny" 2>&1) || { echo "FAIL tiny: $out"; fail=1; }
grep -q 'rope theta 10000' <<<"$out" || { echo "FAIL rope_parameters: $out"; fail=1; }
echo "$((3 - fail)) passed, $fail failed"
[ $fail = 0 ]
