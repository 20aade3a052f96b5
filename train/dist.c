/* MPI process group; see dist.h. MPI is the one process-wide state it keeps. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "train/dist.h"

#include <stdio.h>
#include <string.h>

#ifdef VT_HAVE_MPI
#include <mpi.h>
#include <stdbool.h>
#include <stdlib.h>

/* Whether a launcher (mpirun, srun) started this process as one rank of a job. */
static bool launched_by_mpi(void) {
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS",
                        "SLURM_NTASKS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv(vars[i])) return true;
  return false;
}

int vt_dist_init(vt_dist *d, int *argc, char ***argv, char *err, size_t err_len) {
  memset(d, 0, sizeof *d);
  d->world = d->local_world = 1;
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited && !launched_by_mpi()) return 0; /* a plain process: a group of one */
  inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    /* Open MPI's non-blocking collectives (libnbc) as the reducer needs them; a value set by
     * the user (mpirun --mca, the environment) wins. See docs/dist.md for the figures.
     *  - all-reduce: for in-place buffers it takes a binomial tree at any size, so on 2 ranks
     *    one rank receives the whole bucket, sums it and sends it back while the other
     *    waits; the ring (reduce-scatter + all-gather) splits sums and traffic evenly;
     *  - reduce (ZeRO 2): on 2-4 ranks it takes a chain of small segments, one segment per
     *    progress call, so a bucket tested between backward's nodes never completes during
     *    backward; the binomial tree moves it in log2(ranks) rounds. */
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
    setenv("OMPI_MCA_coll_libnbc_ireduce_algorithm", "2", 0);
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
      snprintf(err, err_len, "MPI_Init failed");
      return -1;
    }
    d->initialized_here = 1;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &d->world);
  d->local_world = 1;
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node) ==
      MPI_SUCCESS) {
    MPI_Comm_rank(node, &d->local_rank);
    MPI_Comm_size(node, &d->local_world);
    MPI_Comm_free(&node);
  }
  return 0;
}

void vt_dist_finalize(vt_dist *d) {
  if (d->initialized_here) MPI_Finalize();
  d->initialized_here = 0;
}

/* MPI counts are int: reduce in slices. */
static int allreduce(const vt_dist *d, void *buf, size_t n, MPI_Datatype type, size_t size,
                     MPI_Op op) {
  if (d->world <= 1) return 0;
  const size_t slice = (size_t)1 << 30;
  for (size_t off = 0; off < n; off += slice) {
    int count = (int)(n - off < slice ? n - off : slice);
    if (MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * size, count, type, op, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
      return -1;
  }
  return 0;
}

int vt_dist_allreduce_sum(const vt_dist *d, float *buf, size_t n) {
  return allreduce(d, buf, n, MPI_FLOAT, sizeof(float), MPI_SUM);
}

int vt_dist_allreduce_sum_f64(const vt_dist *d, double *buf, size_t n) {
  return allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_SUM);
}

int vt_dist_allreduce_max_f64(const vt_dist *d, double *buf, size_t n) {
  return allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_MAX);
}

int vt_dist_broadcast(const vt_dist *d, void *buf, size_t bytes) {
  if (d->world <= 1) return 0;
  const size_t slice = (size_t)1 << 30;
  for (size_t off = 0; off < bytes; off += slice) {
    int count = (int)(bytes - off < slice ? bytes - off : slice);
    if (MPI_Bcast((char *)buf + off, count, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
  }
  return 0;
}

void vt_dist_barrier(const vt_dist *d) {
  if (d->world > 1) MPI_Barrier(MPI_COMM_WORLD);
}

void vt_dist_abort(const vt_dist *d, int code) {
  if (d->world > 1) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
}

#else

int vt_dist_init(vt_dist *d, int *argc, char ***argv, char *err, size_t err_len) {
  (void)argc, (void)argv, (void)err, (void)err_len;
  memset(d, 0, sizeof *d);
  d->world = d->local_world = 1;
  return 0;
}
void vt_dist_abort(const vt_dist *d, int code) { (void)d, (void)code; }
void vt_dist_finalize(vt_dist *d) { (void)d; }
int vt_dist_allreduce_sum(const vt_dist *d, float *buf, size_t n) {
  (void)d, (void)buf, (void)n;
  return 0;
}
int vt_dist_allreduce_sum_f64(const vt_dist *d, double *buf, size_t n) {
  (void)d, (void)buf, (void)n;
  return 0;
}
int vt_dist_allreduce_max_f64(const vt_dist *d, double *buf, size_t n) {
  (void)d, (void)buf, (void)n;
  return 0;
}
int vt_dist_broadcast(const vt_dist *d, void *buf, size_t bytes) {
  (void)d, (void)buf, (void)bytes;
  return 0;
}
void vt_dist_barrier(const vt_dist *d) { (void)d; }

#endif
