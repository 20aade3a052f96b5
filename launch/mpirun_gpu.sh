#!/usr/bin/env bash
# Data-parallel training on the GPUs of one node with Open MPI and NCCL: one rank per GPU.
#   launch/mpirun_gpu.sh -n GPUS -- vita train --config STAGE.yaml [--resume]
# The stage config says `device: cuda`; each rank takes GPU (node-local rank) of the ones it
# sees (train/dist.c finds the node-local rank with MPI_Comm_split_type), NCCL carries the
# gradients and parameters, MPI the small statistics and the NCCL unique id.
#
# Environment that matters (exported to every rank with -x):
#   CUDA_VISIBLE_DEVICES  the GPUs the ranks may use, e.g. 0,1,2,3 (default: all)
#   NCCL_DEBUG=INFO       NCCL prints the transports it chose (NVLink/P2P, SHM, IB, sockets)
#   NCCL_P2P_DISABLE=1    only if peer-to-peer between the GPUs is broken on this machine
#   OMP_NUM_THREADS       host threads per rank (data loading, host-side work); default 4
# train.coll_timeout_s in the config bounds every collective: a rank that dies or hangs ends
# the job within that time (NCCL communicators are aborted, then MPI_Abort).
set -euo pipefail
ranks=""
usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -n) ranks=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "mpirun_gpu.sh: unknown option '$1'" >&2; usage ;;
  esac
done
[ $# -gt 0 ] || usage
command -v mpirun >/dev/null || { echo "mpirun_gpu.sh: mpirun not found (Debian: openmpi-bin)" >&2; exit 1; }
if [ -z "$ranks" ]; then # one rank per visible GPU
  ranks=$( (nvidia-smi -L 2>/dev/null || true) | wc -l)
  [ -z "${CUDA_VISIBLE_DEVICES:-}" ] || ranks=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c .)
fi
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "mpirun_gpu.sh: -n expects a positive integer (no GPU found?), got '$ranks'" >&2; exit 2; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
args=(-np "$ranks" --map-by "ppr:${ranks}:node" --bind-to none
      -x OMP_NUM_THREADS -x PATH -x LD_LIBRARY_PATH)
for v in CUDA_VISIBLE_DEVICES NCCL_DEBUG NCCL_P2P_DISABLE NCCL_SOCKET_IFNAME NCCL_IB_HCA; do
  [ -z "${!v:-}" ] || args+=(-x "$v")
done
[ "$(id -u)" != 0 ] || args+=(--allow-run-as-root)
echo "mpirun_gpu.sh: $ranks GPU rank(s) on this node" >&2
exec mpirun "${args[@]}" "$@"
