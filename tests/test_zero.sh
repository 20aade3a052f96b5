# ctest-labels: mpi e2e
# ZeRO on CPU ranks: `vita train` with train.zero 0, 1 and 2 on 2 ranks and 1, 2 on 3 ranks
# (uneven shards: the store's length is no multiple of 3) gives, step by step, the losses of
# one process on the same global batch (to f32 reduction order), and final weights whose eval
# loss is the same. Checkpoints hold each rank's optimizer shard by parameter name, so a run
# of 2 ranks at ZeRO 2 resumes on 3 ranks at ZeRO 1, and one of 3 ranks at ZeRO 2 on one
# process at ZeRO 0, and both go on with the reference's losses. Small buckets (train.bucket_mb)
# make the reduction overlap backward over many buckets. The same under precision bf16 (ZeRO
# 1/2 on 2 and 3 ranks, a resume 2 -> 3 ranks) against one bf16 process, within a tolerance
# derived from bf16 rounding, where the GEMM weights' f32 masters are sharded (ZeRO 1 on 2 ranks
# equals ZeRO 0 on 2 ranks bit for bit, weights included), also with stochastic rounding, and a
# resume 3 -> 1; a bf16 resume on the same ranks equals the uninterrupted run bit for bit and
# leaves the released masters' pages out of memory. test_dist_zero runs on 3 ranks too.
set -u
command -v mpirun >/dev/null || { echo "no mpirun: skipped"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
B=$PWD # the test binaries
cd "$T" || exit 1
"$VITA" gen-data --out data --samples 64 --vocab 96 --min-len 12 --max-len 30 >/dev/null || exit 1
config() { # config NAME BATCH ZERO [RUN_DIR] [PRECISION] [STOCHASTIC_ROUNDING]
  cat > "$1.yaml" <<YAML
model: {config: $VT_FIXTURES/qwen2_tiny/config.json}
data: {mixture: data/mixture.yaml, max_len: 32}
train: {steps: 6, batch_size: $2, seed: 2, lr: 5.0e-3, max_grad_norm: 1.0, zero: $3, bucket_mb: 0.01, precision: ${5:-fp32}${6:+, stochastic_rounding: $6}}
output: {dir: ${4:-$1}, log_every: 0}
YAML
}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
fail=0
fields() { sed -E 's/.*"step": ([0-9]+), "loss": ([^,]+),.*"tokens": ([0-9]+),.*/\1 \2 \3/' "$1"; }
run() { # run NP NAME [ARGS...]: vita train on NP ranks (1: one process)
  local np=$1 name=$2; shift 2
  if [ "$np" = 1 ]; then
    "$VITA" train --config "$name.yaml" "$@" > "$name.log" 2>&1
  else
    timeout 300 mpirun --oversubscribe -np "$np" "$VITA" train --config "$name.yaml" "$@" > "$name.log" 2>&1
  fi || { echo "FAIL: $name on $np rank(s):"; cat "$name.log"; fail=$((fail + 1)); }
}
config one 6 0;  run 1 one
config z0 3 0;   run 2 z0
config z1 3 1;   run 2 z1
config z2 3 2;   run 2 z2
config t1 2 1;   run 3 t1
config t2 2 2;   run 3 t2
grep -q 'on 3 rank(s)' t2.log || { echo "FAIL: t2 did not run on 3 ranks"; fail=$((fail + 1)); }
# resume across world sizes and stages: 2 ranks ZeRO 2 -> 3 ranks ZeRO 1; 3 ranks ZeRO 2 -> 1
config a2 3 2 ra; run 2 a2 --stop-after 3
config a3 2 1 ra; run 3 a3 --resume
config b3 2 2 rb; run 3 b3 --stop-after 3
config b1 6 0 rb; run 1 b1 --resume
# bf16 compute copies over the f32 masters: ZeRO 1 and 2 on 2 and 3 ranks against one bf16
# process, and a bf16 resume across world sizes and stages (the masters are checkpointed)
config hone 6 0 hone bf16; run 1 hone
config hz1 3 1 hz1 bf16;   run 2 hz1
config hz2 3 2 hz2 bf16;   run 2 hz2
config ht1 2 1 ht1 bf16;   run 3 ht1
config ht2 2 2 ht2 bf16;   run 3 ht2
config ha2 3 2 rha bf16; run 2 ha2 --stop-after 3
config ha3 2 1 rha bf16; run 3 ha3 --resume
config hb3 2 2 rhb bf16; run 3 hb3 --stop-after 3
config hb1 6 0 rhb bf16; run 1 hb1 --resume
grep -q 'on 3 rank(s), resumed from' ha3.log || { echo "FAIL: bf16 2 -> 3 ranks did not resume"; fail=$((fail + 1)); }
grep -q 'on 1 rank(s), resumed from' hb1.log || { echo "FAIL: bf16 3 -> 1 ranks did not resume"; fail=$((fail + 1)); }
# sharded f32 masters: the GEMM weights' masters are sharded at ZeRO 1 and 2 (the ranks say so),
# and ZeRO 1 on 2 ranks equals ZeRO 0 on 2 ranks bit for bit (the same all-reduced gradients,
# the same roundings): the losses, and the checkpoint's f32 weights, gathered from the shards
config hz0 3 0 hz0 bf16; run 2 hz0
for run in hz1 hz2 ht1 ht2 ha2 ha3 hb3; do
  grep -q 'f32 masters sharded: [0-9,]* values' $run.log || { echo "FAIL: $run did not shard the f32 masters"; fail=$((fail + 1)); }
done
if cmp -s <(fields hz0/metrics.jsonl) <(fields hz1/metrics.jsonl) &&
   cmp -s hz0/checkpoints/step-00000006/model.safetensors hz1/checkpoints/step-00000006/model.safetensors; then
  echo "ok bf16 ZeRO 1 with sharded masters = ZeRO 0 on 2 ranks, losses and saved weights bit for bit"
else
  echo "FAIL: bf16 ZeRO 1 with sharded masters differs from ZeRO 0 on 2 ranks"; fail=$((fail + 1))
fi
# stochastic rounding is keyed by the store offset: 1 process, 2 ranks at ZeRO 2 and 3 at ZeRO 1
# round the same values the same way
config sone 6 0 sone bf16 true; run 1 sone
config sz2 3 2 sz2 bf16 true;   run 2 sz2
# a bf16 resume on the same ranks and stage: the masters are sharded before the restore, which
# loads each rank's shard of them only (their released pages are never resident: the run says
# how many are), and the run equals the uninterrupted one bit for bit, losses and saved weights
config hr1 3 1 rhr1 bf16;      run 2 hr1 --stop-after 3; run 2 hr1 --resume
config hr2 3 2 rhr2 bf16 true; run 2 hr2 --stop-after 3; run 2 hr2 --resume
for pair in "hr1 hz1" "hr2 sz2"; do
  set -- $pair
  d=r$1
  if grep -q 'on 2 rank(s), resumed from' "$1.log" &&
     grep -Eq 'after the restore 0 of [1-9][0-9]* released whole pages resident' "$1.log" &&
     cmp -s <(fields "$d/metrics.jsonl") <(fields "$2/metrics.jsonl") &&
     cmp -s "$d/checkpoints/step-00000006/model.safetensors" "$2/checkpoints/step-00000006/model.safetensors"; then
    echo "ok bf16 resume $1: released masters not resident after the restore; equals $2 bit for bit"
  else
    echo "FAIL: bf16 resume $1 (against $2):"; grep -h 'masters sharded\|resumed' "$1.log"; fail=$((fail + 1))
  fi
done
config st1 2 1 st1 bf16 true;   run 3 st1
grep -q 'on 3 rank(s), resumed from' a3.log || { echo "FAIL: 2 -> 3 ranks did not resume"; fail=$((fail + 1)); }
grep -q 'on 1 rank(s), resumed from' b1.log || { echo "FAIL: 3 -> 1 ranks did not resume"; fail=$((fail + 1)); }
ls ra/checkpoints/step-00000003/optim-rank-00001-of-00002.safetensors \
   ra/checkpoints/step-00000006/optim-rank-00002-of-00003.safetensors >/dev/null ||
  { echo "FAIL: no per-rank optimizer shards in the checkpoints"; fail=$((fail + 1)); }

fields one/metrics.jsonl > one.f
n=0
for run in z0 z1 z2 t1 t2 ra rb; do
  fields "$run/metrics.jsonl" > "$run.f"
  [ "$(wc -l < "$run.f")" = 6 ] || { echo "FAIL $run: $(wc -l < "$run.f") steps"; fail=$((fail + 1)); }
  while read -r s1 l1 t1 s2 l2 t2; do
    n=$((n + 1))
    if [ "$t1" = "$t2" ] && awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * (a < 0 ? -a : a)) }'; then
      echo "ok $run step $s1 $l1 $l2"
    else
      echo "FAIL $run step $s1: loss $l1 vs $l2, tokens $t1 vs $t2"; fail=$((fail + 1))
    fi
  done < <(paste -d' ' one.f "$run.f")
done
# bf16: the ranks reduce the f32 gradients in another order, so a master can differ from the
# reference's in its last f32 bits and its bf16 copy then round the other way (2^-8 relative);
# a few such flips move the loss by far less than 1e-3 of it, while copies left stale after
# the all-gather (or a wrong shard) move it by more within these 6 steps
fields hone/metrics.jsonl > hone.f
fields sone/metrics.jsonl > sone.f
for run in hz1 hz2 ht1 ht2 rha rhb sz2 st1; do
  ref=hone.f
  case $run in s*) ref=sone.f ;; esac
  fields "$run/metrics.jsonl" > "$run.f"
  [ "$(wc -l < "$run.f")" = 6 ] || { echo "FAIL $run: $(wc -l < "$run.f") steps"; fail=$((fail + 1)); }
  while read -r s1 l1 t1 s2 l2 t2; do
    n=$((n + 1))
    if [ "$t1" = "$t2" ] && awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-3 * (a < 0 ? -a : a)) }'; then
      echo "ok bf16 $run step $s1 $l1 $l2"
    else
      echo "FAIL bf16 $run step $s1: loss $l1 vs $l2, tokens $t1 vs $t2"; fail=$((fail + 1))
    fi
  done < <(paste -d' ' "$ref" "$run.f")
done
# the final weights: their eval loss over the whole set (printed to 6 decimals)
eval_loss() { "$VITA" eval --config one.yaml --weights "$1/checkpoints/step-00000006" --data data/mixture.yaml 2>&1 | sed -nE 's/^eval: loss ([0-9.]+) .*/\1/p'; }
# check_weights REF TOL LABEL RUN...: each run's final eval loss within TOL of REF
check_weights() {
  local r=$1 tol=$2 label=$3 run got; shift 3
  for run in "$@"; do
    got=$(eval_loss "$run")
    if [ -n "$got" ] && awk -v a="$r" -v b="$got" -v t="$tol" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; then
      echo "ok $label$run weights: eval loss $got (reference $r)"
    else
      echo "FAIL $label$run weights: eval loss '$got', reference $r"; fail=$((fail + 1))
    fi
  done
}
ref=$(eval_loss one)
[ -n "$ref" ] || { echo "FAIL: no eval loss for the reference"; exit 1; }
check_weights "$ref" 3e-6 "" z0 z1 z2 t1 t2 ra rb
# bf16: the f32 weights the checkpoints hold (gathered from the sharded masters) against the
# bf16 reference's, to the bf16 runs' tolerance
href=$(eval_loss hone)
check_weights "$href" "$(awk -v a="$href" 'BEGIN { print 1e-3 * a }')" "bf16 " hz2 ht1 rhb
# the units below the trainer on 3 ranks (ctest runs them on 2): uneven shards
if [ -x "$B/test_dist_zero" ]; then
  timeout 300 mpirun --oversubscribe -np 3 "$B/test_dist_zero" > units3.log 2>&1 ||
    { echo "FAIL: test_dist_zero on 3 ranks:"; cat units3.log; fail=$((fail + 1)); }
  grep -h "passed" units3.log
fi
echo "$n loss comparisons; $fail failure(s)"
[ $fail = 0 ]
