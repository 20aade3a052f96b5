/* Thread-parallel loops of the CPU kernels. `VT_OMP_IF(cond, "omp parallel for ...", stmt)`
 * runs stmt under that OpenMP pragma when cond holds and as plain code otherwise. Why not an
 * `if` clause: a region whose if clause is false still goes through libgomp, which allocates
 * a one-thread team (memalign) and frees it again each time, about 0.3 us and a heap
 * allocation per small op; a fixed-shape training step must not allocate. The same holds
 * for a region nested in another (kernels called from a parallel loop) and for a one-thread
 * pool, so those run plain too. Pragmas inside stmt are written as _Pragma("omp simd"). */
#ifndef VT_CPU_PAR_H
#define VT_CPU_PAR_H

#include <omp.h>

#define VT_OMP_IF(cond, pragma, ...)                                                               \
  do {                                                                                             \
    if ((cond) && omp_get_max_threads() > 1 && !omp_in_parallel()) {                               \
      _Pragma(pragma) __VA_ARGS__                                                                  \
    } else {                                                                                       \
      __VA_ARGS__                                                                                  \
    }                                                                                              \
  } while (0)

/* A worksharing loop inside the body of a VT_OMP_IF("omp parallel ...") region: divided among
 * the team when the body runs in parallel, a plain loop when it runs serially (an orphaned
 * `omp for` would also make libgomp allocate a team). */
#define VT_OMP_FOR(pragma, ...)                                                                    \
  do {                                                                                             \
    if (omp_in_parallel()) {                                                                       \
      _Pragma(pragma) __VA_ARGS__                                                                  \
    } else {                                                                                       \
      __VA_ARGS__                                                                                  \
    }                                                                                              \
  } while (0)

#endif
