# ctest-labels: unit
# vita plan and vita info --stage on the full-size stage configs: the counts the model gives,
# memory that falls as ZeRO shards more, the fit verdict, and usage errors that name the flag.
set -u
fail=0
ok() { :; }
bad() { echo "FAIL $1: $2"; fail=1; }
s="$VT_SOURCE_DIR/configs/stages"
out=$("$VITA" plan --config "$s/1.1.yaml" --world 8 --zero 2 --memory 80GiB 2>&1) || bad 1.1 "$out"
grep -q '^parameters: 8,322,947,232, trainable 27,532,288$' <<<"$out" || bad "1.1 counts" "$out"
grep -q 'vision .*(no gradients reach it)' <<<"$out" || bad "1.1 frozen tower" "$out"
grep -q '^fits 80.00 GiB: ' <<<"$out" || bad "1.1 fit line" "$out"
# ZeRO 0 -> 1 -> 2: the optimizer state shrinks, then the gradients held between steps (CPU
# ranks drop the pages other ranks own; the peak of backward is the whole buffer)
opt() { "$VITA" plan --config "$s/1.2.yaml" --world 8 --zero "$1" | awk '/optimizer/ {print $2}'; }
o0=$(opt 0); o1=$(opt 1)
g1=$("$VITA" plan --config "$s/1.2.yaml" --world 8 --zero 1 | awk '/gradients/ {print $2}')
g2=$("$VITA" plan --config "$s/1.2.yaml" --world 8 --zero 2 | awk '/gradients/ {print $9}')
awk -v a="$o0" -v b="$o1" 'BEGIN {exit !(b < a / 7.9)}' || bad "zero 1 optimizer" "$o0 -> $o1"
awk -v a="$g1" -v b="$g2" 'BEGIN {exit !(b < a / 7)}' || bad "zero 2 gradients" "$g1 -> $g2"
# bf16 ZeRO 1 keeps the GEMM weights' f32 masters for one shard: CPU ranks return the pages,
# GPU ranks the 2 MiB chunks of the rest (the same figure, with a note on the rounding)
w() { "$VITA" plan --config "$s/qwen2.5-7b-sft.yaml" --world 8 --precision bf16 "$@" | awk '/ weights/ {print $2}'; }
w0=$(w --zero 0); w1=$(w --zero 1); wg=$(w --zero 1 --device cuda)
awk -v a="$w0" -v b="$w1" -v g="$wg" 'BEGIN {exit !(b < a / 2 && g == b)}' || bad "bf16 masters" "$w0 -> $w1 (cuda $wg)"
out=$("$VITA" plan --config "$s/qwen2.5-7b-sft.yaml" --world 8 --precision bf16 --zero 1 --device cuda)
grep -q 'GPUs release masters in 2 MiB chunks: each of the [0-9]* runs of kept' <<<"$out" ||
  bad "cuda chunk note" "$out"
out=$("$VITA" plan --config "$s/qwen2.5-7b-sft.yaml" --world 8 --precision bf16 --zero 1)
! grep -q 'MiB chunks' <<<"$out" || bad "no chunk note on CPU ranks" "$out"
# a small enough stage fits; the 7B stages do not fit one 80 GiB GPU unsharded
out=$("$VITA" plan --config "$s/3.2.yaml" --world 1 --batch 1 --tokens 64 --memory 80GiB 2>&1)
grep -q '^fits 80.00 GiB: yes$' <<<"$out" || bad "3.2 fits" "$out"
out=$("$VITA" plan --config "$s/1.3.yaml" --memory 80GiB 2>&1)
grep -q '^fits 80.00 GiB: no$' <<<"$out" || bad "1.3 does not fit" "$out"
out=$("$VITA" info --stage "$s/qwen2.5-7b-sft.yaml" 2>&1) || bad "info --stage" "$out"
grep -q '^FLOPs: .* per sample' <<<"$out" || bad "info --stage flops" "$out"
for args in "--world 0" "--zero 3" "--memory lots" "--precision fp8"; do
  out=$("$VITA" plan --config "$s/1.1.yaml" $args 2>&1); rc=$?
  [ $rc = 2 ] && grep -q -- "${args%% *}" <<<"$out" || bad "usage $args ($rc)" "$out"
done
out=$("$VITA" plan --world 2 2>&1); rc=$?
[ $rc = 2 ] || bad "no config ($rc)" "$out"
echo "done, $fail failed"
[ $fail = 0 ]
