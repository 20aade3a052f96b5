/* Scenes of coloured shapes for the generated VITA dataset: shapes_draw picks 1-3 objects
 * (distinct shapes, colours and quadrants, in reading order), shapes_render paints them into an RGB
 * image, and the text helpers say them as a caption and as single-word question/answer pairs. */
#ifndef VT_DATA_SHAPES_H
#define VT_DATA_SHAPES_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/rng.h"

enum { SHAPES_N_SHAPES = 3, SHAPES_N_COLOURS = 4, SHAPES_N_POS = 4, SHAPES_MAX_OBJ = 3 };

extern const char *const shapes_shape_names[SHAPES_N_SHAPES];   /* circle square triangle */
extern const char *const shapes_colour_names[SHAPES_N_COLOURS]; /* red green blue yellow */
extern const uint8_t shapes_colour_rgb[SHAPES_N_COLOURS][3];
extern const char
    *const shapes_pos_names[SHAPES_N_POS]; /* top left, top right, bottom left, bottom right */
extern const char *const shapes_count_names[SHAPES_MAX_OBJ + 1]; /* -, one, two, three */

typedef struct {
  int shape, colour, pos;
  int cx, cy, r; /* centre and half-size in pixels */
} shapes_obj;

typedef struct {
  int n;
  shapes_obj obj[SHAPES_MAX_OBJ];
} shapes_scene;

/* Question types, each keyed by an attribute a tiny model can look up (colour: the object at a
 * position; shape and position: the object of a colour); answers are one word (positions
 * two). */
typedef enum { SHAPES_Q_COLOUR, SHAPES_Q_SHAPE, SHAPES_Q_COUNT, SHAPES_Q_POS, SHAPES_N_Q } shapes_q;
extern const char *const shapes_q_names[SHAPES_N_Q]; /* colour shape count position */

/* A random scene for an image of side `size`. */
void shapes_draw(vt_rng *r, int size, shapes_scene *s);
/* Paints s onto a light, slightly noisy background: rgb has size * size * 3 bytes (HWC). */
void shapes_render(const shapes_scene *s, int size, vt_rng *r, uint8_t *rgb);
/* The object of s whose colour matches the pixel (x, y), or -1 for the background (tests). */
int shapes_obj_at(const shapes_scene *s, int x, int y);
/* "A red circle at the top left and a blue square at the bottom right." into buf. */
void shapes_caption(const shapes_scene *s, char *buf, size_t len);
/* A question of type q about object k of s (k ignored for count) and its answer. */
void shapes_question(const shapes_scene *s, shapes_q q, int k, char *question, size_t qlen,
                     char *answer, size_t alen);
/* How many answers a question type has (its uniform chance is 1 / that). */
int shapes_q_answers(shapes_q q);

#endif
