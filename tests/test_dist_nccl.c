// ctest-labels: mpi cuda
/* The NCCL implementation of the collective interface on GPU ranks (mpirun -np 2, one GPU per
 * rank by node-local rank): all-reduce (blocking and bucket-style non-blocking),
 * reduce-scatter and all-gather of a length that is no multiple of the world (the padded
 * path), broadcast, against the values computed on the host. Skipped (77) without GPUs, or in
 * a build without NCCL (then opening it must fail with a message saying so). */
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"
#include "train/coll.h"

int main(int argc, char **argv) {
  vt_dist d;
  char err[600];
  if (vt_dist_init(&d, &argc, &argv, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int gpus = vt_cuda_device_count();
  if (d.world < 2 || gpus < 1) {
    printf("NCCL ranks need mpirun -np 2 and a GPU (%d rank(s), %d GPU(s)): skipped\n", d.world,
           gpus);
    vt_dist_finalize(&d);
    return 77;
  }
  const char *why = NULL;
  vt_backend *be = vt_backend_cuda(d.local_rank % gpus, &why);
  CHECK_MSG(be != NULL, "%s", why ? why : "no CUDA backend");
  vt_coll c;
  if (vt_coll_open_nccl(&c, &d, be, 60, err, sizeof err)) {
#ifdef VT_HAVE_NCCL
    CHECK_MSG(false, "%s", err);
#else
    CHECK(strstr(err, "NCCL") != NULL);
    printf("no NCCL in this build (%s): skipped\n", err);
    vt_backend_free(be);
    vt_dist_finalize(&d);
    return 77;
#endif
  }
  const size_t n = 1001; /* no multiple of 2 or 3: the sharded paths pad */
  float *host = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
  float *dev = vt_buf_alloc(be, sizeof(float) * n);
  CHECK(dev != NULL);
  for (size_t i = 0; i < n; i++) {
    host[i] = (float)(d.rank + 1) * (float)(i % 7);
    want[i] = 0;
    for (int r = 0; r < d.world; r++) want[i] += (float)(r + 1) * (float)(i % 7);
  }
  /* blocking and non-blocking all-reduce */
  vt_buf_from_host(be, dev, host, sizeof(float) * n);
  CHECK(vt_coll_allreduce_f32(&c, dev, n, "test") == 0);
  float *got = malloc(sizeof(float) * n);
  vt_buf_to_host(be, got, dev, sizeof(float) * n);
  CHECK_CLOSE("all-reduce", got, want, (long)n, 1e-5, 1e-6);
  vt_buf_from_host(be, dev, host, sizeof(float) * n);
  vt_coll_req q;
  CHECK(c.ops->iallreduce(&c, dev, n, "bucket", &q) == 0 && c.ops->wait(&c, &q) == 0);
  vt_buf_to_host(be, got, dev, sizeof(float) * n);
  CHECK_CLOSE("non-blocking all-reduce", got, want, (long)n, 1e-5, 1e-6);
  /* reduce-scatter: this rank's shard holds the sums */
  size_t lo, hi;
  vt_coll_shard_range(n, d.world, d.rank, &lo, &hi);
  vt_buf_from_host(be, dev, host, sizeof(float) * n);
  CHECK(c.ops->reduce_scatter(&c, dev, n, "test") == 0);
  vt_buf_to_host(be, got, dev, sizeof(float) * n);
  CHECK_CLOSE("reduce-scatter shard", got + lo, want + lo, (long)(hi - lo), 1e-5, 1e-6);
  /* all-gather: every shard from its owner */
  for (size_t i = 0; i < n; i++) host[i] = -1;
  for (size_t i = lo; i < hi; i++) host[i] = (float)i;
  for (size_t i = 0; i < n; i++) want[i] = (float)i;
  vt_buf_from_host(be, dev, host, sizeof(float) * n);
  CHECK(c.ops->allgather(&c, dev, n, "test") == 0);
  vt_buf_to_host(be, got, dev, sizeof(float) * n);
  CHECK_CLOSE("all-gather", got, want, (long)n, 0, 0);
  /* broadcast from rank 1 */
  for (size_t i = 0; i < n; i++) host[i] = (float)(d.rank * 1000 + (int)(i % 13));
  for (size_t i = 0; i < n; i++) want[i] = (float)(1000 + (int)(i % 13));
  vt_buf_from_host(be, dev, host, sizeof(float) * n);
  CHECK(c.ops->broadcast(&c, dev, sizeof(float) * n, 1, "test") == 0);
  vt_buf_to_host(be, got, dev, sizeof(float) * n);
  CHECK_CLOSE("broadcast", got, want, (long)n, 0, 0);
  vt_coll_close(&c);
  vt_buf_free(be, dev);
  vt_backend_free(be);
  free(host);
  free(want);
  free(got);
  char name[64];
  snprintf(name, sizeof name, "test_dist_nccl rank %d", d.rank);
  int rc = vt_test_finish(name);
  vt_dist_finalize(&d);
  return rc;
}
