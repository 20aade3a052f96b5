#!/usr/bin/env bash
# Data-parallel figures on 2 local CPU ranks (bench/bench_dist.c): MPI all-reduce and
# reduce-scatter bandwidth for 1 MB to 256 MB, the Qwen2 bench model's step time on 1 rank and
# on 2 ranks without and with overlap, and the peak memory per rank at ZeRO 0, 1 and 2.
#   bench/run_dist.sh BUILD_DIR [STEPS] [THREADS_PER_RANK] [-- bench_dist options]
# Each rank gets THREADS_PER_RANK OpenMP threads (default: half the cores); on a machine
# with fewer than 2 x THREADS free cores the two ranks compete and the overhead includes it.
# The step times come in rounds (`-- --rounds R`, default 5): every round runs each setting
# (1 rank, 2 ranks without communication, without overlap, with overlap, the --sweep sizes)
# for a warmup and STEPS timed steps, so that a drifting machine load falls on all alike; each
# overhead is the median over the rounds of the ratio to 1 rank in the same round, with the
# smallest and largest, next to each rank's CPU time (the work, whatever the machine's load;
# waits sleep) and the communication backward did not hide. BENCH_PROFILE=1 adds the phases.
# `-- --sweep MB,MB` sets the extra bucket sizes (default 25), `-- --parts s` runs only the
# step times. The RESULT line holds the targets (overhead_overlap_pct, its min and max over
# the rounds, cpu_overhead_overlap_pct).
set -euo pipefail
build=${1:?usage: bench/run_dist.sh BUILD_DIR [STEPS] [THREADS_PER_RANK] [-- options]}
steps=${2:-5}
threads=${3:-$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" != "--" ] || shift
command -v mpirun >/dev/null || { echo "run_dist.sh: mpirun not found" >&2; exit 1; }
args=(-np 2 --oversubscribe -x OMP_NUM_THREADS="$threads" -x OPENBLAS_NUM_THREADS="$threads")
[ "$(id -u)" != 0 ] || args+=(--allow-run-as-root)
# without options: the 4 MB default and, in the same run, 25 MB (the config default)
[ $# -gt 0 ] || set -- --sweep 25
exec mpirun "${args[@]}" "$build/bench/bench_dist" "$steps" "$@"
