/* Thread-parallel loops of the CPU kernels. `VT_OMP_IF(cond, "omp parallel for ...", stmt)`
 * runs stmt under that OpenMP pragma when cond holds and as plain code otherwise. Why not an
 * `if` clause: a region whose if clause is false still goes through libgomp, which allocates
 * a one-thread team (memalign) and frees it again each time, about 0.3 us and a heap
 * allocation per small op; a fixed-shape training step must not allocate. Pragmas inside
 * stmt are written as _Pragma("omp simd"). */
#ifndef VT_CPU_PAR_H
#define VT_CPU_PAR_H

#define VT_OMP_IF(cond, pragma, ...)                                                               \
  do {                                                                                             \
    if (cond) {                                                                                    \
      _Pragma(pragma) __VA_ARGS__                                                                  \
    } else {                                                                                       \
      __VA_ARGS__                                                                                  \
    }                                                                                              \
  } while (0)

#endif
