/* vt_arena: a bump allocator for per-step activations and temporaries. Memory comes in
 * blocks from a backend (or the host heap); reset() rewinds and, when a step needed more than one
 * block, replaces them by one block of the combined size, so that after the first step of a
 * fixed-shape loop no further allocation happens. */
#ifndef VT_ARENA_H
#define VT_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/backend.h"

#define VT_ARENA_ALIGN 64

typedef struct {
  char *base;
  size_t size;
  size_t used;
} vt_arena_block;

typedef struct {
  const vt_backend *be; /* blocks come from this backend; NULL: host malloc */
  vt_arena_block blocks[32];
  int n_blocks;
  size_t min_block;       /* size of the first block */
  size_t high_water;      /* most bytes in use at once since init */
  int64_t n_block_allocs; /* how many times a block was allocated (for tests) */
} vt_arena;

void vt_arena_init(vt_arena *a, const vt_backend *be, size_t min_block);
void vt_arena_free(vt_arena *a);
/* NULL only when the underlying allocator fails. */
void *vt_arena_alloc(vt_arena *a, size_t bytes);
void vt_arena_reset(vt_arena *a);
/* A position in the arena; rewinding to it frees everything allocated after it (used by
 * activation recompute to drop a segment's activations once its gradients are done). */
typedef struct {
  int block;
  size_t used;
} vt_arena_mark;
vt_arena_mark vt_arena_get_mark(const vt_arena *a);
void vt_arena_rewind(vt_arena *a, vt_arena_mark m);
/* Whether p was allocated after the mark (and so is freed by rewinding to it). */
bool vt_arena_after_mark(const vt_arena *a, vt_arena_mark m, const void *p);
size_t vt_arena_used(const vt_arena *a);

#endif
