# ctest-labels: mpi e2e
# A dead rank ends the job: 2 ranks train (ZeRO 1, small buckets); once steps are running,
#  1. rank 1 is killed with SIGKILL: the job ends with an error naming rank 1 within 60 s;
#  2. rank 1 is stopped with SIGSTOP (alive but silent): rank 0's collective misses its
#     deadline (train.coll_timeout_s: 5) and the job ends within 60 s with an error naming
#     rank 0's collective and the timeout.
set -u
command -v mpirun >/dev/null || { echo "no mpirun: skipped"; exit 77; }
T=$(mktemp -d)
victim=""
cleanup() { [ -z "$victim" ] || kill -KILL "$victim" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cd "$T" || exit 1
"$VITA" gen-data --out data --samples 64 --vocab 96 --min-len 12 --max-len 30 >/dev/null || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
fail=0

# the pid of rank R of the job whose config is CONFIG (from the launcher's environment)
rank_pid() {
  for e in /proc/[0-9]*/environ; do
    local pid=${e#/proc/}; pid=${pid%/environ}
    tr '\0' '\n' < "$e" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" || continue
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" && { echo "$pid"; return; }
  done
}

trial() { # trial NAME SIGNAL EXPECT_REGEX
  local name=$1 sig=$2 want=$3
  cat > "$name.yaml" <<YAML
model: {config: $VT_FIXTURES/qwen2_tiny/config.json}
data: {mixture: data/mixture.yaml, max_len: 32}
train: {steps: 100000, batch_size: 2, seed: 2, lr: 1.0e-3, zero: 1, bucket_mb: 0.01, coll_timeout_s: 5}
output: {dir: $name, log_every: 0}
YAML
  timeout 120 mpirun --oversubscribe -np 2 "$VITA" train --config "$T/$name.yaml" > "$name.log" 2>&1 &
  local job=$!
  # wait for a few steps on both ranks
  for _ in $(seq 600); do
    [ -f "$name/metrics.jsonl" ] && [ "$(wc -l < "$name/metrics.jsonl")" -ge 3 ] && break
    sleep 0.1
  done
  victim=$(rank_pid 1 "$T/$name.yaml")
  if [ -z "$victim" ]; then
    echo "FAIL $name: rank 1 not found"; kill "$job"; fail=$((fail + 1)); return
  fi
  local t0=$SECONDS
  kill "-$sig" "$victim"
  wait "$job"
  local rc=$? took=$((SECONDS - t0))
  kill -KILL "$victim" 2>/dev/null
  victim=""
  if [ $rc = 0 ] || [ $rc = 124 ] || [ $took -gt 60 ]; then
    echo "FAIL $name: exit $rc after $took s"; cat "$name.log"; fail=$((fail + 1)); return
  fi
  if ! grep -Eq "$want" "$name.log"; then
    echo "FAIL $name: no message matching '$want':"; cat "$name.log"; fail=$((fail + 1)); return
  fi
  echo "ok $name: SIG$sig on rank 1 ended the job in $took s (exit $rc): $(grep -Em1 "$want" "$name.log")"
}

trial killed KILL 'rank 1'
trial stopped STOP 'rank 0 of 2: .* timed out after 5 s'
[ $fail = 0 ]
