/* The NCCL implementation of the collective interface (device buffers of a CUDA backend); see
 * coll.h. Rank 0 makes the unique id and broadcasts it over MPI; the communicator is created
 * non-blocking so that its setup, like every collective, is waited for against the deadline.
 * Collectives run on the instance's own stream: a start records an event on the backend's
 * (compute) stream and makes the communication stream wait for it, so a bucket reduces while
 * backward goes on; a wait polls the bucket's done event and ncclCommGetAsyncError, aborts
 * the communicator (ncclCommAbort) when the deadline passes or NCCL reports an error, and
 * otherwise orders the compute stream after the event. Sharded operations whose length is not
 * a multiple of the world size go through a padded staging buffer. */
#include <stdio.h>
#include <string.h>

#include "autograd/fmt.h"
#include "train/coll.h"

#if defined(VT_HAVE_NCCL) && defined(VT_HAVE_MPI)
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
  ncclComm_t comm;
  cudaStream_t stream;  /* communication */
  cudaStream_t compute; /* the backend's stream */
  cudaEvent_t ready, done[VT_COLL_MAX_REQS];
  bool busy[VT_COLL_MAX_REQS];
  char what[VT_COLL_MAX_REQS][96];
  float *stage; /* padded staging for sharded operations */
  size_t stage_n;
  const vt_backend *be;
  bool aborted;
} nccl_impl;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(vt_coll *c, const char *desc, const char *why) {
  snprintf(c->err, sizeof c->err, "rank %d of %d: NCCL %s failed: %s", c->rank, c->world, desc,
           why);
  return -1;
}

static void abort_comm(nccl_impl *m) {
  if (!m->aborted && m->comm) ncclCommAbort(m->comm);
  m->aborted = true;
  m->comm = NULL;
}

/* Polls until done (an event, or the communicator's own state when ev is NULL) completes or
 * the deadline passes; on timeout or an asynchronous NCCL error aborts the communicator. */
static int wait_until(vt_coll *c, cudaEvent_t ev, const char *desc) {
  nccl_impl *m = c->impl;
  double t0 = now_s();
  for (long polls = 0;; polls++) {
    ncclResult_t ar = ncclSuccess;
    if (m->comm) ncclCommGetAsyncError(m->comm, &ar);
    if (ar != ncclSuccess && ar != ncclInProgress) {
      abort_comm(m);
      return fail(c, desc, ncclGetErrorString(ar));
    }
    if (ev) {
      cudaError_t q = cudaEventQuery(ev);
      if (q == cudaSuccess) return 0;
      if (q != cudaErrorNotReady) return fail(c, desc, cudaGetErrorString(q));
    } else if (ar == ncclSuccess) {
      return 0;
    }
    if (now_s() - t0 > c->timeout_s) {
      abort_comm(m);
      snprintf(c->err, sizeof c->err,
               "rank %d of %d: NCCL %s timed out after %g s (collective timeout, "
               "train.coll_timeout_s): another rank died or stopped answering; communicator "
               "aborted",
               c->rank, c->world, desc, c->timeout_s);
      return -1;
    }
    if (polls > 64) nanosleep(&(struct timespec){0, 20000}, NULL);
  }
}

static void describe(char *buf, size_t len, const char *op, const char *what, size_t bytes) {
  snprintf(buf, len, "%s of %s (%.1f MiB)", op, what ? what : "data", (double)bytes / (1 << 20));
}

static int take_slot(vt_coll *c, const char *desc) {
  nccl_impl *m = c->impl;
  if (m->aborted) return fail(c, desc, "the communicator was aborted earlier");
  for (int i = 0; i < VT_COLL_MAX_REQS; i++)
    if (!m->busy[i]) {
      m->busy[i] = true;
      snprintf(m->what[i], sizeof m->what[i], "%s", desc);
      return i;
    }
  return fail(c, desc, "too many collectives in flight");
}

/* The communication stream waits for everything queued on the compute stream so far. */
static void after_compute(nccl_impl *m) {
  cudaEventRecord(m->ready, m->compute);
  cudaStreamWaitEvent(m->stream, m->ready, 0);
}

static int finish(vt_coll *c, int i, ncclResult_t r) {
  nccl_impl *m = c->impl;
  if (r != ncclSuccess && r != ncclInProgress) {
    m->busy[i] = false;
    return fail(c, m->what[i], ncclGetErrorString(r));
  }
  cudaEventRecord(m->done[i], m->stream);
  return 0;
}

static int wait_slot(vt_coll *c, int i) {
  nccl_impl *m = c->impl;
  int rc = wait_until(c, m->done[i], m->what[i]);
  m->busy[i] = false;
  if (!rc) cudaStreamWaitEvent(m->compute, m->done[i], 0);
  return rc;
}

static int x_allreduce(vt_coll *c, void *buf, size_t n, vt_coll_dtype dt, vt_coll_op op,
                       const char *what) {
  nccl_impl *m = c->impl;
  char desc[96];
  describe(desc, sizeof desc, "all-reduce", what, n * (dt == VT_COLL_F64 ? 8 : 4));
  int i = take_slot(c, desc);
  if (i < 0) return -1;
  after_compute(m);
  ncclResult_t r = ncclAllReduce(buf, buf, n, dt == VT_COLL_F64 ? ncclDouble : ncclFloat,
                                 op == VT_COLL_MAX ? ncclMax : ncclSum, m->comm, m->stream);
  return finish(c, i, r) || wait_slot(c, i) ? -1 : 0;
}

static int start(vt_coll *c, float *buf, size_t n, int root, const char *what, vt_coll_req *req) {
  nccl_impl *m = c->impl;
  req->slot = -1;
  char desc[96];
  describe(desc, sizeof desc, root < 0 ? "all-reduce" : "reduce", what, n * 4);
  int i = take_slot(c, desc);
  if (i < 0) return -1;
  after_compute(m);
  ncclResult_t r = root < 0 ? ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, m->comm, m->stream)
                            : ncclReduce(buf, buf, n, ncclFloat, ncclSum, root, m->comm, m->stream);
  if (finish(c, i, r)) return -1;
  req->slot = i;
  return 0;
}

static int x_iallreduce(vt_coll *c, float *buf, size_t n, const char *what, vt_coll_req *req) {
  return start(c, buf, n, -1, what, req);
}

static int x_ireduce(vt_coll *c, float *buf, size_t n, int root, const char *what,
                     vt_coll_req *req) {
  return start(c, buf, n, root, what, req);
}

static int x_wait(vt_coll *c, vt_coll_req *req) {
  if (req->slot < 0) return 0;
  int i = req->slot;
  req->slot = -1;
  return wait_slot(c, i);
}

static int x_test(vt_coll *c, vt_coll_req *req, bool *done) {
  *done = true;
  if (req->slot < 0) return 0;
  nccl_impl *m = c->impl;
  int i = req->slot;
  cudaError_t q = cudaEventQuery(m->done[i]);
  if (q == cudaErrorNotReady) {
    *done = false;
    return 0;
  }
  m->busy[i] = false;
  req->slot = -1;
  if (q != cudaSuccess) return fail(c, m->what[i], cudaGetErrorString(q));
  cudaStreamWaitEvent(m->compute, m->done[i], 0);
  return 0;
}

/* The padded staging buffer of world * shard elements (grown on demand). */
static float *stage(vt_coll *c, size_t padded) {
  nccl_impl *m = c->impl;
  if (m->stage_n < padded) {
    cudaStreamSynchronize(m->stream);
    cudaFree(m->stage);
    m->stage = NULL;
    m->stage_n = 0;
    if (cudaMalloc((void **)&m->stage, padded * sizeof(float)) != cudaSuccess) return NULL;
    m->stage_n = padded;
  }
  return m->stage;
}

static int sharded(vt_coll *c, float *buf, size_t n, bool scatter, const char *what) {
  nccl_impl *m = c->impl;
  size_t shard = vt_coll_shard(n, c->world), padded = shard * (size_t)c->world;
  size_t lo, hi;
  vt_coll_shard_range(n, c->world, c->rank, &lo, &hi);
  char desc[96];
  describe(desc, sizeof desc, scatter ? "reduce-scatter" : "all-gather", what, n * 4);
  int i = take_slot(c, desc);
  if (i < 0) return -1;
  after_compute(m);
  float *s = buf;
  if (padded != n) { /* pad: the last shards are short */
    s = stage(c, padded);
    if (!s) {
      m->busy[i] = false;
      return fail(c, desc, "out of device memory for the padded staging buffer");
    }
    cudaMemsetAsync(s + n, 0, (padded - n) * sizeof(float), m->stream);
    if (scatter)
      cudaMemcpyAsync(s, buf, n * sizeof(float), cudaMemcpyDeviceToDevice, m->stream);
    else if (hi > lo)
      cudaMemcpyAsync(s + lo, buf + lo, (hi - lo) * sizeof(float), cudaMemcpyDeviceToDevice,
                      m->stream);
  }
  float *own = s + (size_t)c->rank * shard;
  ncclResult_t r = scatter
                       ? ncclReduceScatter(s, own, shard, ncclFloat, ncclSum, m->comm, m->stream)
                       : ncclAllGather(own, s, shard, ncclFloat, m->comm, m->stream);
  if (r == ncclSuccess && s != buf) {
    if (scatter && hi > lo)
      cudaMemcpyAsync(buf + lo, own, (hi - lo) * sizeof(float), cudaMemcpyDeviceToDevice,
                      m->stream);
    else if (!scatter)
      cudaMemcpyAsync(buf, s, n * sizeof(float), cudaMemcpyDeviceToDevice, m->stream);
  }
  return finish(c, i, r) || wait_slot(c, i) ? -1 : 0;
}

static int x_reduce_scatter(vt_coll *c, float *buf, size_t n, const char *what) {
  return sharded(c, buf, n, true, what);
}

static int x_allgather(vt_coll *c, float *buf, size_t n, const char *what) {
  return sharded(c, buf, n, false, what);
}

static int x_broadcast(vt_coll *c, void *buf, size_t bytes, int root, const char *what) {
  nccl_impl *m = c->impl;
  char desc[96];
  describe(desc, sizeof desc, "broadcast", what, bytes);
  int i = take_slot(c, desc);
  if (i < 0) return -1;
  after_compute(m);
  ncclResult_t r = ncclBroadcast(buf, buf, bytes, ncclUint8, root, m->comm, m->stream);
  return finish(c, i, r) || wait_slot(c, i) ? -1 : 0;
}

/* Runs of any length: one broadcast from each owner, grouped into one NCCL launch. */
static int x_allgatherv(vt_coll *c, void *buf, const size_t *counts, size_t elem,
                        const char *what) {
  nccl_impl *m = c->impl;
  size_t total = 0;
  for (int r = 0; r < c->world; r++) total += counts[r] * elem;
  char desc[96];
  describe(desc, sizeof desc, "all-gather", what, total);
  int i = take_slot(c, desc);
  if (i < 0) return -1;
  after_compute(m);
  ncclResult_t r = ncclGroupStart();
  char *at = buf;
  for (int k = 0; k < c->world && r == ncclSuccess; at += counts[k] * elem, k++)
    if (counts[k]) r = ncclBroadcast(at, at, counts[k] * elem, ncclUint8, k, m->comm, m->stream);
  ncclResult_t e = ncclGroupEnd();
  if (r == ncclSuccess) r = e;
  return finish(c, i, r) || wait_slot(c, i) ? -1 : 0;
}

static int x_barrier(vt_coll *c, const char *what) {
  nccl_impl *m = c->impl;
  float *one = stage(c, 1);
  if (!one) return fail(c, "barrier", "out of device memory");
  cudaMemsetAsync(one, 0, sizeof(float), m->stream);
  return x_allreduce(c, one, 1, VT_COLL_F32, VT_COLL_SUM, what ? what : "barrier");
}

static void x_free(vt_coll *c) {
  nccl_impl *m = c->impl;
  if (!m) return;
  if (m->comm && !m->aborted) {
    cudaStreamSynchronize(m->stream);
    ncclCommDestroy(m->comm);
  }
  cudaFree(m->stage);
  for (int i = 0; i < VT_COLL_MAX_REQS; i++) cudaEventDestroy(m->done[i]);
  cudaEventDestroy(m->ready);
  cudaStreamDestroy(m->stream);
  free(m);
  c->impl = NULL;
}

static const vt_coll_ops nccl_ops = {.name = "nccl",
                                     .allreduce = x_allreduce,
                                     .iallreduce = x_iallreduce,
                                     .ireduce = x_ireduce,
                                     .wait = x_wait,
                                     .test = x_test,
                                     .reduce_scatter = x_reduce_scatter,
                                     .allgather = x_allgather,
                                     .allgatherv = x_allgatherv,
                                     .broadcast = x_broadcast,
                                     .barrier = x_barrier,
                                     .free = x_free};

int vt_coll_open_nccl(vt_coll *c, const vt_dist *d, const vt_backend *be, double timeout_s,
                      char *err, size_t err_len) {
  memset(c, 0, sizeof *c);
  c->ops = &nccl_ops;
  c->dist = d;
  c->rank = d->rank;
  c->world = d->world;
  c->timeout_s = timeout_s > 0 ? timeout_s : VT_COLL_DEFAULT_TIMEOUT;
  nccl_impl *m = calloc(1, sizeof *m);
  if (!m) {
    vt_seterr(err, err_len, "NCCL: out of memory");
    return -1;
  }
  c->impl = m;
  m->be = be;
  m->compute = (cudaStream_t)vt_backend_stream(be);
  cudaSetDevice(be->device.index);
  if (cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking) != cudaSuccess ||
      cudaEventCreateWithFlags(&m->ready, cudaEventDisableTiming) != cudaSuccess) {
    vt_seterr(err, err_len, "NCCL: cannot create the communication stream on cuda:%d",
              be->device.index);
    x_free(c);
    return -1;
  }
  for (int i = 0; i < VT_COLL_MAX_REQS; i++)
    cudaEventCreateWithFlags(&m->done[i], cudaEventDisableTiming);
  /* rank 0 makes the id; every rank gets it (and whether rank 0 could make it) over MPI */
  struct {
    ncclUniqueId id;
    int ok;
  } u;
  memset(&u, 0, sizeof u);
  if (d->rank == 0) u.ok = ncclGetUniqueId(&u.id) == ncclSuccess;
  if (MPI_Bcast(&u, (int)sizeof u, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS || !u.ok) {
    vt_seterr(err, err_len, "NCCL: %s",
              u.ok ? "broadcasting the unique id over MPI failed"
                   : "ncclGetUniqueId failed on rank 0 (network interfaces? see "
                     "NCCL_SOCKET_IFNAME)");
    x_free(c);
    return -1;
  }
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  cfg.blocking = 0; /* setup is waited for against the deadline too */
  ncclResult_t r = ncclCommInitRankConfig(&m->comm, d->world, u.id, d->rank, &cfg);
  if ((r != ncclSuccess && r != ncclInProgress) ||
      wait_until(c, NULL, "communicator setup (ncclCommInitRankConfig)")) {
    vt_seterr(err, err_len, "%s",
              r != ncclSuccess && r != ncclInProgress ? ncclGetErrorString(r) : c->err);
    x_free(c);
    return -1;
  }
  return 0;
}

#else

int vt_coll_open_nccl(vt_coll *c, const vt_dist *d, const vt_backend *be, double timeout_s,
                      char *err, size_t err_len) {
  (void)d, (void)be, (void)timeout_s;
  memset(c, 0, sizeof *c);
  vt_seterr(err, err_len,
            "collectives between GPU ranks need NCCL, and this build has none (CUDA toolkit, "
            "MPI and libnccl are all required; see the cmake output)");
  return -1;
}

#endif
