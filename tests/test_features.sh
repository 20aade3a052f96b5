# ctest-labels: unit
# vita features: the grid, tile and token counts of an image, the frame times of a video, the
# written pixel_values tensor (its header and size), and bad media as failures (exit 1) with the
# reason, bad options as usage errors (exit 2).
set -u
fail=0 n=0
check() { # check NAME EXPECTED_RC PATTERN -- CMD...
  local name=$1 want=$2 pat=$3; shift 4
  local out rc
  n=$((n+1))
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$want" ]; then echo "FAIL $name: exit $rc, want $want: $out"; fail=$((fail+1)); return; fi
  if ! grep -qE -- "$pat" <<<"$out"; then echo "FAIL $name: output lacks /$pat/: $out"; fail=$((fail+1)); return; fi
  echo "ok $name"
}
img=$VT_FIXTURES/image vid=$VT_FIXTURES/video out=$PWD/features_out
mkdir -p "$out"
# 512x600 -> aspect 0.853: the 3x4 grid (0.75) is nearest; 12 tiles + thumbnail
check image 0 "512x600, grid 3x4 \(columns x rows\) \+ thumbnail, 13 tiles, 3328 tokens" -- \
  "$VITA" features image "$img/photo_baseline.jpg" --out "$out/img.safetensors"
check image-max 0 "grid 1x1 .*, 1 tiles, 256 tokens" -- \
  "$VITA" features image "$img/photo_baseline.jpg" --max-tiles 1
check image-pad 0 "240x200, grid 1x1" -- "$VITA" features image "$img/photo_b.png" --aspect pad
check video 0 "frame times \(s\): 0.000 1.000 2.000 3.000 4.000 5.000 6.000$" -- \
  "$VITA" features video "$vid/c7s_10fps.mp4" --out "$out/vid.safetensors"
check video-rate 0 "100 frames at 5.000 fps \(20.00 s\), 16 picked, 4096 tokens" -- \
  "$VITA" features video "$vid/c20s_5fps.avi" --rate 3
check folder 0 "8 frames at 1.000 fps .* 8 picked" -- "$VITA" features video "$vid/frames"
check cmyk 1 "CMYK JPEG: .*cmyk.jpg: JPEG with 4 components" -- "$VITA" features image "$img/cmyk.jpg"
check bomb 1 "image too large: .*10000 x 10000" -- "$VITA" features image "$img/bomb.png"
check no-video 1 "no video stream" -- "$VITA" features video "$vid/audio_only.m4a"
check bad-kind 2 "KIND is one of" -- "$VITA" features sound "$img/cmyk.jpg"
check bad-aspect 2 "--aspect: expected square or pad, found 'wide'" -- \
  "$VITA" features image "$img/photo_a.png" --aspect wide
# the files: safetensors header naming pixel_values with its shape, then 4 bytes a value
check img-header 0 '"pixel_values":\{"dtype":"F32","shape":\[13,3,448,448\]' -- \
  head -c 200 "$out/img.safetensors"
check vid-header 0 '"shape":\[7,3,448,448\]' -- head -c 200 "$out/vid.safetensors"
hdr=$(od -An -t u8 -N 8 "$out/img.safetensors" | tr -d ' ')
size=$(stat -c %s "$out/img.safetensors")
check img-size 0 "^$((8 + hdr + 13 * 3 * 448 * 448 * 4))$" -- echo "$size"
echo "$((n - fail)) passed, $fail failed"
[ "$fail" = 0 ]
