// ctest-labels: unit cuda
/* The tensor-core flash attention (autograd/cuda/cuda_attn_flash.cu) against the CPU kernels,
 * at the kernel interface: every mask kind, per-sample lengths (one sample sees nothing),
 * prefix lengths, packed segments, GQA, a bias with its gradient (per head, shared over the
 * batch, and shared over both), head dims 64 and 128, lengths that are not multiples of the
 * tiles, Tq < Tk. The flash path runs when the geometry allows bf16 (vt_attn_geom.lowp).
 *
 * Each case draws random q, k, v, dout and starting gradients (the kernels accumulate), and
 * compares with the CPU given the same q, k, v, dout rounded to bf16, so that what is left is the
 * rounding of P and dS to bf16 on the way into the tensor cores (relative 2^-9 each) and
 * the summation order: every element must satisfy |got - ref| <= 2^-5 (|ref| + rms(ref)) and
 * each tensor ||got - ref|| / ||ref|| <= 1e-2 (bf16 operands land between 1e-3 and 1e-2);
 * lse within 1e-2, -inf where the CPU has it. Outputs are poisoned (NaN) first, so an
 * unwritten element fails. Two flash runs must agree bit for bit (no atomics), and with
 * VT_CUDA_SIMPLE=1 the same geometry must give the simple kernel's bits exactly (the switch
 * that bypasses the fast kernels works). Skips (77) without a GPU; `--cpu-twice` runs the
 * harness with the CPU on both sides (bit-identical), for machines without one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/kernels_attn.h"
#include "autograd/rng.h"
#include "tests/check.h"

typedef struct {
  const char *name;
  int64_t B, H, Hkv, Tq, Tk, D;
  vt_attn_mask_kind mask;
  int64_t chunk, left, prefix;
  bool lengths, prefix_lengths, segments;
  int bias; /* 0 none, 1 [B, H], 2 [1, H], 3 [1, 1] */
} attn_case;

static const attn_case CASES[] = {
    {"bidir D64", 2, 4, 4, 77, 77, 64, VT_ATTN_BIDIRECTIONAL, 0, 0, 0, false, false, false, 0},
    {"causal GQA D64", 2, 4, 2, 130, 130, 64, VT_ATTN_CAUSAL, 0, 0, 0, false, false, false, 0},
    {"causal Tq<Tk D128", 1, 2, 1, 40, 100, 128, VT_ATTN_CAUSAL, 0, 0, 0, false, false, false, 0},
    {"chunk L1 D64", 1, 2, 2, 150, 150, 64, VT_ATTN_CHUNK, 24, 1, 0, false, false, false, 0},
    {"chunk all D128", 1, 2, 1, 96, 96, 128, VT_ATTN_CHUNK, 40, -1, 0, false, false, false, 0},
    {"prefix D64", 2, 2, 1, 90, 90, 64, VT_ATTN_PREFIX, 0, 0, 17, false, false, false, 0},
    {"prefix lengths D64", 2, 2, 2, 70, 70, 64, VT_ATTN_PREFIX, 0, 0, 0, false, true, false, 0},
    {"lengths (one empty) D64", 3, 2, 1, 66, 66, 64, VT_ATTN_BIDIRECTIONAL, 0, 0, 0, true, false,
     false, 0},
    {"segments causal D64", 2, 2, 2, 100, 100, 64, VT_ATTN_CAUSAL, 0, 0, 0, false, false, true, 0},
    {"bias BH D64", 2, 2, 1, 70, 70, 64, VT_ATTN_BIDIRECTIONAL, 0, 0, 0, false, false, false, 1},
    {"bias 1H causal D128", 2, 2, 2, 65, 65, 128, VT_ATTN_CAUSAL, 0, 0, 0, false, false, false, 2},
    {"bias 11 lengths D64", 2, 4, 2, 50, 50, 64, VT_ATTN_BIDIRECTIONAL, 0, 0, 0, true, false, false,
     3},
};

/* One side's device (or host) buffers. */
typedef struct {
  float *q, *k, *v, *out, *lse, *dout, *dq, *dk, *dv, *bias, *dbias;
  int32_t *lengths, *prefix_lengths, *segments;
  void *work;
} side;

typedef struct {
  int64_t nq, nk, nl, nb, nseg;
} sizes;

static float *up(const vt_backend *be, const float *h, int64_t n) {
  float *d = vt_buf_alloc(be, sizeof(float) * (size_t)(n ? n : 1));
  if (d && n) vt_buf_from_host(be, d, h, sizeof(float) * (size_t)n);
  return d;
}

static float *down(const vt_backend *be, const float *d, int64_t n) {
  float *h = malloc(sizeof(float) * (size_t)(n ? n : 1));
  if (n) vt_buf_to_host(be, h, d, sizeof(float) * (size_t)n);
  return h;
}

static float bf16_round(float x) { /* round to nearest even, as the kernels' conversion */
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&x, &u, 4);
  return x;
}

/* |got - ref| <= 2^-5 (|ref| + rms(ref)) everywhere and the norm-relative error <= 1e-2. */
static bool close_bf16(const char *what, const float *got, const float *ref, int64_t n) {
  double ss = 0, se = 0;
  for (int64_t i = 0; i < n; i++) ss += (double)ref[i] * ref[i];
  double rms = n ? sqrt(ss / (double)n) : 0;
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - ref[i]);
    se += e * e;
    if (!(e <= 0.03125 * (fabs(ref[i]) + rms))) {
      if (bad++ < 4)
        fprintf(stderr, "  %s[%lld]: got %.7g, want %.7g (rms %.3g)\n", what, (long long)i, got[i],
                ref[i], rms);
    }
  }
  double rel = ss > 0 ? sqrt(se / ss) : sqrt(se);
  if (!(rel <= 1e-2)) fprintf(stderr, "  %s: relative error %.3g > 1e-2\n", what, rel);
  return bad == 0 && rel <= 1e-2;
}

static bool same_bits(const float *a, const float *b, int64_t n) {
  return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* Host inputs of one case. */
typedef struct {
  float *q, *k, *v, *dout, *dq0, *dk0, *dv0, *bias, *db0;
  int32_t lengths[4], prefix_lengths[4], *segments;
} host_in;

static void draw(const attn_case *c, const sizes *z, vt_rng *r, host_in *h, bool round) {
  float **bufs[] = {&h->q, &h->k, &h->v, &h->dout, &h->dq0, &h->dk0, &h->dv0, &h->bias, &h->db0};
  int64_t ns[] = {z->nq, z->nk, z->nk, z->nq, z->nq, z->nk, z->nk, z->nb, z->nb};
  for (int i = 0; i < 9; i++) {
    *bufs[i] = malloc(sizeof(float) * (size_t)(ns[i] ? ns[i] : 1));
    for (int64_t j = 0; j < ns[i]; j++) (*bufs[i])[j] = 2.0f * vt_rng_uniform(r) - 1.0f;
  }
  for (int64_t j = 0; j < z->nb; j++) h->bias[j] *= 2.0f;
  if (round)
    for (int i = 0; i < 4; i++) /* q, k, v, dout */
      for (int64_t j = 0; j < ns[i]; j++) (*bufs[i])[j] = bf16_round((*bufs[i])[j]);
  for (int64_t b = 0; b < c->B; b++) {
    h->lengths[b] = b == 1 ? 0 : (int32_t)(c->Tk - 3 * b - 1); /* sample 1 sees nothing */
    h->prefix_lengths[b] = (int32_t)(5 + 31 * b);
  }
  h->segments = malloc(sizeof(int32_t) * (size_t)(z->nseg ? z->nseg : 1));
  for (int64_t b = 0; b < c->B; b++) /* runs of 23 + 10 b positions */
    for (int64_t s = 0; s < c->Tq; s += 23 + 10 * b)
      for (int64_t t = s; t < s + 23 + 10 * b && t < c->Tq; t++) {
        h->segments[(b * c->Tq + t) * 2] = (int32_t)s;
        h->segments[(b * c->Tq + t) * 2 + 1] =
            (int32_t)(s + 23 + 10 * b < c->Tq ? s + 23 + 10 * b : c->Tq);
      }
}

static void host_free(host_in *h) {
  float *bufs[] = {h->q, h->k, h->v, h->dout, h->dq0, h->dk0, h->dv0, h->bias, h->db0};
  for (int i = 0; i < 9; i++) free(bufs[i]);
  free(h->segments);
}

/* What a run gives back on the host. */
typedef struct {
  float *out, *lse, *dq, *dk, *dv, *dbias;
} result;

static void result_free(result *r) {
  free(r->out);
  free(r->lse);
  free(r->dq);
  free(r->dk);
  free(r->dv);
  free(r->dbias);
}

static vt_attn_geom geometry(const attn_case *c) {
  vt_attn_geom g = {.B = c->B,
                    .H = c->H,
                    .Hkv = c->Hkv,
                    .Tq = c->Tq,
                    .Tk = c->Tk,
                    .Dk = c->D,
                    .Dv = c->D,
                    .scale = 1.0f / sqrtf((float)c->D),
                    .mask = c->mask,
                    .chunk = c->chunk,
                    .left_chunks = c->left,
                    .prefix = c->prefix};
  if (c->bias) {
    g.bias_b = c->bias == 1 ? c->B : 1;
    g.bias_h = c->bias == 3 ? 1 : c->H;
  }
  return g;
}

/* Forward and backward of one case on `be`; bf16 sets the geometry's flag. */
static result run(const vt_backend *be, const attn_case *c, const sizes *z, const host_in *h,
                  bool bf16) {
  vt_attn_geom g = geometry(c);
  g.lowp = bf16;
  side s;
  memset(&s, 0, sizeof s);
  s.q = up(be, h->q, z->nq);
  s.k = up(be, h->k, z->nk);
  s.v = up(be, h->v, z->nk);
  s.dout = up(be, h->dout, z->nq);
  s.dq = up(be, h->dq0, z->nq);
  s.dk = up(be, h->dk0, z->nk);
  s.dv = up(be, h->dv0, z->nk);
  float *nan = malloc(sizeof(float) * (size_t)z->nq);
  for (int64_t i = 0; i < z->nq; i++) nan[i] = NAN;
  s.out = up(be, nan, z->nq);
  s.lse = up(be, nan, z->nl);
  free(nan);
  if (c->bias) {
    s.bias = up(be, h->bias, z->nb);
    s.dbias = up(be, h->db0, z->nb);
    g.bias = s.bias;
  }
  if (c->lengths) {
    s.lengths = (int32_t *)up(be, (const float *)h->lengths, c->B);
    g.lengths = s.lengths;
  }
  if (c->prefix_lengths) {
    s.prefix_lengths = (int32_t *)up(be, (const float *)h->prefix_lengths, c->B);
    g.prefix_lengths = s.prefix_lengths;
  }
  if (c->segments) {
    s.segments = (int32_t *)up(be, (const float *)h->segments, z->nseg);
    g.segments = s.segments;
  }
  s.work = vt_buf_alloc(be, be->attn->workspace(be, &g));
  be->attn->forward(be, &g, s.q, s.k, s.v, s.out, s.lse, s.work);
  be->attn->backward(be, &g, s.q, s.k, s.v, s.out, s.dout, s.lse, s.dq, s.dk, s.dv, s.dbias,
                     s.work);
  vt_backend_sync(be);
  result r = {down(be, s.out, z->nq), down(be, s.lse, z->nl), down(be, s.dq, z->nq),
              down(be, s.dk, z->nk),  down(be, s.dv, z->nk),  NULL};
  if (c->bias) r.dbias = down(be, s.dbias, z->nb);
  void *all[] = {s.q,       s.k,  s.v,    s.out,   s.lse,     s.dout,           s.dq,
                 s.dk,      s.dv, s.bias, s.dbias, s.lengths, s.prefix_lengths, s.work,
                 s.segments};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) vt_buf_free(be, all[i]);
  return r;
}

static bool lse_close(const float *got, const float *ref, int64_t n) {
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    bool ok = isinf(ref[i]) ? got[i] == ref[i] : fabsf(got[i] - ref[i]) <= 1e-2f;
    if (!ok && bad++ < 4)
      fprintf(stderr, "  lse[%lld]: got %.7g, want %.7g\n", (long long)i, got[i], ref[i]);
  }
  return bad == 0;
}

static void check_case(const vt_backend *gpu, bool cpu_twice, const attn_case *c, vt_rng *r) {
  const vt_backend *cpu = vt_backend_cpu();
  sizes z = {c->B * c->H * c->Tq * c->D, c->B * c->Hkv * c->Tk * c->D, c->B * c->H * c->Tq, 0,
             2 * c->B * c->Tq};
  if (c->bias) z.nb = (c->bias == 1 ? c->B : 1) * (c->bias == 3 ? 1 : c->H) * c->Tq * c->Tk;
  host_in h;
  draw(c, &z, r, &h, true);
  /* the CPU honours the bf16 flag too (its oneDNN tiles, checked by test_bf16_attn): CPU
   * against CPU compares the f32 kernels */
  bool lowp = !cpu_twice;
  result ref = run(cpu, c, &z, &h, false);
  result got = run(gpu, c, &z, &h, lowp);
  result again = run(gpu, c, &z, &h, lowp);
  printf("%-26s", c->name);
  struct {
    const char *what;
    float *g, *w, *a;
    int64_t n;
  } outs[] = {{"out", got.out, ref.out, again.out, z.nq},
              {"dq", got.dq, ref.dq, again.dq, z.nq},
              {"dk", got.dk, ref.dk, again.dk, z.nk},
              {"dv", got.dv, ref.dv, again.dv, z.nk},
              {"dbias", got.dbias, ref.dbias, again.dbias, z.nb}};
  for (int i = 0; i < 5; i++) {
    if (!outs[i].n) continue;
    if (cpu_twice)
      CHECK_MSG(same_bits(outs[i].g, outs[i].w, outs[i].n), "%s: %s differs CPU vs CPU", c->name,
                outs[i].what);
    else
      CHECK_MSG(close_bf16(outs[i].what, outs[i].g, outs[i].w, outs[i].n), "%s: %s", c->name,
                outs[i].what);
    CHECK_MSG(same_bits(outs[i].g, outs[i].a, outs[i].n), "%s: %s differs between two runs",
              c->name, outs[i].what);
  }
  CHECK_MSG(lse_close(got.lse, ref.lse, z.nl), "%s: lse", c->name);
  /* the switch: VT_CUDA_SIMPLE=1 under bf16 gives the simple kernel's f32 bits */
  setenv("VT_CUDA_SIMPLE", "1", 1);
  result simple = run(gpu, c, &z, &h, lowp);
  unsetenv("VT_CUDA_SIMPLE");
  result f32 = run(gpu, c, &z, &h, false);
  CHECK_MSG(same_bits(simple.out, f32.out, z.nq) && same_bits(simple.dq, f32.dq, z.nq) &&
                same_bits(simple.dk, f32.dk, z.nk) && same_bits(simple.dv, f32.dv, z.nk),
            "%s: VT_CUDA_SIMPLE=1 does not give the simple kernels' results", c->name);
  printf(" checked\n");
  result_free(&ref);
  result_free(&got);
  result_free(&again);
  result_free(&simple);
  result_free(&f32);
  host_free(&h);
}

int main(int argc, char **argv) {
  bool cpu_twice = argc > 1 && strcmp(argv[1], "--cpu-twice") == 0;
  const char *why = NULL;
  vt_backend *owned = cpu_twice ? NULL : vt_backend_cuda(0, &why);
  if (!cpu_twice && !owned) {
    printf("test_cuda_attn: no GPU (%s), skipped\n", why ? why : "?");
    return 77;
  }
  const vt_backend *gpu = cpu_twice ? vt_backend_cpu() : owned;
  vt_rng r;
  vt_rng_seed(&r, 1234);
  for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++)
    check_case(gpu, cpu_twice, &CASES[i], &r);
  vt_backend_free(owned);
  return vt_test_finish("test_cuda_attn");
}
