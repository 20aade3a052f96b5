/* Data-parallel process group over MPI (CPU ranks): rank/world from mpirun, gradient
 * all-reduce over the flat gradient buffer, broadcast of parameters. Without MPI in the
 * build (or without mpirun) it is a group of one and every call is a cheap no-op. */
#ifndef VT_DIST_H
#define VT_DIST_H

#include <stddef.h>

typedef struct {
  int rank, world;
  int local_rank, local_world; /* among the ranks of this node (the GPU a rank takes) */
  int initialized_here;        /* this process called MPI_Init and must finalize */
} vt_dist;

/* Joins the MPI job when a launcher (mpirun, srun) started this process; otherwise the
 * process is a group of one and MPI is not initialised. Returns 0, or -1 with a message. */
int vt_dist_init(vt_dist *d, int *argc, char ***argv, char *err, size_t err_len);
void vt_dist_finalize(vt_dist *d);
/* buf <- sum over ranks of buf (host memory), in place: the caller divides where it knows
 * by what (the trainer: by the global token count). Returns 0 or -1. */
int vt_dist_allreduce_sum(const vt_dist *d, float *buf, size_t n);
/* The same in double (loss sums and counts, exact to 2^53), and the maximum. */
int vt_dist_allreduce_sum_f64(const vt_dist *d, double *buf, size_t n);
int vt_dist_allreduce_max_f64(const vt_dist *d, double *buf, size_t n);
/* buf <- rank 0's buf. Returns 0 or -1. */
int vt_dist_broadcast(const vt_dist *d, void *buf, size_t bytes);
void vt_dist_barrier(const vt_dist *d);
/* Ends every rank of the job with exit status code (MPI_Abort); returns only in a group of
 * one. For the command line after an error on some ranks: the others may be waiting in a
 * collective that will never complete. */
void vt_dist_abort(const vt_dist *d, int code);

#endif
