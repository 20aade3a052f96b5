# ctest-labels: unit
# vita info on the full-size VITA-1.5 config: the vision tower (about 0.30B), the mlp2x_gelu
# adapter (27.5M), the LLM (7.6B), the audio encoder (about 0.36B) and the audio adapter (17.8M)
# counted apart, and their sum (with the 160 CMVN buffer values).
set -u
out=$("$VITA" info "$VT_SOURCE_DIR/configs/models/vita-1.5.json" 2>&1) || { echo "FAIL: $out"; exit 1; }
fail=0
for pat in "model: vita" "InternViT 24 layers, hidden 1024, 448px / 14 \(304012288 params\)" \
  "mlp2x_gelu 4096 -> 3584 \(27532288 params\)" "Qwen2 28 layers, hidden 3584, vocab 152064 \(7615616512 params\)" \
  "audio encoder 24 layers, hidden 1024 \(357950464 params\)" \
  "adapter 1024 -> 3584, 0 prompts \(17835520 params\)" "parameters: 8,322,947,232"; do
  grep -qE -- "$pat" <<<"$out" || { echo "FAIL: no /$pat/ in: $out"; fail=$((fail+1)); }
done
echo "$((7 - fail)) passed, $fail failed"
[ "$fail" = 0 ]
