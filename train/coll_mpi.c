/* The MPI implementation of the collective interface (host memory); see coll.h. Each
 * instance works on its own duplicate of the world communicator with errors returned (not
 * fatal), and every operation is a non-blocking MPI call waited for by polling against the
 * deadline, so a dead or stopped rank becomes an error message here rather than a hang. */
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/fmt.h"
#include "train/coll.h"

size_t vt_coll_shard(size_t n, int world) {
  return world > 0 ? (n + (size_t)world - 1) / (size_t)world : n;
}

void vt_coll_shard_range(size_t n, int world, int r, size_t *lo, size_t *hi) {
  size_t s = vt_coll_shard(n, world), a = (size_t)r * s, b = a + s;
  *lo = a < n ? a : n;
  *hi = b < n ? b : n;
}

int vt_coll_open(vt_coll *c, const vt_dist *d, const vt_backend *be, double timeout_s, char *err,
                 size_t err_len) {
  if (be && be->device.type != VT_DEV_CPU && d->world > 1)
    return vt_coll_open_nccl(c, d, be, timeout_s, err, err_len);
  return vt_coll_open_mpi(c, d, timeout_s, err, err_len);
}

void vt_coll_close(vt_coll *c) {
  if (c->ops && c->ops->free) c->ops->free(c);
  memset(c, 0, sizeof *c);
}

#ifdef VT_HAVE_MPI
#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

typedef struct {
  MPI_Comm comm;
  MPI_Request req[VT_COLL_MAX_REQS];
  bool busy[VT_COLL_MAX_REQS];
  /* when each request started (ns, CLOCK_MONOTONIC; 0 = free), read by the watchdog */
  int64_t started_ns[VT_COLL_MAX_REQS];
  pthread_t watchdog;
  bool watching;
  int stop_watch; /* atomic */
  int rank, world;
  double timeout_s;
  char what[VT_COLL_MAX_REQS][96]; /* "all-reduce of gradient bucket 3 (4.0 MiB)" */
  /* reduce-scatter in place: the result lands at the front of the buffer and moves to the
   * shard afterwards */
  float *move_dst[VT_COLL_MAX_REQS], *move_src[VT_COLL_MAX_REQS];
  size_t move_n[VT_COLL_MAX_REQS];
} mpi_impl;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The last line of defence: a request older than the deadline plus a grace period means this
 * rank is stuck inside an MPI call (a peer stopped answering mid-transfer) where the deadline
 * checks of wait and test cannot run. The watchdog then says so and ends the process, which
 * makes the launcher end the job. */
static void *watch(void *arg) {
  mpi_impl *m = arg;
  double grace = m->timeout_s > 20 ? m->timeout_s / 2 : 10;
  while (!__atomic_load_n(&m->stop_watch, __ATOMIC_ACQUIRE)) {
    nanosleep(&(struct timespec){0, 250000000}, NULL);
    int64_t now = now_ns();
    for (int i = 0; i < VT_COLL_MAX_REQS; i++) {
      int64_t t = __atomic_load_n(&m->started_ns[i], __ATOMIC_ACQUIRE);
      if (t && (double)(now - t) * 1e-9 > m->timeout_s + grace) {
        fprintf(stderr,
                "rank %d of %d: collective watchdog: %s started %.0f s ago and has not completed "
                "(deadline %g s): another rank died or stopped answering; ending this process\n",
                m->rank, m->world, m->what[i], (double)(now - t) * 1e-9, m->timeout_s);
        fflush(stderr);
        _exit(75);
      }
    }
  }
  return NULL;
}

static void describe(char *buf, size_t len, const char *op, const char *what, size_t bytes) {
  char sz[32];
  if (bytes >= (1u << 20))
    snprintf(sz, sizeof sz, "%.1f MiB", (double)bytes / (1 << 20));
  else
    snprintf(sz, sizeof sz, "%zu bytes", bytes);
  snprintf(buf, len, "%s of %s (%s)", op, what ? what : "data", sz);
}

static int mpi_fail(vt_coll *c, int code, const char *desc) {
  char s[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(code, s, &len);
  snprintf(c->err, sizeof c->err, "rank %d of %d: %s failed: %s", c->rank, c->world, desc, s);
  return -1;
}

/* A free request slot for an operation described by desc, or -1 (c->err set). */
static int take_slot(vt_coll *c, const char *desc) {
  mpi_impl *m = c->impl;
  for (int i = 0; i < VT_COLL_MAX_REQS; i++)
    if (!m->busy[i]) {
      m->busy[i] = true;
      __atomic_store_n(&m->started_ns[i], now_ns(), __ATOMIC_RELEASE);
      m->move_n[i] = 0;
      snprintf(m->what[i], sizeof m->what[i], "%s", desc);
      return i;
    }
  snprintf(c->err, sizeof c->err, "rank %d: %s: more than %d collectives in flight", c->rank, desc,
           VT_COLL_MAX_REQS);
  return -1;
}

static void free_slot(mpi_impl *m, int i) {
  m->busy[i] = false;
  __atomic_store_n(&m->started_ns[i], 0, __ATOMIC_RELEASE);
}

static bool past_deadline(const vt_coll *c, const mpi_impl *m, int i) {
  return (double)(now_ns() - m->started_ns[i]) * 1e-9 > c->timeout_s;
}

static int timed_out(vt_coll *c, int i) {
  mpi_impl *m = c->impl;
  snprintf(c->err, sizeof c->err,
           "rank %d of %d: %s timed out after %g s (collective timeout, train.coll_timeout_s): "
           "another rank died or stopped answering",
           c->rank, c->world, m->what[i], c->timeout_s);
  return -1; /* the request stays pending: the job is ended by the caller */
}

/* Polls slot i until it completes or the deadline passes. It yields the core between polls
 * for the first WAIT_SPIN_NS (to a peer rank or BLAS thread that is runnable, as MPI_Wait's
 * busy-wait would not), then sleeps WAIT_NAP_NS between them: a rank that waits for a slower
 * one (a machine shared with other work) then takes no core from it, and its CPU time stays
 * the work it did. MPI moves a message only inside its calls, so the nap is short against a
 * message's own time. */
#define WAIT_SPIN_NS 200000
#define WAIT_NAP_NS 50000
static int wait_slot(vt_coll *c, int i) {
  mpi_impl *m = c->impl;
  int done = 0;
  int64_t t0 = now_ns();
  for (;;) {
    int rc = MPI_Test(&m->req[i], &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      free_slot(m, i);
      return mpi_fail(c, rc, m->what[i]);
    }
    if (done) break;
    if (past_deadline(c, m, i)) return timed_out(c, i); /* from the start of the request */
    if (now_ns() - t0 < WAIT_SPIN_NS)
      sched_yield();
    else
      nanosleep(&(struct timespec){0, WAIT_NAP_NS}, NULL);
  }
  if (m->move_n[i]) memmove(m->move_dst[i], m->move_src[i], m->move_n[i] * sizeof(float));
  free_slot(m, i);
  return 0;
}

static int run_blocking(vt_coll *c, int i, int rc) {
  if (rc != MPI_SUCCESS) {
    free_slot(c->impl, i);
    return mpi_fail(c, rc, ((mpi_impl *)c->impl)->what[i]);
  }
  return wait_slot(c, i);
}

#define SLICE ((size_t)1 << 30)

static int m_allreduce(vt_coll *c, void *buf, size_t n, vt_coll_dtype dt, vt_coll_op op,
                       const char *what) {
  if (c->world <= 1) return 0;
  mpi_impl *m = c->impl;
  size_t size = dt == VT_COLL_F64 ? sizeof(double) : sizeof(float);
  char desc[96];
  describe(desc, sizeof desc, op == VT_COLL_MAX ? "max all-reduce" : "all-reduce", what, n * size);
  for (size_t off = 0; off < n; off += SLICE) {
    int count = (int)(n - off < SLICE ? n - off : SLICE);
    int i = take_slot(c, desc);
    if (i < 0) return -1;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + off * size, count,
                            dt == VT_COLL_F64 ? MPI_DOUBLE : MPI_FLOAT,
                            op == VT_COLL_MAX ? MPI_MAX : MPI_SUM, m->comm, &m->req[i]);
    if (run_blocking(c, i, rc)) return -1;
  }
  return 0;
}

static int start(vt_coll *c, float *buf, size_t n, int root, const char *what, vt_coll_req *req) {
  req->slot = -1;
  if (c->world <= 1) return 0;
  mpi_impl *m = c->impl;
  char desc[96];
  describe(desc, sizeof desc, root < 0 ? "all-reduce" : "reduce", what, n * sizeof(float));
  if (n > INT_MAX) {
    snprintf(c->err, sizeof c->err,
             "rank %d: %s: more than %d elements in one request "
             "(use a smaller train.bucket_mb)",
             c->rank, desc, INT_MAX);
    return -1;
  }
  int i = take_slot(c, desc);
  if (i < 0) return -1;
  int rc =
      root < 0 ? MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, m->comm, &m->req[i])
      : c->rank == root
          ? MPI_Ireduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, root, m->comm, &m->req[i])
          : MPI_Ireduce(buf, NULL, (int)n, MPI_FLOAT, MPI_SUM, root, m->comm, &m->req[i]);
  if (rc != MPI_SUCCESS) {
    free_slot(m, i);
    return mpi_fail(c, rc, desc);
  }
  req->slot = i;
  return 0;
}

static int m_iallreduce(vt_coll *c, float *buf, size_t n, const char *what, vt_coll_req *req) {
  return start(c, buf, n, -1, what, req);
}

static int m_ireduce(vt_coll *c, float *buf, size_t n, int root, const char *what,
                     vt_coll_req *req) {
  return start(c, buf, n, root, what, req);
}

static int m_wait(vt_coll *c, vt_coll_req *req) {
  if (req->slot < 0) return 0;
  int i = req->slot;
  req->slot = -1;
  return wait_slot(c, i);
}

static int m_test(vt_coll *c, vt_coll_req *req, bool *done) {
  *done = true;
  if (req->slot < 0) return 0;
  mpi_impl *m = c->impl;
  int i = req->slot, flag = 0;
  int rc = MPI_Test(&m->req[i], &flag, MPI_STATUS_IGNORE);
  if (rc != MPI_SUCCESS) {
    free_slot(m, i);
    req->slot = -1;
    return mpi_fail(c, rc, m->what[i]);
  }
  *done = flag != 0;
  if (!flag) return past_deadline(c, m, i) ? timed_out(c, i) : 0;
  if (m->move_n[i]) memmove(m->move_dst[i], m->move_src[i], m->move_n[i] * sizeof(float));
  free_slot(m, i);
  req->slot = -1;
  return 0;
}

/* Counts and displacements of the shards, when they fit MPI's int; false otherwise. */
static bool shard_counts(const vt_coll *c, size_t n, int *counts, int *displs) {
  if (n > INT_MAX) return false;
  for (int r = 0; r < c->world; r++) {
    size_t lo, hi;
    vt_coll_shard_range(n, c->world, r, &lo, &hi);
    counts[r] = (int)(hi - lo);
    displs[r] = (int)lo;
  }
  return true;
}

static int m_reduce_scatter(vt_coll *c, float *buf, size_t n, const char *what) {
  if (c->world <= 1) return 0;
  mpi_impl *m = c->impl;
  char desc[96];
  describe(desc, sizeof desc, "reduce-scatter", what, n * sizeof(float));
  int *counts = malloc(sizeof(int) * 2 * (size_t)c->world);
  if (!counts)
    return snprintf(c->err, sizeof c->err, "rank %d: %s: out of memory", c->rank, desc), -1;
  int rc = 0;
  if (shard_counts(c, n, counts, counts + c->world)) {
    int i = take_slot(c, desc);
    if (i < 0) {
      free(counts);
      return -1;
    }
    size_t lo, hi;
    vt_coll_shard_range(n, c->world, c->rank, &lo, &hi);
    m->move_dst[i] = buf + lo, m->move_src[i] = buf, m->move_n[i] = hi - lo;
    rc = run_blocking(
        c, i,
        MPI_Ireduce_scatter(MPI_IN_PLACE, buf, counts, MPI_FLOAT, MPI_SUM, m->comm, &m->req[i]));
  } else {
    /* beyond int counts: one reduce per owner, in slices */
    for (int r = 0; r < c->world && !rc; r++) {
      size_t lo, hi;
      vt_coll_shard_range(n, c->world, r, &lo, &hi);
      for (size_t off = lo; off < hi && !rc; off += SLICE) {
        vt_coll_req q;
        rc = start(c, buf + off, hi - off < SLICE ? hi - off : SLICE, r, what, &q) || m_wait(c, &q);
      }
    }
  }
  free(counts);
  return rc ? -1 : 0;
}

static int m_broadcast(vt_coll *c, void *buf, size_t bytes, int root, const char *what) {
  if (c->world <= 1) return 0;
  mpi_impl *m = c->impl;
  char desc[96];
  describe(desc, sizeof desc, "broadcast", what, bytes);
  for (size_t off = 0; off < bytes; off += SLICE) {
    int count = (int)(bytes - off < SLICE ? bytes - off : SLICE);
    int i = take_slot(c, desc);
    if (i < 0) return -1;
    if (run_blocking(c, i,
                     MPI_Ibcast((char *)buf + off, count, MPI_BYTE, root, m->comm, &m->req[i])))
      return -1;
  }
  return 0;
}

static int m_allgather(vt_coll *c, float *buf, size_t n, const char *what) {
  if (c->world <= 1) return 0;
  mpi_impl *m = c->impl;
  char desc[96];
  describe(desc, sizeof desc, "all-gather", what, n * sizeof(float));
  int *counts = malloc(sizeof(int) * 2 * (size_t)c->world);
  if (!counts)
    return snprintf(c->err, sizeof c->err, "rank %d: %s: out of memory", c->rank, desc), -1;
  int rc = 0;
  if (shard_counts(c, n, counts, counts + c->world)) {
    int i = take_slot(c, desc);
    if (i < 0) {
      free(counts);
      return -1;
    }
    rc = run_blocking(c, i,
                      MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts,
                                      counts + c->world, MPI_FLOAT, m->comm, &m->req[i]));
  } else {
    for (int r = 0; r < c->world && !rc; r++) { /* beyond int counts: one broadcast per owner */
      size_t lo, hi;
      vt_coll_shard_range(n, c->world, r, &lo, &hi);
      rc = m_broadcast(c, buf + lo, (hi - lo) * sizeof(float), r, what);
    }
  }
  free(counts);
  return rc ? -1 : 0;
}

static int m_allgatherv(vt_coll *c, void *buf, const size_t *counts, size_t elem,
                        const char *what) {
  if (c->world <= 1) return 0;
  mpi_impl *m = c->impl;
  size_t total = 0;
  for (int r = 0; r < c->world; r++) total += counts[r] * elem;
  char desc[96];
  describe(desc, sizeof desc, "all-gather", what, total);
  int *cd = malloc(sizeof(int) * 2 * (size_t)c->world);
  if (!cd) return snprintf(c->err, sizeof c->err, "rank %d: %s: out of memory", c->rank, desc), -1;
  int rc = 0;
  if (total <= INT_MAX) {
    for (int r = 0, at = 0; r < c->world; at += cd[r], r++)
      cd[r] = (int)(counts[r] * elem), cd[c->world + r] = at;
    int i = take_slot(c, desc);
    rc = i < 0 ? -1
               : run_blocking(c, i,
                              MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, cd,
                                              cd + c->world, MPI_BYTE, m->comm, &m->req[i]));
  } else {
    size_t at = 0; /* beyond int counts: one broadcast per owner */
    for (int r = 0; r < c->world && !rc; at += counts[r] * elem, r++)
      rc = m_broadcast(c, (char *)buf + at, counts[r] * elem, r, what);
  }
  free(cd);
  return rc ? -1 : 0;
}

static int m_barrier(vt_coll *c, const char *what) {
  if (c->world <= 1) return 0;
  mpi_impl *m = c->impl;
  char desc[96];
  snprintf(desc, sizeof desc, "barrier (%s)", what ? what : "sync");
  int i = take_slot(c, desc);
  if (i < 0) return -1;
  return run_blocking(c, i, MPI_Ibarrier(m->comm, &m->req[i]));
}

static void m_free(vt_coll *c) {
  mpi_impl *m = c->impl;
  if (!m) return;
  if (m->watching) {
    __atomic_store_n(&m->stop_watch, 1, __ATOMIC_RELEASE);
    pthread_join(m->watchdog, NULL);
  }
  if (m->comm != MPI_COMM_NULL) MPI_Comm_free(&m->comm);
  free(m);
  c->impl = NULL;
}

static const vt_coll_ops mpi_ops = {.name = "mpi",
                                    .allreduce = m_allreduce,
                                    .iallreduce = m_iallreduce,
                                    .ireduce = m_ireduce,
                                    .wait = m_wait,
                                    .test = m_test,
                                    .reduce_scatter = m_reduce_scatter,
                                    .allgather = m_allgather,
                                    .allgatherv = m_allgatherv,
                                    .broadcast = m_broadcast,
                                    .barrier = m_barrier,
                                    .free = m_free};

int vt_coll_open_mpi(vt_coll *c, const vt_dist *d, double timeout_s, char *err, size_t err_len) {
  memset(c, 0, sizeof *c);
  c->ops = &mpi_ops;
  c->dist = d;
  c->rank = d->rank;
  c->world = d->world;
  c->timeout_s = timeout_s > 0 ? timeout_s : VT_COLL_DEFAULT_TIMEOUT;
  if (d->world <= 1) return 0; /* nothing to talk to: every call returns at once */
  mpi_impl *m = calloc(1, sizeof *m);
  if (!m) {
    vt_seterr(err, err_len, "collectives: out of memory");
    return -1;
  }
  m->comm = MPI_COMM_NULL;
  c->impl = m;
  if (MPI_Comm_dup(MPI_COMM_WORLD, &m->comm) != MPI_SUCCESS) {
    vt_seterr(err, err_len, "collectives: MPI_Comm_dup failed");
    m_free(c);
    return -1;
  }
  MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
  m->rank = c->rank, m->world = c->world, m->timeout_s = c->timeout_s;
  m->watching = pthread_create(&m->watchdog, NULL, watch, m) == 0;
  return 0;
}

#else /* a build without MPI: a group of one, every call returns at once */

static int n_allreduce(vt_coll *c, void *buf, size_t n, vt_coll_dtype dt, vt_coll_op op,
                       const char *what) {
  (void)c, (void)buf, (void)n, (void)dt, (void)op, (void)what;
  return 0;
}
static int n_start(vt_coll *c, float *buf, size_t n, const char *what, vt_coll_req *req) {
  (void)c, (void)buf, (void)n, (void)what;
  req->slot = -1;
  return 0;
}
static int n_ireduce(vt_coll *c, float *buf, size_t n, int root, const char *what,
                     vt_coll_req *req) {
  (void)root;
  return n_start(c, buf, n, what, req);
}
static int n_wait(vt_coll *c, vt_coll_req *req) {
  (void)c, (void)req;
  return 0;
}
static int n_test(vt_coll *c, vt_coll_req *req, bool *done) {
  (void)c, (void)req;
  *done = true;
  return 0;
}
static int n_flat(vt_coll *c, float *buf, size_t n, const char *what) {
  (void)c, (void)buf, (void)n, (void)what;
  return 0;
}
static int n_bcast(vt_coll *c, void *buf, size_t bytes, int root, const char *what) {
  (void)c, (void)buf, (void)bytes, (void)root, (void)what;
  return 0;
}
static int n_barrier(vt_coll *c, const char *what) {
  (void)c, (void)what;
  return 0;
}
static int n_gatherv(vt_coll *c, void *buf, const size_t *counts, size_t elem, const char *what) {
  (void)c, (void)buf, (void)counts, (void)elem, (void)what;
  return 0;
}
static const vt_coll_ops one_ops = {.name = "mpi",
                                    .allreduce = n_allreduce,
                                    .iallreduce = n_start,
                                    .ireduce = n_ireduce,
                                    .wait = n_wait,
                                    .test = n_test,
                                    .reduce_scatter = n_flat,
                                    .allgather = n_flat,
                                    .allgatherv = n_gatherv,
                                    .broadcast = n_bcast,
                                    .barrier = n_barrier};

int vt_coll_open_mpi(vt_coll *c, const vt_dist *d, double timeout_s, char *err, size_t err_len) {
  (void)err, (void)err_len;
  memset(c, 0, sizeof *c);
  c->ops = &one_ops;
  c->dist = d;
  c->rank = 0;
  c->world = 1;
  c->timeout_s = timeout_s > 0 ? timeout_s : VT_COLL_DEFAULT_TIMEOUT;
  return 0;
}

#endif
