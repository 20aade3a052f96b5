#!/usr/bin/env bash
# Data-parallel training on the GPUs of several nodes with Open MPI and NCCL: one rank per GPU,
# GPUS_PER_NODE ranks on each host of HOSTFILE (lines "node01 slots=8").
#   launch/mpirun_gpu_hosts.sh -H HOSTFILE -g GPUS_PER_NODE -- vita train --config STAGE.yaml
# The run directory (output.dir) must be on a filesystem every node shares: each rank writes
# its optimizer shard into the same checkpoint directory.
#
# Environment that matters (exported to every rank):
#   NCCL_SOCKET_IFNAME   the interface NCCL's bootstrap and socket transport use, e.g. eth0 or
#                        ib0 (a prefix such as "^lo,docker" excludes); wrong or unset on hosts
#                        with several interfaces is the usual cause of a hang at startup
#   NCCL_IB_HCA          the InfiniBand / RoCE adapters to use, e.g. mlx5_0,mlx5_1 (or
#                        "=mlx5_0:1" for one port); NCCL_IB_DISABLE=1 forces TCP sockets
#   NCCL_IB_GID_INDEX    RoCE: the GID index of the routable address (often 3)
#   NCCL_DEBUG=INFO      NCCL prints the transports and rings it built
#   CUDA_VISIBLE_DEVICES the GPUs of each node the ranks may use (same on every node)
#   OMPI_MCA_btl_tcp_if_include  the interface MPI's own TCP traffic uses (statistics, ids)
# train.coll_timeout_s bounds every collective: a node that dies ends the job in that time.
set -euo pipefail
hostfile="" per_node=""
usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -H) hostfile=$2; shift 2 ;;
    -g) per_node=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "mpirun_gpu_hosts.sh: unknown option '$1'" >&2; usage ;;
  esac
done
[ $# -gt 0 ] && [ -n "$hostfile" ] && [ -n "$per_node" ] || usage
[ -r "$hostfile" ] || { echo "mpirun_gpu_hosts.sh: cannot read hostfile '$hostfile'" >&2; exit 2; }
[[ "$per_node" =~ ^[1-9][0-9]*$ ]] || { echo "mpirun_gpu_hosts.sh: -g expects a positive integer, got '$per_node'" >&2; exit 2; }
nodes=$(grep -cvE '^\s*(#|$)' "$hostfile")
ranks=$((nodes * per_node))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
args=(-np "$ranks" --hostfile "$hostfile" --map-by "ppr:${per_node}:node" --bind-to none
      -x OMP_NUM_THREADS -x PATH -x LD_LIBRARY_PATH)
for v in CUDA_VISIBLE_DEVICES NCCL_DEBUG NCCL_SOCKET_IFNAME NCCL_IB_HCA NCCL_IB_DISABLE \
         NCCL_IB_GID_INDEX OMPI_MCA_btl_tcp_if_include; do
  [ -z "${!v:-}" ] || args+=(-x "$v")
done
[ -z "${OMPI_MCA_btl_tcp_if_include:-}" ] || args+=(--mca btl_tcp_if_include "$OMPI_MCA_btl_tcp_if_include")
[ "$(id -u)" != 0 ] || args+=(--allow-run-as-root)
echo "mpirun_gpu_hosts.sh: $ranks GPU rank(s): $nodes node(s) x $per_node" >&2
exec mpirun "${args[@]}" "$@"
