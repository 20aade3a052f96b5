/* Reader of the text fixtures; see fixture.h. */
#include "tests/fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *path, const char *what) {
  fprintf(stderr, "fixture %s: %s\n", path, what);
  exit(1);
}

vt_fixture *vt_fixture_load(const char *rel_path) {
  const char *dir = getenv("VT_FIXTURES");
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures", rel_path);
  FILE *f = fopen(path, "r");
  if (!f) die(path, "cannot open (is VT_FIXTURES set? run the test through ctest)");
  vt_fixture *fx = calloc(1, sizeof *fx);
  int cap = 0;
  char head[1024];
  while (fscanf(f, " %1023[^\n]", head) == 1) {
    if (head[0] == '#') continue;
    if (fx->n == cap) {
      cap = cap ? cap * 2 : 16;
      fx->t = realloc(fx->t, sizeof *fx->t * (size_t)cap);
    }
    vt_fixture_tensor *t = &fx->t[fx->n++];
    memset(t, 0, sizeof *t);
    char dtype[8];
    int off = 0;
    if (sscanf(head, "%127s %7s %d%n", t->name, dtype, &t->ndim, &off) != 3 || t->ndim < 0 ||
        t->ndim > 8)
      die(path, "bad header line");
    t->is_int = strcmp(dtype, "i32") == 0;
    t->n = 1;
    char *p = head + off;
    for (int d = 0; d < t->ndim; d++) {
      char *end;
      t->shape[d] = strtoll(p, &end, 10);
      if (end == p) die(path, "bad shape");
      p = end;
      t->n *= t->shape[d];
    }
    t->f = malloc(sizeof(float) * (size_t)(t->n ? t->n : 1));
    t->i = malloc(sizeof(int32_t) * (size_t)(t->n ? t->n : 1));
    for (long k = 0; k < t->n; k++) {
      double v;
      if (fscanf(f, "%lf", &v) != 1) die(path, "too few values");
      t->f[k] = (float)v;
      t->i[k] = (int32_t)v;
    }
  }
  fclose(f);
  return fx;
}

const vt_fixture_tensor *vt_fixture_get(const vt_fixture *fx, const char *name) {
  for (int i = 0; i < fx->n; i++)
    if (strcmp(fx->t[i].name, name) == 0) return &fx->t[i];
  fprintf(stderr, "fixture: no tensor named %s\n", name);
  exit(1);
}

void vt_fixture_free(vt_fixture *fx) {
  for (int i = 0; i < fx->n; i++) {
    free(fx->t[i].f);
    free(fx->t[i].i);
  }
  free(fx->t);
  free(fx);
}
