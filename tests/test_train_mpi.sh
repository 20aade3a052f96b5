# ctest-labels: mpi e2e
# mpirun -np 2 vita train with batch 2 per rank gives the same losses (to f32 rounding) as
# one process with batch 4 on the same samples: ranks take interleaved slices of each
# epoch, and gradients are weighted by the global token count. A run checkpointed on 2 ranks
# resumes on 1 process with the same global batch and goes on with the same losses.
set -u
command -v mpirun >/dev/null || { echo "no mpirun: skipped"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
"$VITA" gen-data --out "$T/data" --samples 64 --vocab 96 --min-len 12 --max-len 30 >/dev/null || exit 1
config() { # config NAME BATCH [RUN_DIR]
  cat > "$T/$1.yaml" <<YAML
model: {config: $VT_FIXTURES/qwen2_tiny/config.json}
data: {mixture: data/mixture.yaml, max_len: 32}
train: {steps: 6, batch_size: $2, seed: 2, lr: 5.0e-3}
output: {dir: ${3:-$1}, log_every: 0}
YAML
}
config one 4
config two 2
config mixed2 2 mixed   # 3 steps on 2 ranks ...
config mixed4 4 mixed   # ... resumed by one process: checkpoints are by name, the cursor maps
"$VITA" train --config "$T/one.yaml" > "$T/one.txt" 2>&1 || { cat "$T/one.txt"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# through the launcher: two ranks on this node, one core each
"$VT_SOURCE_DIR/launch/mpirun_cpu.sh" -n 2 -- "$VITA" train --config "$T/two.yaml" > "$T/two.txt" 2>&1 || { cat "$T/two.txt"; exit 1; }
grep -q 'on 2 rank(s)' "$T/two.txt" || { echo "FAIL: not 2 ranks: $(cat "$T/two.txt")"; exit 1; }
mpirun --oversubscribe -np 2 "$VITA" train --config "$T/mixed2.yaml" --stop-after 3 > "$T/m2.txt" 2>&1 || { cat "$T/m2.txt"; exit 1; }
"$VITA" train --config "$T/mixed4.yaml" --resume > "$T/m4.txt" 2>&1 || { cat "$T/m4.txt"; exit 1; }
grep -q 'on 1 rank(s), resumed from' "$T/m4.txt" || { echo "FAIL: resume on 1 rank: $(cat "$T/m4.txt")"; exit 1; }
# compare every step's tokens and loss with the one-process run (f32 summation order only)
fields() { sed -E 's/.*"step": ([0-9]+), "loss": ([^,]+),.*"tokens": ([0-9]+),.*/\1 \2 \3/' "$1"; }
fields "$T/one/metrics.jsonl" > "$T/one.txt"
bad=0; n=0
for run in two mixed; do
  fields "$T/$run/metrics.jsonl" > "$T/$run.f"
  [ "$(wc -l < "$T/$run.f")" = 6 ] || { echo "FAIL $run: $(wc -l < "$T/$run.f") steps"; bad=$((bad+1)); }
  while read -r s1 l1 t1 s2 l2 t2; do
    n=$((n+1))
    if [ "$t1" = "$t2" ] && awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * (a < 0 ? -a : a)) }'; then
      echo "ok $run step $s1 $l1 $l2"
    else
      echo "FAIL $run step $s1: loss $l1 vs $l2, tokens $t1 vs $t2"; bad=$((bad+1))
    fi
  done < <(paste -d' ' "$T/one.txt" "$T/$run.f")
done
echo "$((n - bad)) passed, $bad failed"
[ $bad = 0 ]
