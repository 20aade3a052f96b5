// ctest-labels: unit
/* The tensor-core flash attention kernels (autograd/cuda/cuda_attn_flash.cu) run on the host
 * through tests/flash_sim.h (a fiber per thread, mma.sync from the ISA's fragment layout),
 * against the CPU's attention kernels on the same bf16-rounded q, k, v, dout: every mask kind,
 * lengths with an empty sample, prefix lengths, segments, GQA, the bias and its gradient (per
 * head and batch, shared over the batch, shared over both), head dims 64 and 128, lengths that
 * are not multiples of the tiles, Tq < Tk. Tolerances as in test_cuda_attn (bf16 rounding of P
 * and dS): |got - ref| <= 2^-5 (|ref| + rms(ref)) per element and 1e-2 relative per tensor;
 * outputs are poisoned first. This is what can be checked without a GPU: the tiling, masks,
 * online softmax, GQA / bias loops and every index; test_cuda_attn runs the same kernels on
 * the device. */
#define VT_FLASH_SIM 1
#include <functional>

#include "autograd/cuda/cuda_attn_flash.cu"

extern "C" {
#include "autograd/rng.h"
#include "tests/check.h"
}

static std::function<void()> g_kernel;
static void run_kernel(void) { g_kernel(); }

template <int D>
static void sim_forward(const vt_attn_geom &g, const float *q, const float *k, const float *v,
                        float *out, float *lse) {
  size_t smem = sizeof(bf16) * (size_t)(FB_Q * (D + 8) + FB_K * (D + 8) + D * (FB_K + 8));
  CHECK(smem <= VT_SIM_SMEM);
  g_kernel = [&] { flash_fwd<D>(g, q, k, v, out, lse); };
  vt_sim_launch({(unsigned)((g.Tq + FB_Q - 1) / FB_Q), (unsigned)(g.B * g.H), 1}, run_kernel);
}

template <int D>
static void sim_backward(const vt_attn_geom &g, const float *q, const float *k, const float *v,
                         const float *out, const float *dout, const float *lse, float *dq,
                         float *dk, float *dv, float *dbias) {
  int64_t rows = g.B * g.H * g.Tq;
  float *Dl = (float *)malloc(sizeof(float) * (size_t)rows);
  for (int64_t r = 0; r < rows; r++) { /* as attn_delta_kernel: dout . out per row */
    float s = 0.0f;
    for (int64_t d = 0; d < g.Dv; d++) s += dout[r * g.Dv + d] * out[r * g.Dv + d];
    Dl[r] = s;
  }
  int64_t sb = dbias && g.bias_b == 1 ? 1 : g.B, sh = dbias && g.bias_h == 1 ? 1 : g.H;
  g_kernel = [&] { flash_dq<D>(g, sb, sh, q, k, v, dout, lse, Dl, dq, dbias); };
  vt_sim_launch({(unsigned)((g.Tq + FQ_Q - 1) / FQ_Q), (unsigned)(sb * sh), 1}, run_kernel);
  g_kernel = [&] { flash_dkv<D>(g, q, k, v, dout, lse, Dl, dk, dv); };
  vt_sim_launch({(unsigned)((g.Tk + FK_K - 1) / FK_K), (unsigned)(g.B * g.Hkv), 1}, run_kernel);
  free(Dl);
}

struct sim_case {
  const char *name;
  int64_t B, H, Hkv, Tq, Tk, D;
  vt_attn_mask_kind mask;
  int64_t chunk, left, prefix;
  bool lengths, prefix_lengths, segments;
  int bias; /* 0 none, 1 [B, H], 2 [1, H], 3 [1, 1] */
};

static const sim_case CASES[] = {
    {"bidir D64", 1, 2, 2, 77, 77, 64, VT_ATTN_BIDIRECTIONAL, 0, 0, 0, false, false, false, 0},
    {"causal GQA D64", 1, 4, 2, 130, 130, 64, VT_ATTN_CAUSAL, 0, 0, 0, false, false, false, 0},
    {"causal Tq<Tk D128", 1, 2, 1, 40, 100, 128, VT_ATTN_CAUSAL, 0, 0, 0, false, false, false, 0},
    {"chunk L1 D64", 1, 1, 1, 150, 150, 64, VT_ATTN_CHUNK, 24, 1, 0, false, false, false, 0},
    {"chunk all D128", 1, 1, 1, 96, 96, 128, VT_ATTN_CHUNK, 40, -1, 0, false, false, false, 0},
    {"prefix D64", 2, 1, 1, 90, 90, 64, VT_ATTN_PREFIX, 0, 0, 17, false, false, false, 0},
    {"prefix lengths D64", 2, 1, 1, 70, 70, 64, VT_ATTN_PREFIX, 0, 0, 0, false, true, false, 0},
    {"lengths (one empty) D64", 3, 1, 1, 66, 66, 64, VT_ATTN_BIDIRECTIONAL, 0, 0, 0, true, false,
     false, 0},
    {"segments causal D64", 2, 1, 1, 100, 100, 64, VT_ATTN_CAUSAL, 0, 0, 0, false, false, true, 0},
    {"bias BH D64", 2, 2, 1, 70, 70, 64, VT_ATTN_BIDIRECTIONAL, 0, 0, 0, false, false, false, 1},
    {"bias 1H causal D128", 2, 2, 2, 65, 65, 128, VT_ATTN_CAUSAL, 0, 0, 0, false, false, false, 2},
    {"bias 11 lengths D64", 2, 2, 1, 50, 50, 64, VT_ATTN_BIDIRECTIONAL, 0, 0, 0, true, false, false,
     3},
};

static float round_bf16(float x) { return vt_bf16_to_f32(vt_f32_to_bf16(x)); }

static float *draw(vt_rng *r, int64_t n, float scale, bool round) {
  float *p = (float *)malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    p[i] = scale * (2.0f * vt_rng_uniform(r) - 1.0f);
    if (round) p[i] = round_bf16(p[i]);
  }
  return p;
}

static float *copy(const float *s, int64_t n) {
  float *p = (float *)malloc(sizeof(float) * (size_t)(n ? n : 1));
  memcpy(p, s, sizeof(float) * (size_t)n);
  return p;
}

static bool close_bf16(const char *what, const float *got, const float *ref, int64_t n) {
  double ss = 0, se = 0;
  for (int64_t i = 0; i < n; i++) ss += (double)ref[i] * ref[i];
  double rms = n ? sqrt(ss / (double)n) : 0;
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - ref[i]);
    se += e * e;
    if (!(e <= 0.03125 * (fabs(ref[i]) + rms)) && bad++ < 4)
      fprintf(stderr, "  %s[%lld]: got %.7g, want %.7g (rms %.3g)\n", what, (long long)i, got[i],
              ref[i], rms);
  }
  double rel = ss > 0 ? sqrt(se / ss) : sqrt(se);
  if (!(rel <= 1e-2)) fprintf(stderr, "  %s: relative error %.3g > 1e-2\n", what, rel);
  return bad == 0 && rel <= 1e-2;
}

static void check_case(const sim_case *c, vt_rng *r) {
  vt_attn_geom g = {};
  g.B = c->B, g.H = c->H, g.Hkv = c->Hkv, g.Tq = c->Tq, g.Tk = c->Tk, g.Dk = g.Dv = c->D;
  g.scale = 1.0f / sqrtf((float)c->D);
  g.mask = c->mask, g.chunk = c->chunk, g.left_chunks = c->left, g.prefix = c->prefix;
  int64_t nq = c->B * c->H * c->Tq * c->D, nk = c->B * c->Hkv * c->Tk * c->D;
  int64_t nl = c->B * c->H * c->Tq, nb = 0;
  if (c->bias) {
    g.bias_b = c->bias == 1 ? c->B : 1;
    g.bias_h = c->bias == 3 ? 1 : c->H;
    nb = g.bias_b * g.bias_h * c->Tq * c->Tk;
  }
  float *q = draw(r, nq, 1, true), *k = draw(r, nk, 1, true), *v = draw(r, nk, 1, true);
  float *dout = draw(r, nq, 1, true), *dq0 = draw(r, nq, 1, false), *dk0 = draw(r, nk, 1, false);
  float *dv0 = draw(r, nk, 1, false), *bias = draw(r, nb, 2, false), *db0 = draw(r, nb, 1, false);
  int32_t lengths[4], plen[4];
  for (int64_t b = 0; b < c->B; b++) {
    lengths[b] = b == 1 ? 0 : (int32_t)(c->Tk - 3 * b - 1);
    plen[b] = (int32_t)(5 + 31 * b);
  }
  int32_t *seg = (int32_t *)malloc(sizeof(int32_t) * (size_t)(2 * c->B * c->Tq));
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t s = 0; s < c->Tq; s += 23 + 10 * b)
      for (int64_t t = s; t < s + 23 + 10 * b && t < c->Tq; t++) {
        seg[(b * c->Tq + t) * 2] = (int32_t)s;
        seg[(b * c->Tq + t) * 2 + 1] = (int32_t)(s + 23 + 10 * b < c->Tq ? s + 23 + 10 * b : c->Tq);
      }
  if (c->bias) g.bias = bias;
  if (c->lengths) g.lengths = lengths;
  if (c->prefix_lengths) g.prefix_lengths = plen;
  if (c->segments) g.segments = seg;
  /* the CPU reference */
  const vt_backend *cpu = vt_backend_cpu();
  float *rout = draw(r, nq, 1, false), *rlse = draw(r, nl, 1, false);
  float *rdq = copy(dq0, nq), *rdk = copy(dk0, nk), *rdv = copy(dv0, nk), *rdb = copy(db0, nb);
  void *work = malloc(cpu->attn->workspace(cpu, &g) + 64);
  cpu->attn->forward(cpu, &g, q, k, v, rout, rlse, work);
  cpu->attn->backward(cpu, &g, q, k, v, rout, dout, rlse, rdq, rdk, rdv, c->bias ? rdb : NULL,
                      work);
  /* the kernels, on poisoned outputs */
  float *out = draw(r, nq, 1, false), *lse = draw(r, nl, 1, false);
  for (int64_t i = 0; i < nq; i++) out[i] = NAN;
  for (int64_t i = 0; i < nl; i++) lse[i] = NAN;
  float *dq = copy(dq0, nq), *dk = copy(dk0, nk), *dv = copy(dv0, nk), *db = copy(db0, nb);
  int errs = vt_sim.errors;
  if (c->D == 64) {
    sim_forward<64>(g, q, k, v, out, lse);
    sim_backward<64>(g, q, k, v, out, dout, lse, dq, dk, dv, c->bias ? db : NULL);
  } else {
    sim_forward<128>(g, q, k, v, out, lse);
    sim_backward<128>(g, q, k, v, out, dout, lse, dq, dk, dv, c->bias ? db : NULL);
  }
  CHECK_MSG(vt_sim.errors == errs, "%s: barrier divergence", c->name);
  CHECK_MSG(close_bf16("out", out, rout, nq), "%s: out", c->name);
  CHECK_MSG(close_bf16("dq", dq, rdq, nq), "%s: dq", c->name);
  CHECK_MSG(close_bf16("dk", dk, rdk, nk), "%s: dk", c->name);
  CHECK_MSG(close_bf16("dv", dv, rdv, nk), "%s: dv", c->name);
  if (c->bias) CHECK_MSG(close_bf16("dbias", db, rdb, nb), "%s: dbias", c->name);
  int bad = 0;
  for (int64_t i = 0; i < nl; i++) {
    bool ok = isinf(rlse[i]) ? lse[i] == rlse[i] : fabsf(lse[i] - rlse[i]) <= 1e-2f;
    if (!ok && bad++ < 4)
      fprintf(stderr, "  lse[%lld]: got %.7g, want %.7g\n", (long long)i, lse[i], rlse[i]);
  }
  CHECK_MSG(bad == 0, "%s: lse", c->name);
  printf("%-26s checked\n", c->name);
  float *all[] = {q,   k,   v,   dout, dq0, dk0, dv0, bias, db0, rout, rlse,
                  rdq, rdk, rdv, rdb,  out, lse, dq,  dk,   dv,  db};
  for (float *p : all) free(p);
  free(seg);
  free(work);
}

int main(void) {
  vt_rng r;
  vt_rng_seed(&r, 99);
  for (const sim_case &c : CASES) check_case(&c, &r);
  return vt_test_finish("test_flash_sim");
}
