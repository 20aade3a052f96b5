# ctest-labels: unit
# vita embed: an InternViT directory (HF names; the tiny tower of tests/fixtures/vit_tiny) and a
# VITA-named one; an image's tiles through the tower (and adapter), the tensors' names and
# shapes in the file written; a config of another model and a missing image are failures.
set -u
fail=0 n=0
check() { # check NAME EXPECTED_RC PATTERN -- CMD...
  local name=$1 want=$2 pat=$3; shift 4
  local out rc
  n=$((n+1))
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$want" ]; then echo "FAIL $name: exit $rc, want $want: $out"; fail=$((fail+1)); return; fi
  if ! grep -aqE -- "$pat" <<<"$out"; then echo "FAIL $name: output lacks /$pat/: $out"; fail=$((fail+1)); return; fi
  echo "ok $name"
}
d=$PWD/vit_embed
rm -rf "$d" && mkdir -p "$d/ivit"
cat >"$d/ivit/config.json" <<'J'
{"model_type": "intern_vit_6b", "image_size": 56, "patch_size": 14, "hidden_size": 32,
 "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
 "layer_norm_eps": 1e-6, "norm_type": "layer_norm", "qk_normalization": false}
J
ln -s "$VT_FIXTURES/vit_tiny/model.safetensors" "$d/ivit/model.safetensors"
img=$VT_FIXTURES/image
# with 56-pixel tiles a 240x210 image is large: at most 1 tile, the 1x1 grid
check ivit 0 "1 tiles \(grid 1x1\) -> vision_features \[1, 4, 128\]" -- \
  "$VITA" embed --weights "$d/ivit" --image "$img/photo_a.png" --max-tiles 1 --out "$d/a.safetensors"
check ivit-header 0 '"vision_features":\{"dtype":"F32","shape":\[1,4,128\]' -- head -c 300 "$d/a.safetensors"
check ivit-hidden 0 '"vision_hidden":\{"dtype":"F32","shape":\[1,17,32\]' -- head -c 300 "$d/a.safetensors"
check ivit-tiles 0 "7 tiles \(grid 3x2 \+ thumbnail\) -> vision_features \[7, 4, 128\]" -- \
  "$VITA" embed --weights "$d/ivit" --image "$img/synth_rgb.png" --max-tiles 6
check not-vision 1 "model_type.*expected \"vita-Qwen2\" or \"intern_vit_6b\"" -- \
  "$VITA" embed --weights "$VT_FIXTURES/qwen2_tiny" --image "$img/photo_a.png"
check no-image 1 "unreadable image" -- "$VITA" embed --weights "$d/ivit" --image "$d/none.png"
check usage 2 "give --weights DIR and --image FILE" -- "$VITA" embed --image "$img/photo_a.png"
echo "$((n - fail)) passed, $fail failed"
[ "$fail" = 0 ]
