/* Collectives of a data-parallel group, behind one interface with two implementations: MPI
 * for buffers in host memory (CPU ranks) and NCCL for buffers on the GPU (coll_nccl.c; rank 0
 * makes the unique id and broadcasts it over MPI, the node-local rank picks the GPU). The
 * trainer calls only this interface and never knows which one runs.
 *
 * Every operation is non-blocking underneath and waited for against a deadline
 * (vt_coll.timeout_s): a rank that died or stopped answering makes the others fail within that
 * time with a message naming this rank, the collective and what it carried, instead of
 * hanging; the caller then ends the job (vt_dist_abort).
 *
 * Sharded layouts (ZeRO): a flat buffer of n elements is split into world shards of
 * vt_coll_shard(n, world) elements, rank r owning [r * shard, min((r + 1) * shard, n)); the last
 * shards may be short or empty (MPI passes uneven counts, NCCL pads to world * shard). */
#ifndef VT_COLL_H
#define VT_COLL_H

#include <stdbool.h>
#include <stddef.h>

#include "autograd/backend.h"
#include "train/dist.h"

typedef enum { VT_COLL_F32, VT_COLL_F64 } vt_coll_dtype;
typedef enum { VT_COLL_SUM, VT_COLL_MAX } vt_coll_op;

typedef struct vt_coll vt_coll;

/* A non-blocking operation in flight: waited for with vt_coll_wait (exactly once). */
typedef struct {
  int slot; /* -1: nothing in flight (a group of one) */
} vt_coll_req;

/* The implementation's table. Every function returns 0, or -1 with c->err set. `what` names
 * the data for messages ("gradient bucket 3"). Buffers are device buffers of the instance's
 * backend (host memory for MPI). */
typedef struct {
  const char *name; /* "mpi", "nccl" */
  int (*allreduce)(vt_coll *c, void *buf, size_t n, vt_coll_dtype dt, vt_coll_op op,
                   const char *what);
  /* Starts buf <- sum over ranks (f32), in place. */
  int (*iallreduce)(vt_coll *c, float *buf, size_t n, const char *what, vt_coll_req *req);
  /* Starts buf at root <- sum over ranks (f32); the other ranks' buf is left as it was. */
  int (*ireduce)(vt_coll *c, float *buf, size_t n, int root, const char *what, vt_coll_req *req);
  int (*wait)(vt_coll *c, vt_coll_req *req);
  /* Whether req has completed, without waiting (a completed request needs no wait: its slot
   * becomes -1). Also drives MPI's progress while the caller computes. */
  int (*test)(vt_coll *c, vt_coll_req *req, bool *done);
  /* Rank r's shard of buf <- the sum over ranks of that shard, in place (the rest of buf is
   * undefined afterwards). */
  int (*reduce_scatter)(vt_coll *c, float *buf, size_t n, const char *what);
  /* Every shard of buf <- its owner's shard, in place. */
  int (*allgather)(vt_coll *c, float *buf, size_t n, const char *what);
  /* The same over runs of any length and element size (bytes moved as they are, e.g. bf16):
   * buf holds counts[r] elements of elem bytes of each rank r back to back in rank order,
   * and every run <- its owner's, in place. */
  int (*allgatherv)(vt_coll *c, void *buf, const size_t *counts, size_t elem, const char *what);
  int (*broadcast)(vt_coll *c, void *buf, size_t bytes, int root, const char *what);
  int (*barrier)(vt_coll *c, const char *what);
  void (*free)(vt_coll *c);
} vt_coll_ops;

struct vt_coll {
  const vt_coll_ops *ops;
  const vt_dist *dist;
  int rank, world;
  double timeout_s; /* the deadline of every wait */
  char err[512];
  void *impl;
};

/* Most requests in flight at once per instance. */
#define VT_COLL_MAX_REQS 1024
/* The default deadline of a collective, in seconds (train.coll_timeout_s). */
#define VT_COLL_DEFAULT_TIMEOUT 600.0

/* The instance for buffers of backend be (NULL: host memory): MPI for the CPU, NCCL for a
 * CUDA backend (an error when the build has no NCCL). A group of one gets the MPI instance,
 * whose calls then copy nothing. Returns 0, or -1 with a message. */
int vt_coll_open(vt_coll *c, const vt_dist *d, const vt_backend *be, double timeout_s, char *err,
                 size_t err_len);
void vt_coll_close(vt_coll *c);

/* The MPI instance (host memory) and the NCCL one (device buffers of be). vt_coll_open_nccl
 * fails with a message in a build without NCCL. */
int vt_coll_open_mpi(vt_coll *c, const vt_dist *d, double timeout_s, char *err, size_t err_len);
int vt_coll_open_nccl(vt_coll *c, const vt_dist *d, const vt_backend *be, double timeout_s,
                      char *err, size_t err_len);

/* Elements per shard of a flat buffer of n over world ranks (ceil), and rank r's range. */
size_t vt_coll_shard(size_t n, int world);
void vt_coll_shard_range(size_t n, int world, int r, size_t *lo, size_t *hi);

/* Convenience wrappers over the table (what may be NULL). */
static inline int vt_coll_allreduce_f64(vt_coll *c, double *buf, size_t n, vt_coll_op op,
                                        const char *what) {
  return c->ops->allreduce(c, buf, n, VT_COLL_F64, op, what);
}
static inline int vt_coll_allreduce_f32(vt_coll *c, float *buf, size_t n, const char *what) {
  return c->ops->allreduce(c, buf, n, VT_COLL_F32, VT_COLL_SUM, what);
}

#endif
