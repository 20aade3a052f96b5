/* Scenes of coloured shapes; see shapes.h. Positions are the four quadrants, so at most one
 * object sits in each and the words say where each object is without ambiguity; each object
 * fills most of its quadrant, which is 2 x 2 of the tiny tower's 16 image tokens (112 px,
 * patch 14, pixel shuffle 2), so a 64-dim model can read it from a fixed place.
 * The shapes differ where the tower looks: each of the quadrant's four tokens holds one
 * corner of the object's box. A square fills its box (its corners reach the outer patches), a
 * circle of the same radius leaves the box's corners empty, and the triangle (apex up) leaves
 * both top corners empty. (With the square at 0.8 of the radius, as before, square and circle
 * covered the same patches up to a few pixels, and 1.3's shape questions stayed at chance.) */
#include "data/shapes.h"

#include <stdio.h>
#include <string.h>

const char *const shapes_shape_names[SHAPES_N_SHAPES] = {"circle", "square", "triangle"};
const char *const shapes_colour_names[SHAPES_N_COLOURS] = {"red", "green", "blue", "yellow"};
const uint8_t shapes_colour_rgb[SHAPES_N_COLOURS][3] = {
    {220, 30, 30}, {30, 170, 40}, {30, 60, 220}, {230, 200, 20}};
const char *const shapes_pos_names[SHAPES_N_POS] = {"top left", "top right", "bottom left",
                                                    "bottom right"};
const char *const shapes_count_names[SHAPES_MAX_OBJ + 1] = {"none", "one", "two", "three"};
const char *const shapes_q_names[SHAPES_N_Q] = {"colour", "shape", "count", "position"};

static int below(vt_rng *r, int n) { return (int)vt_rng_below(r, (uint64_t)n); }

/* k distinct values of [0, n) in random order into out. */
static void pick(vt_rng *r, int n, int k, int *out) {
  int all[8];
  for (int i = 0; i < n; i++) all[i] = i;
  for (int i = 0; i < k; i++) {
    int j = i + below(r, n - i), t = all[i];
    all[i] = all[j], all[j] = t;
    out[i] = all[i];
  }
}

void shapes_draw(vt_rng *r, int size, shapes_scene *s) {
  memset(s, 0, sizeof *s);
  s->n = 1 + below(r, SHAPES_MAX_OBJ);
  int sh[SHAPES_MAX_OBJ], co[SHAPES_MAX_OBJ], po[SHAPES_MAX_OBJ];
  pick(r, SHAPES_N_SHAPES, s->n, sh);
  pick(r, SHAPES_N_COLOURS, s->n, co);
  pick(r, SHAPES_N_POS, s->n, po);
  /* quadrant centres; size and place jitter a little, the object stays in its quadrant */
  int jit = size / 28 > 0 ? size / 28 : 1;
  for (int i = 0; i < s->n; i++) {
    shapes_obj *o = &s->obj[i];
    o->shape = sh[i], o->colour = co[i], o->pos = po[i];
    o->r = size / 5 - jit / 2 + below(r, jit + 1); /* inside the quadrant with the jitter */
    o->cx = size / 4 + (o->pos & 1) * size / 2 + below(r, jit + 1) - jit / 2;
    o->cy = size / 4 + (o->pos >> 1) * size / 2 + below(r, jit + 1) - jit / 2;
  }
  /* in reading order (top left first): the caption then says the quadrants in a fixed order,
   * which a tiny model learns to read from fixed image tokens */
  for (int i = 1; i < s->n; i++)
    for (int j = i; j > 0 && s->obj[j].pos < s->obj[j - 1].pos; j--) {
      shapes_obj t = s->obj[j];
      s->obj[j] = s->obj[j - 1], s->obj[j - 1] = t;
    }
}

static int inside(const shapes_obj *o, int x, int y) {
  int dx = x - o->cx, dy = y - o->cy, r = o->r;
  switch (o->shape) {
  case 0: return dx * dx + dy * dy <= r * r;
  case 1: return dx >= -r && dx <= r && dy >= -r && dy <= r;
  default: /* pointing up: apex at cy - r, base at cy + r, half-width growing linearly */
    if (dy < -r || dy > r) return 0;
    return 2 * (dx < 0 ? -dx : dx) * r <= (dy + r) * r;
  }
}

void shapes_render(const shapes_scene *s, int size, vt_rng *r, uint8_t *rgb) {
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++) {
      uint8_t *p = rgb + ((size_t)y * (size_t)size + (size_t)x) * 3;
      int k = shapes_obj_at(s, x, y), noise = below(r, 11) - 5;
      for (int c = 0; c < 3; c++) {
        int v = (k < 0 ? 225 : shapes_colour_rgb[s->obj[k].colour][c]) + noise;
        p[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
}

int shapes_obj_at(const shapes_scene *s, int x, int y) {
  for (int i = 0; i < s->n; i++)
    if (inside(&s->obj[i], x, y)) return i;
  return -1;
}

void shapes_caption(const shapes_scene *s, char *buf, size_t len) {
  size_t o = 0;
  for (int i = 0; i < s->n && o < len; i++) {
    const shapes_obj *b = &s->obj[i];
    const char *sep = i == 0 ? "A" : i + 1 == s->n ? " and a" : ", a";
    o += (size_t)snprintf(buf + o, len - o, "%s %s %s at the %s", sep,
                          shapes_colour_names[b->colour], shapes_shape_names[b->shape],
                          shapes_pos_names[b->pos]);
  }
  if (o + 1 < len) buf[o] = '.', buf[o + 1] = '\0';
}

void shapes_question(const shapes_scene *s, shapes_q q, int k, char *question, size_t qlen,
                     char *answer, size_t alen) {
  const shapes_obj *b = &s->obj[k];
  switch (q) {
  case SHAPES_Q_COLOUR:
    snprintf(question, qlen, "What colour is the object at the %s?", shapes_pos_names[b->pos]);
    snprintf(answer, alen, "%s", shapes_colour_names[b->colour]);
    break;
  case SHAPES_Q_SHAPE:
    snprintf(question, qlen, "What shape is the %s object?", shapes_colour_names[b->colour]);
    snprintf(answer, alen, "%s", shapes_shape_names[b->shape]);
    break;
  case SHAPES_Q_COUNT:
    snprintf(question, qlen, "How many objects are there?");
    snprintf(answer, alen, "%s", shapes_count_names[s->n]);
    break;
  default:
    snprintf(question, qlen, "Where is the %s object?", shapes_colour_names[b->colour]);
    snprintf(answer, alen, "%s", shapes_pos_names[b->pos]);
    break;
  }
}

int shapes_q_answers(shapes_q q) {
  return q == SHAPES_Q_COLOUR  ? SHAPES_N_COLOURS
         : q == SHAPES_Q_SHAPE ? SHAPES_N_SHAPES
         : q == SHAPES_Q_COUNT ? SHAPES_MAX_OBJ
                               : SHAPES_N_POS;
}
