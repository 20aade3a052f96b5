#!/usr/bin/env bash
# Data-parallel training on CPU ranks with Open MPI: RANKS processes spread over this node (or
# the nodes of a hostfile), each given an equal share of its node's cores for OpenMP and
# OpenBLAS, so ranks do not oversubscribe the machine.
#   launch/mpirun_cpu.sh -n RANKS [-H HOSTFILE] [-p RANKS_PER_NODE] -- vita train --config FILE
# Environment that matters: vita sets two of Open MPI's non-blocking collective choices itself
# unless they are set here or with --mca (train/dist.c, docs/dist.md):
#   OMPI_MCA_coll_libnbc_iallreduce_algorithm=1  ring all-reduce of gradient buckets (Open MPI
#                                                takes a binomial tree for in-place buffers)
#   OMPI_MCA_coll_libnbc_ireduce_algorithm=2     binomial reduce for ZeRO 2 (the default chain
#                                                advances one segment per progress call)
# On CPU ranks train.bucket_mb: 4 keeps the ZeRO 2 gradient peak at about the shard (docs/dist.md).
set -euo pipefail
ranks=1 hostfile="" per_node=""
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -n) ranks=$2; shift 2 ;;
    -H) hostfile=$2; shift 2 ;;
    -p) per_node=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "mpirun_cpu.sh: unknown option '$1'" >&2; usage ;;
  esac
done
[ $# -gt 0 ] || usage
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "mpirun_cpu.sh: -n expects a positive integer, got '$ranks'" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "mpirun_cpu.sh: mpirun not found (Debian: openmpi-bin)" >&2; exit 1; }

# ranks on this node: all of them without a hostfile, else what -p says (default: 1 per node)
if [ -z "$per_node" ]; then
  if [ -n "$hostfile" ]; then per_node=1; else per_node=$ranks; fi
fi
cores=$(nproc)
threads=$(( cores / per_node )); [ "$threads" -ge 1 ] || threads=1

args=(-np "$ranks" -x OMP_NUM_THREADS="$threads" -x OPENBLAS_NUM_THREADS="$threads"
      --map-by "ppr:${per_node}:node:PE=${threads}" --bind-to core)
[ "$per_node" -le "$cores" ] || args=(-np "$ranks" -x OMP_NUM_THREADS=1 --oversubscribe --bind-to none)
[ -z "$hostfile" ] || args+=(--hostfile "$hostfile")
[ "$(id -u)" != 0 ] || args+=(--allow-run-as-root)
echo "mpirun_cpu.sh: $ranks rank(s), $per_node per node, $threads thread(s) each" >&2
exec mpirun "${args[@]}" "$@"
