/* Bump allocation in blocks; see arena.h. */
#include "autograd/arena.h"

#include <stdlib.h>
#include <string.h>

void vt_arena_init(vt_arena *a, const vt_backend *be, size_t min_block) {
  memset(a, 0, sizeof *a);
  a->be = be;
  a->min_block = min_block ? min_block : ((size_t)64 << 20);
}

void vt_arena_free(vt_arena *a) {
  for (int i = 0; i < a->n_blocks; i++) {
    if (a->be)
      a->be->free(a->be, a->blocks[i].base);
    else
      free(a->blocks[i].base);
  }
  a->n_blocks = 0;
}

size_t vt_arena_used(const vt_arena *a) {
  size_t u = 0;
  for (int i = 0; i < a->n_blocks; i++) u += a->blocks[i].used;
  return u;
}

static int add_block(vt_arena *a, size_t size) {
  if (a->n_blocks == (int)(sizeof a->blocks / sizeof a->blocks[0])) return -1;
  char *p = a->be ? a->be->alloc(a->be, size) : malloc(size);
  if (!p) return -1;
  a->blocks[a->n_blocks++] = (vt_arena_block){p, size, 0};
  a->n_block_allocs++;
  return 0;
}

void *vt_arena_alloc(vt_arena *a, size_t bytes) {
  bytes = (bytes + VT_ARENA_ALIGN - 1) & ~(size_t)(VT_ARENA_ALIGN - 1);
  if (bytes == 0) bytes = VT_ARENA_ALIGN;
  vt_arena_block *b = a->n_blocks ? &a->blocks[a->n_blocks - 1] : NULL;
  if (!b || b->size - b->used < bytes) {
    size_t grow = a->n_blocks ? a->blocks[a->n_blocks - 1].size * 2 : a->min_block;
    if (grow < bytes) grow = bytes;
    if (add_block(a, grow)) return NULL;
    b = &a->blocks[a->n_blocks - 1];
  }
  void *p = b->base + b->used;
  b->used += bytes;
  size_t used = vt_arena_used(a);
  if (used > a->high_water) a->high_water = used;
  return p;
}

void vt_arena_reset(vt_arena *a) {
  if (a->n_blocks > 1) {
    /* The step needed several blocks: keep one block big enough for all of them. */
    size_t total = 0;
    for (int i = 0; i < a->n_blocks; i++) total += a->blocks[i].size;
    vt_arena_free(a);
    if (add_block(a, total)) return; /* allocation failed: the next alloc retries */
  }
  if (a->n_blocks) a->blocks[0].used = 0;
}

vt_arena_mark vt_arena_get_mark(const vt_arena *a) {
  if (!a->n_blocks) return (vt_arena_mark){-1, 0};
  return (vt_arena_mark){a->n_blocks - 1, a->blocks[a->n_blocks - 1].used};
}

void vt_arena_rewind(vt_arena *a, vt_arena_mark m) {
  for (int i = m.block + 1; i < a->n_blocks; i++) a->blocks[i].used = 0;
  if (m.block >= 0 && m.block < a->n_blocks) a->blocks[m.block].used = m.used;
}

bool vt_arena_after_mark(const vt_arena *a, vt_arena_mark m, const void *p) {
  const char *c = p;
  for (int i = m.block < 0 ? 0 : m.block; i < a->n_blocks; i++) {
    const char *start = a->blocks[i].base + (i == m.block ? m.used : 0);
    if (c >= start && c < a->blocks[i].base + a->blocks[i].size) return true;
  }
  return false;
}
