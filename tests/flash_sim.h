/* A host emulation of the few CUDA features the flash attention kernels use
 * (autograd/cuda/cuda_attn_flash.cu compiled with VT_FLASH_SIM, by tests/test_flash_sim.cpp;
 * the grid-stride kernels of cuda_fused.cu with VT_CUDA_SIM, by tests/test_cuda_sim.cpp):
 * a block runs as one fiber (ucontext) per thread, switched at barriers, so __syncthreads,
 * warp shuffles and mma.sync behave as collectives of the block / warp. mma.sync.m16n8k16
 * (bf16 in, f32 accumulate) is computed from the fragments every lane holds, placed by the
 * PTX ISA's layout for that shape (A: a0..a7 at rows g, g + 8 and columns 2t, 2t + 8; B: b0..b3
 * at rows 2t, 2t + 8 and column g; C: rows g, g + 8, columns 2t, 2t + 1; g = lane / 4,
 * t = lane % 4). This checks the kernels' tiling, masks, indexing and softmax on any machine;
 * the layout itself is the ISA's, as the kernels assume it. One block at a time: shared
 * memory is a static buffer, __shared__ locals are static. Barrier counts that differ between
 * threads (divergent __syncthreads) are reported as errors. */
#ifndef VT_FLASH_SIM_H
#define VT_FLASH_SIM_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

extern "C" {
#include "autograd/kernels_attn.h"
}

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static
#define FL_DYN_SMEM(name) unsigned char *name = vt_sim.smem

struct vt_sim_dim3 {
  unsigned x, y, z;
};
struct float4 {
  float x, y, z, w;
};
struct float2 {
  float x, y;
};
struct uint2 {
  uint32_t x, y;
};
static inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
static inline float2 make_float2(float a, float b) { return {a, b}; }
static inline uint2 make_uint2(uint32_t a, uint32_t b) { return {a, b}; }

struct __nv_bfloat16 {
  uint16_t x;
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y; /* x in the low half */
};
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {vt_f32_to_bf16(f)}; }
static inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return {__float2bfloat16_rn(a), __float2bfloat16_rn(b)};
}

#define VT_SIM_THREADS 128
#define VT_SIM_SMEM (256 << 10)
#define VT_SIM_STACK (256 << 10)

struct vt_sim_state {
  vt_sim_dim3 block, grid;
  unsigned char *smem;
  ucontext_t main, fib[VT_SIM_THREADS];
  char *stacks;
  int cur;                        /* the running thread */
  int state[VT_SIM_THREADS];      /* 0 running, 1 at a barrier, 2 done */
  long barriers[VT_SIM_THREADS];  /* barriers passed, per thread */
  int64_t xchg[VT_SIM_THREADS];   /* shuffle / barrier-or exchange */
  uint32_t ma[VT_SIM_THREADS][6]; /* mma fragments: a0..a3, b0, b1 */
  int errors;
  void (*body)(void);
};
static vt_sim_state vt_sim;

struct vt_sim_tid {
  unsigned x;
};
#define threadIdx (vt_sim_tid{(unsigned)vt_sim.cur})
#define blockIdx (vt_sim.block)
#define gridDim (vt_sim.grid)
#define blockDim (vt_sim_dim3{VT_SIM_THREADS, 1, 1})

static inline void __syncthreads(void) {
  int t = vt_sim.cur;
  vt_sim.state[t] = 1;
  vt_sim.barriers[t]++;
  swapcontext(&vt_sim.fib[t], &vt_sim.main);
}

static inline int __syncthreads_or(int v) {
  vt_sim.xchg[vt_sim.cur] = v != 0;
  __syncthreads();
  int any = 0;
  for (int i = 0; i < VT_SIM_THREADS; i++) any |= (int)vt_sim.xchg[i];
  __syncthreads();
  return any;
}

/* Every call site in the kernels is reached by all threads of the block (uniform control flow),
 * so a shuffle can be a block-wide exchange. */
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int o) {
  (void)mask;
  int t = vt_sim.cur;
  memcpy(&vt_sim.xchg[t], &v, sizeof v);
  __syncthreads();
  T r;
  memcpy(&r, &vt_sim.xchg[t ^ o], sizeof r);
  __syncthreads();
  return r;
}

static inline float vt_sim_bf(uint32_t r, int hi) {
  return vt_bf16_to_f32((uint16_t)(r >> (16 * hi)));
}

static inline void vt_sim_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  int t = vt_sim.cur, w0 = t & ~31, lane = t & 31;
  for (int i = 0; i < 4; i++) vt_sim.ma[t][i] = a[i];
  vt_sim.ma[t][4] = b0;
  vt_sim.ma[t][5] = b1;
  __syncthreads();
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; l++) {
    const uint32_t *f = vt_sim.ma[w0 + l];
    int g = l >> 2, q = l & 3;
    for (int h = 0; h < 2; h++) {
      A[g][2 * q + h] = vt_sim_bf(f[0], h);
      A[g + 8][2 * q + h] = vt_sim_bf(f[1], h);
      A[g][2 * q + 8 + h] = vt_sim_bf(f[2], h);
      A[g + 8][2 * q + 8 + h] = vt_sim_bf(f[3], h);
      B[2 * q + h][g] = vt_sim_bf(f[4], h);
      B[2 * q + 8 + h][g] = vt_sim_bf(f[5], h);
    }
  }
  int g = lane >> 2, q = lane & 3;
  for (int e = 0; e < 4; e++) {
    int r = g + 8 * (e >> 1), col = 2 * q + (e & 1);
    float s = 0.0f;
    for (int k = 0; k < 16; k++) s += A[r][k] * B[k][col];
    c[e] += s;
  }
  __syncthreads();
}

static void vt_sim_trampoline(void) {
  vt_sim.body();
  vt_sim.state[vt_sim.cur] = 2;
  /* returning resumes uc_link: the scheduler */
}

/* Runs body() as every thread of every block of the grid. */
static void vt_sim_launch(vt_sim_dim3 grid, void (*body)(void)) {
  if (!vt_sim.smem) {
    vt_sim.smem = (unsigned char *)aligned_alloc(64, VT_SIM_SMEM);
    vt_sim.stacks = (char *)malloc((size_t)VT_SIM_STACK * VT_SIM_THREADS);
  }
  vt_sim.grid = grid;
  vt_sim.body = body;
  for (unsigned by = 0; by < grid.y; by++)
    for (unsigned bx = 0; bx < grid.x; bx++) {
      vt_sim.block = {bx, by, 0};
      memset(vt_sim.smem, 0xff, VT_SIM_SMEM); /* NaN-like garbage: unwritten tiles show */
      for (int t = 0; t < VT_SIM_THREADS; t++) {
        getcontext(&vt_sim.fib[t]);
        vt_sim.fib[t].uc_stack.ss_sp = vt_sim.stacks + (size_t)t * VT_SIM_STACK;
        vt_sim.fib[t].uc_stack.ss_size = VT_SIM_STACK;
        vt_sim.fib[t].uc_link = &vt_sim.main;
        makecontext(&vt_sim.fib[t], vt_sim_trampoline, 0);
        vt_sim.state[t] = 0;
        vt_sim.barriers[t] = 0;
      }
      for (;;) {
        int done = 0;
        for (int t = 0; t < VT_SIM_THREADS; t++) {
          if (vt_sim.state[t] == 2) {
            done++;
            continue;
          }
          vt_sim.cur = t;
          vt_sim.state[t] = 0;
          swapcontext(&vt_sim.main, &vt_sim.fib[t]);
        }
        if (done == VT_SIM_THREADS) break;
        int at = 0, fin = 0;
        for (int t = 0; t < VT_SIM_THREADS; t++) {
          at += vt_sim.state[t] == 1;
          fin += vt_sim.state[t] == 2;
        }
        bool same = true;
        for (int t = 1; t < VT_SIM_THREADS; t++) same &= vt_sim.barriers[t] == vt_sim.barriers[0];
        if ((at && fin) || !same) {
          fprintf(stderr, "flash_sim: block (%u, %u): threads disagree on barriers\n", bx, by);
          vt_sim.errors++;
          return;
        }
      }
    }
}

#endif
