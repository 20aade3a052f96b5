// ctest-labels: unit
/* The CUDA kernels of autograd/cuda/cuda_fused.cu run on the host (tests/flash_sim.h: a fiber
 * per thread, 128 threads a block, grids small enough that the grid-stride loops wrap) against
 * the CPU backend:
 *   rope_qkv and its backward (rotated q/k, copied v, GQA, per-sample and shared positions,
 *   theta 0 with an odd head size, the float4 and scalar paths, written and accumulated): the CPU's
 * bits, since both form the angles the same way and rotate through vt_rope_pair; swiglu and its
 * backward (the vector and scalar paths, written and accumulated): the bits of the shared element
 * math with the GPU's sigmoid (vt_sigmoidf), and within 1e-6 of the CPU, whose sigmoid is its
 * vectorised one; index_add's sorted path (the (row, position) pairs stably sorted and the run
 * starts compacted on the host, standing in for CUB's radix sort and DeviceSelect::Flagged) and its
 *   in-order fallback: the CPU's bits, on data where another
 *   summation order gives other bits (checked);
 *   vt_for_vec, the split of the float4 passes of the other kernels (cuda_vec.cuh).
 * What the host cannot check is the hardware: CUB itself, timing, alignment faults. */
#define VT_CUDA_SIM 1
#include <algorithm>
#include <functional>
#include <initializer_list>
#include <utility>
#include <vector>

#include "autograd/cuda/cuda_fused.cu"
// a second kernel file: its own kernels, the same emulator
#include "autograd/cuda/cuda_ce.cu"
#include "autograd/cuda/cuda_chnorm.cu"
#include "autograd/cuda/cuda_colsum.cu"
#include "autograd/cuda/cuda_rows.cu"

extern "C" {
#include "autograd/kernels_loss.h"
#include "autograd/rng.h"
#include "tests/check.h"
}

static std::function<void()> g_kernel;
static void run_kernel(void) { g_kernel(); }

/* Launches body as a grid of gx x gy blocks of VT_SIM_THREADS threads. */
static void launch(unsigned gx, unsigned gy, std::function<void()> body) {
  g_kernel = std::move(body);
  vt_sim_launch({gx, gy, 1}, run_kernel);
}

static std::vector<float> draw(vt_rng *r, int64_t n, float lo, float hi) {
  std::vector<float> v((size_t)n);
  for (float &x : v) x = lo + (hi - lo) * vt_rng_uniform(r);
  return v;
}

static bool same_bits(const char *what, const std::vector<float> &got,
                      const std::vector<float> &want) {
  int bad = 0;
  for (size_t i = 0; i < want.size(); i++)
    if (memcmp(&got[i], &want[i], sizeof(float)) && bad++ < 4)
      fprintf(stderr, "  %s[%zu]: got %.9g, want %.9g\n", what, i, got[i], want[i]);
  return bad == 0;
}

static void check_rope_qkv(vt_rng *r, int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d,
                           float theta, bool shared_pos, int vec) {
  const vt_backend *cpu = vt_backend_cpu();
  int64_t nh = hq + 2 * hkv, np = b * t * nh * d, nq = b * hq * t * d, nk = b * hkv * t * d;
  std::vector<float> x = draw(r, np, -2, 2);
  std::vector<int32_t> pos((size_t)(b * t));
  for (int32_t &p : pos) p = (int32_t)(vt_rng_uniform(r) * 3000.0f);
  int64_t ps = shared_pos ? 0 : t;
  const int32_t *pp = theta > 0 ? pos.data() : NULL;
  std::vector<float> q(nq, NAN), k(nk, NAN), v(nk, NAN), rq(nq), rk(nk), rv(nk);
  cpu->norm->rope_qkv(cpu, b, t, hq, hkv, d, theta, pp, ps, x.data(), rq.data(), rk.data(),
                      rv.data());
  int64_t n = b * t * nh * ((d + 1) / 2) / vec;
  launch(2, 1, [&] {
    rope_qkv_kernel(b, t, hq, hkv, d, vec, theta, pp, ps, x.data(), q.data(), k.data(), v.data(),
                    false, false);
  });
  CHECK(n > 2 * VT_SIM_THREADS); /* the grid-stride loop wraps */
  char name[96];
  snprintf(name, sizeof name, "rope_qkv b%lld hq%lld hkv%lld d%lld theta %g%s vec %d", (long long)b,
           (long long)hq, (long long)hkv, (long long)d, theta, shared_pos ? " shared" : "", vec);
  CHECK_MSG(same_bits("q", q, rq) && same_bits("k", k, rk) && same_bits("v", v, rv), "%s", name);
  for (int acc = 0; acc < 2; acc++) {
    std::vector<float> dq = draw(r, nq, -1, 1), dk = draw(r, nk, -1, 1), dv = draw(r, nk, -1, 1);
    std::vector<float> dx = acc ? draw(r, np, -1, 1) : std::vector<float>(np, NAN);
    std::vector<float> rdx = dx;
    cpu->norm->rope_qkv_backward(cpu, b, t, hq, hkv, d, theta, pp, ps, dq.data(), dk.data(),
                                 dv.data(), rdx.data(), acc);
    launch(3, 1, [&] {
      rope_qkv_kernel(b, t, hq, hkv, d, vec, theta, pp, ps, dx.data(), dq.data(), dk.data(),
                      dv.data(), true, acc);
    });
    CHECK_MSG(same_bits("dx", dx, rdx), "%s backward%s", name, acc ? " accumulate" : "");
  }
  printf("%-48s checked\n", name);
}

/* The shared element math with vt_sigmoidf, computed here: the kernels' exact bits. */
static void swiglu_ref(int64_t rows, int64_t f, const float *x, const float *dy, float *y,
                       float *dx, bool acc) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < f; j++) {
      float g = x[r * 2 * f + j], u = x[r * 2 * f + f + j], s = vt_sigmoidf(g);
      y[r * f + j] = vt_swiglu_f(g, u, s);
      float a = vt_swiglu_dgate(g, u, s, dy[r * f + j]), b = vt_swiglu_dup(g, s, dy[r * f + j]);
      float *dg = dx + r * 2 * f + j, *du = dg + f;
      *dg = acc ? *dg + a : a;
      *du = acc ? *du + b : b;
    }
}

static void check_swiglu(vt_rng *r, int64_t rows, int64_t f, int vec) {
  const vt_backend *cpu = vt_backend_cpu();
  int64_t nx = rows * 2 * f, ny = rows * f;
  std::vector<float> x = draw(r, nx, -8, 8), dy = draw(r, ny, -1, 1);
  std::vector<float> y(ny, NAN), ry(ny), cy(ny), rdx0(nx);
  char name[64];
  snprintf(name, sizeof name, "swiglu rows %lld f %lld vec %d", (long long)rows, (long long)f, vec);
  launch(2, 1, [&] { swiglu_kernel(rows, f, vec, x.data(), y.data()); });
  swiglu_ref(rows, f, x.data(), dy.data(), ry.data(), rdx0.data(), false);
  cpu->swiglu(cpu, rows, f, x.data(), cy.data());
  CHECK_MSG(same_bits("y", y, ry), "%s", name);
  CHECK_CLOSE(name, y.data(), cy.data(), (long)ny, 1e-6, 1e-6);
  for (int acc = 0; acc < 2; acc++) {
    std::vector<float> dx = acc ? draw(r, nx, -1, 1) : std::vector<float>(nx, NAN);
    std::vector<float> rdx = dx, cdx = dx, unused(ny);
    launch(2, 1,
           [&] { swiglu_backward_kernel(rows, f, vec, x.data(), dy.data(), dx.data(), acc); });
    swiglu_ref(rows, f, x.data(), dy.data(), unused.data(), rdx.data(), acc);
    cpu->swiglu_backward(cpu, rows, f, x.data(), dy.data(), cdx.data(), acc);
    CHECK_MSG(same_bits("dx", dx, rdx), "%s backward%s", name, acc ? " accumulate" : "");
    CHECK_CLOSE(name, dx.data(), cdx.data(), (long)nx, 1e-6, 1e-6);
  }
  printf("%-48s checked\n", name);
}

static void check_index_add(vt_rng *r, int64_t outer, int64_t n_dst, int64_t inner, int64_t n_idx) {
  const vt_backend *cpu = vt_backend_cpu();
  std::vector<int32_t> idx((size_t)n_idx);
  for (int32_t &i : idx) /* mostly rows 0..2: long runs of repeated ids; n_dst - 1 untouched */
    i = (int32_t)(vt_rng_uniform(r) < 0.8f ? vt_rng_uniform(r) * 3
                                           : vt_rng_uniform(r) * (n_dst - 1));
  /* magnitudes over six decades: the sum of a row depends on the order of its terms */
  std::vector<float> src((size_t)(outer * n_idx * inner));
  for (float &s : src) s = (vt_rng_uniform(r) - 0.5f) * powf(10.0f, 6.0f * vt_rng_uniform(r) - 3);
  std::vector<float> dst0 = draw(r, outer * n_dst * inner, -1, 1), want = dst0;
  cpu->index_add(cpu, outer, n_dst, inner, src.data(), idx.data(), n_idx, want.data());
  /* the same terms summed in reverse position order differ somewhere: the check can fail */
  std::vector<float> rev = dst0;
  for (int64_t m = n_idx - 1; m >= 0; m--)
    for (int64_t o = 0; o < outer; o++)
      for (int64_t j = 0; j < inner; j++)
        rev[(o * n_dst + idx[m]) * inner + j] += src[(o * n_idx + m) * inner + j];
  CHECK(memcmp(rev.data(), want.data(), sizeof(float) * want.size()) != 0);
  /* the sort the launcher does with CUB: (row, position) pairs, stable by row */
  std::vector<uint32_t> pos((size_t)n_idx), keys((size_t)n_idx);
  std::vector<uint32_t> order((size_t)n_idx);
  launch(1, 1, [&] { iota_kernel(n_idx, order.data()); });
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return idx[a] < idx[b]; });
  for (int64_t i = 0; i < n_idx; i++) {
    pos[i] = order[i];
    keys[i] = (uint32_t)idx[order[i]];
  }
  char name[80];
  snprintf(name, sizeof name, "index_add outer %lld n_dst %lld inner %lld n_idx %lld",
           (long long)outer, (long long)n_dst, (long long)inner, (long long)n_idx);
  /* the runs: flags by the kernel, compacted as CUB's DeviceSelect::Flagged does */
  std::vector<uint8_t> flags((size_t)n_idx);
  launch(1, 1, [&] { run_flags_kernel(n_idx, keys.data(), flags.data()); });
  std::vector<uint32_t> starts;
  for (int64_t i = 0; i < n_idx; i++)
    if (flags[(size_t)i]) starts.push_back((uint32_t)i);
  int64_t n_runs = (int64_t)starts.size();
  CHECK(n_runs > 1 && n_runs < n_idx / 4); /* long runs */
  std::vector<float> got = dst0;
  launch(2, 5, [&] {
    index_add_runs_kernel(outer, n_dst, inner, src.data(), keys.data(), pos.data(), n_idx,
                          starts.data(), &n_runs, got.data());
  });
  CHECK_MSG(same_bits("sorted", got, want), "%s", name);
  got = dst0;
  launch(1, 1, [&] {
    index_add_ordered_kernel(outer, n_dst, inner, src.data(), idx.data(), n_idx, got.data());
  });
  CHECK_MSG(same_bits("ordered", got, want), "%s in order", name);
  printf("%-48s checked\n", name);
}

/* The order cuda_colsum.cu promises, computed here: per slice, warp w of nw sums rows w, w + nw,
 * ... in double, the warps meet in the fixed tree, the slices are added in order. */
template <class G>
static double colsum_model(const colsum_args &p, int nw, int64_t o, int64_t j, G g) {
  double total = 0.0, one = 0.0;
  for (int64_t sl = 0; sl < p.slices; sl++) {
    double v[CS_MAX_WARPS * 4] = {};
    int64_t r0 = sl * p.slice_rows, r1 = std::min(r0 + p.slice_rows, p.rows);
    for (int w = 0; w < nw; w++)
      for (int64_t r = r0 + w; r < r1; r += nw) v[w] += g(o, r, j);
    for (int s = nw / 2; s > 0; s /= 2)
      for (int w = 0; w < s; w++) v[w] += v[w + s];
    total += v[0];
    one = v[0];
  }
  return p.slices > 1 ? total : one;
}

/* Runs a planned column sum as the launcher does (the grid's z folded into the kernel's loop). */
static void colsum_run(colsum_args *p, std::vector<double> *part) {
  bool vec = colsum_vec(p);
  int64_t tiles = (p->cols + 32 * (vec ? 4 : 1) - 1) / (32 * (vec ? 4 : 1));
  part->assign((size_t)(p->outer * p->slices * p->cols), NAN);
  p->part = p->slices > 1 ? part->data() : NULL;
  colsum_args q = *p;
  launch((unsigned)tiles, (unsigned)p->slices, [&] {
    if (vec)
      colsum_part_kernel<4>(q);
    else
      colsum_part_kernel<1>(q);
  });
  if (p->slices > 1) launch(2, 1, [&] { colsum_slices_kernel(q); });
}

/* The bias-like gradient of operand `which`, broadcast over the leading dims of [n0, n1, c]
 * (shape1 puts a size-1 dim in front): against the model's bits and the CPU backend's sequential
 * f32 sum within (rows + 2) 2^-24 (|dst| + sum |g|) per column (the CPU's rounding bound; the
 * double sums add one rounding). */
static void check_colsum_grad(vt_rng *r, vt_binary_op op, int which, int64_t n0, int64_t n1,
                              int64_t c, bool misalign) {
  const vt_backend *cpu = vt_backend_cpu();
  int64_t rows = n0 * n1, n = rows * c;
  vt_bcast bc = {};
  bc.ndim = 4;
  int64_t shape[4] = {1, n0, n1, c}, dense[4] = {n, n1 * c, c, 1}, bias[4] = {0, 0, 0, 1};
  memcpy(bc.shape, shape, sizeof shape);
  memcpy(which ? bc.sb : bc.sa, bias, sizeof bias);
  memcpy(which ? bc.sa : bc.sb, dense, sizeof dense);
  std::vector<float> big = draw(r, n + 1, 0.5f, 2.0f), x = draw(r, c + 1, 0.5f, 2.0f);
  std::vector<float> dout = draw(r, n + 1, -1, 1), dst0 = draw(r, c, -1, 1);
  int sh = misalign ? 1 : 0; /* an operand off 16 bytes: the scalar path */
  const float *pdense = big.data() + sh, *pbias = x.data(), *pd = dout.data();
  const float *a = which ? pdense : pbias, *b = which ? pbias : pdense;
  std::vector<float> got = dst0, want = dst0, part_unused;
  colsum_args p;
  CHECK(colsum_plan(op, which, &bc, a, b, pd, got.data(), &p));
  CHECK(p.rows == rows && p.cols == c);
  std::vector<double> part;
  colsum_run(&p, &part);
  cpu->binary_backward(cpu, op, &bc, a, b, pd, which ? NULL : want.data(),
                       which ? want.data() : NULL);
  auto g = [&](int64_t, int64_t rr, int64_t j) {
    return (double)vt_binary_grad(op, which, a[which ? rr * c + j : j], b[which ? j : rr * c + j],
                                  pd[rr * c + j]);
  };
  std::vector<float> model = dst0;
  int bad = 0;
  for (int64_t j = 0; j < c; j++) {
    model[j] += (float)colsum_model(p, VT_SIM_THREADS / 32, 0, j, g);
    double mag = fabs(dst0[j]);
    for (int64_t rr = 0; rr < rows; rr++) mag += fabs(g(0, rr, j));
    double tol = (double)(rows + 2) * ldexp(1.0, -24) * mag;
    if (fabs((double)got[j] - want[j]) > tol && bad++ < 4)
      fprintf(stderr, "  col %lld: got %.9g, cpu %.9g, tol %.3g\n", (long long)j, got[j], want[j],
              tol);
  }
  char name[96];
  snprintf(name, sizeof name, "colsum grad op %d which %d rows %lld cols %lld%s%s", (int)op, which,
           (long long)rows, (long long)c, colsum_vec(&p) ? " vec" : "",
           p.slices > 1 ? " sliced" : "");
  CHECK_MSG(bad == 0, "%s: %d columns off the CPU", name, bad);
  CHECK_MSG(same_bits("colsum", got, model), "%s", name);
  printf("%-48s checked\n", name);
}

/* Layouts the column sum must leave to the general kernels. */
static void check_colsum_layouts(void) {
  float f[4] = {};
  colsum_args p;
  vt_bcast bc = {};
  bc.ndim = 3;
  int64_t shape[3] = {2, 5, 8}, dense[3] = {40, 8, 1};
  memcpy(bc.shape, shape, sizeof shape);
  memcpy(bc.sa, dense, sizeof dense);
  int64_t mid[3] = {8, 0, 1}; /* [2, 1, 8]: broadcast over the middle dim only */
  memcpy(bc.sb, mid, sizeof mid);
  CHECK(!colsum_plan(VT_BIN_ADD, 1, &bc, f, f, f, f, &p));
  int64_t col[3] = {5, 1, 0}; /* [2, 5, 1]: a reduced last dim */
  memcpy(bc.sb, col, sizeof col);
  CHECK(!colsum_plan(VT_BIN_ADD, 1, &bc, f, f, f, f, &p));
  int64_t none[3] = {40, 8, 1}; /* no broadcast: nothing to reduce */
  memcpy(bc.sb, none, sizeof none);
  CHECK(!colsum_plan(VT_BIN_ADD, 1, &bc, f, f, f, f, &p));
  int64_t lead[3] = {0, 0, 1}, other[3] = {0, 8, 1}; /* mul, the other operand [1, 5, 8] */
  memcpy(bc.sb, lead, sizeof lead);
  memcpy(bc.sa, other, sizeof other);
  CHECK(!colsum_plan(VT_BIN_MUL, 1, &bc, f, f, f, f, &p));
  CHECK(colsum_plan(VT_BIN_ADD, 1, &bc, f, f, f, f, &p)); /* add never reads it */
  CHECK(p.rows == 10 && p.cols == 8);
  printf("%-48s checked\n", "colsum layouts");
}

/* sum / mean over the middle axis of [outer, len, inner]: the model's bits, and the CPU's within
 * (len + 2) 2^-24 sum |x|. */
static void check_colsum_reduce(vt_rng *r, int64_t outer, int64_t len, int64_t inner, bool mean) {
  const vt_backend *cpu = vt_backend_cpu();
  std::vector<float> x = draw(r, outer * len * inner, -1, 1);
  std::vector<float> got(outer * inner, NAN), want(outer * inner), model(outer * inner);
  colsum_args p;
  colsum_reduce_plan(outer, len, inner, x.data(), got.data(), mean, &p);
  std::vector<double> part;
  colsum_run(&p, &part);
  cpu->reduce(cpu, mean ? VT_RED_MEAN : VT_RED_SUM, outer, len, inner, x.data(), want.data(), NULL);
  auto g = [&](int64_t o, int64_t l, int64_t j) { return (double)x[(o * len + l) * inner + j]; };
  int bad = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      model[o * inner + j] = (float)(colsum_model(p, VT_SIM_THREADS / 32, o, j, g) / p.div);
      double mag = 0;
      for (int64_t l = 0; l < len; l++) mag += fabs(g(o, l, j));
      double tol = (double)(len + 2) * ldexp(1.0, -24) * mag / p.div;
      bad += fabs((double)got[o * inner + j] - want[o * inner + j]) > tol;
    }
  char name[96];
  snprintf(name, sizeof name, "colsum %s outer %lld len %lld inner %lld%s", mean ? "mean" : "sum",
           (long long)outer, (long long)len, (long long)inner, colsum_vec(&p) ? " vec" : "");
  CHECK_MSG(bad == 0, "%s: %d outputs off the CPU", name, bad);
  CHECK_MSG(same_bits("colsum", got, model), "%s", name);
  printf("%-48s checked\n", name);
}

/* binary_rows against the CPU's binary op, bit for bit: out [n0, n1, c] from a dense a and b
 * with strides sb (b broadcast somewhere), each op, both operand orders. */
static void check_binary_rows(vt_rng *r, int64_t n0, int64_t n1, int64_t c, const int64_t sb[3],
                              int64_t nb) {
  const vt_backend *cpu = vt_backend_cpu();
  int64_t n = n0 * n1 * c;
  vt_bcast bc = {};
  bc.ndim = 3;
  int64_t shape[3] = {n0, n1, c}, dense[3] = {n1 * c, c, 1};
  memcpy(bc.shape, shape, sizeof shape);
  std::vector<float> x = draw(r, n, -2, 2), y = draw(r, nb, 0.5f, 2.0f);
  for (vt_binary_op op : {VT_BIN_ADD, VT_BIN_SUB, VT_BIN_MUL, VT_BIN_DIV})
    for (int swap = 0; swap < 2; swap++) {
      memcpy(swap ? bc.sb : bc.sa, dense, sizeof dense);
      memcpy(swap ? bc.sa : bc.sb, sb, sizeof dense);
      const float *a = swap ? y.data() : x.data(), *b = swap ? x.data() : y.data();
      std::vector<float> got(n, NAN), want(n);
      CHECK(binary_rows_fit(&bc, a, b, got.data()));
      launch(2, 1, [&] { binary_rows_kernel(op, bc, n0 * n1, c, a, b, got.data()); });
      cpu->binary(cpu, op, &bc, a, b, want.data());
      CHECK_MSG(same_bits("out", got, want), "binary_rows op %d swap %d", (int)op, swap);
    }
  CHECK(n / 4 > 2 * VT_SIM_THREADS); /* the grid-stride loop wraps */
  printf("binary_rows [%lld, %lld, %lld] b strides {%lld, %lld, %lld} checked\n", (long long)n0,
         (long long)n1, (long long)c, (long long)sb[0], (long long)sb[1], (long long)sb[2]);
}

static void check_rows_fit(void) {
  float buf[8] __attribute__((aligned(16))) = {};
  vt_bcast bc = {};
  bc.ndim = 2;
  bc.shape[0] = 3;
  bc.shape[1] = 8;
  bc.sa[0] = 8;
  bc.sa[1] = 1;
  bc.sb[0] = 1;
  bc.sb[1] = 0; /* [3, 1] */
  CHECK(binary_rows_fit(&bc, buf, buf, buf));
  CHECK(!binary_rows_fit(&bc, buf + 1, buf, buf)); /* a misaligned */
  CHECK(binary_rows_fit(&bc, buf, buf + 1, buf));  /* b read one value a row: any alignment */
  bc.sa[0] = 10;                                   /* rows 10 floats apart: not 16-byte rows */
  CHECK(!binary_rows_fit(&bc, buf, buf, buf));
  bc.sa[0] = 16;
  bc.sa[1] = 2; /* a strided last dim */
  CHECK(!binary_rows_fit(&bc, buf, buf, buf));
  bc.sa[1] = 1;
  bc.shape[1] = 6; /* not whole groups of 4 */
  CHECK(!binary_rows_fit(&bc, buf, buf, buf));
  CHECK(gather_rows_fit(8, buf, buf) && !gather_rows_fit(6, buf, buf) &&
        !gather_rows_fit(8, buf + 2, buf));
  CHECK(rope_rows_fit(16, buf, buf) && !rope_rows_fit(12, buf, buf) &&
        !rope_rows_fit(16, buf, buf + 1));
  printf("%-48s checked\n", "row kernels' fit");
}

static void check_gather_rows(vt_rng *r, int64_t outer, int64_t n_src, int64_t inner,
                              int64_t n_idx) {
  const vt_backend *cpu = vt_backend_cpu();
  std::vector<float> src = draw(r, outer * n_src * inner, -1, 1);
  std::vector<int32_t> idx((size_t)n_idx);
  for (int32_t &i : idx) i = (int32_t)(vt_rng_uniform(r) * n_src);
  std::vector<float> got(outer * n_idx * inner, NAN), want(got.size());
  launch(2, 1, [&] {
    gather_rows_kernel(outer, n_src, inner, src.data(), idx.data(), n_idx, got.data());
  });
  cpu->index_select(cpu, outer, n_src, inner, src.data(), idx.data(), n_idx, want.data());
  char name[80];
  snprintf(name, sizeof name, "gather_rows outer %lld n_src %lld inner %lld n_idx %lld",
           (long long)outer, (long long)n_src, (long long)inner, (long long)n_idx);
  CHECK_MSG(same_bits("dst", got, want), "%s", name);
  printf("%-48s checked\n", name);
}

/* The plain RoPE and its inverse (accumulated, the backward) against the CPU's bits. */
static void check_rope_rows(vt_rng *r, int64_t b, int64_t ho, int64_t t, int64_t hi, int64_t d,
                            float theta, bool shared_pos) {
  const vt_backend *cpu = vt_backend_cpu();
  int64_t n = b * ho * t * hi * d;
  std::vector<float> x = draw(r, n, -2, 2);
  std::vector<int32_t> pos((size_t)(b * t));
  for (int32_t &p : pos) p = (int32_t)(vt_rng_uniform(r) * 3000.0f);
  int64_t ps = shared_pos ? 0 : t;
  char name[80];
  snprintf(name, sizeof name, "rope_rows b%lld ho%lld t%lld hi%lld d%lld%s", (long long)b,
           (long long)ho, (long long)t, (long long)hi, (long long)d, shared_pos ? " shared" : "");
  for (int inverse = 0; inverse < 2; inverse++) {
    std::vector<float> got = inverse ? draw(r, n, -1, 1) : std::vector<float>(n, NAN);
    std::vector<float> want = got;
    launch(2, 1, [&] {
      rope_rows_kernel(b, ho, t, hi, d, theta, pos.data(), ps, x.data(), got.data(), inverse);
    });
    cpu->norm->rope(cpu, b, ho, t, hi, d, theta, pos.data(), ps, x.data(), want.data(), inverse);
    CHECK_MSG(same_bits("y", got, want), "%s%s", name, inverse ? " inverse" : "");
  }
  printf("%-48s checked\n", name);
}

/* Cross-entropy rows (cuda_ce.cu) in a layout: a warp or a block per row, float4 or not. The
 * forward against the CPU within 2^-21 (|lse| + 1) (expf against the CPU's vectorised exp, the
 * sum's order; the terms of the double sum each within 2 ulp), against the scalar block kernel
 * (the VT_CUDA_SIMPLE path) likewise; the backward from the same lse the scalar kernel's bits,
 * and the CPU's within 1e-6 (|v| + fw). */
static void check_ce(vt_rng *r, int64_t rows, int64_t cols, bool warp, bool vec, bool weights,
                     bool accumulate) {
  const vt_backend *cpu = vt_backend_cpu();
  std::vector<float> x = draw(r, rows * cols, -8, 8), cw = draw(r, cols, 0.5f, 2.0f);
  std::vector<int32_t> t((size_t)rows);
  float cnt = 0;
  for (int32_t &v : t) {
    v = vt_rng_uniform(r) < 0.2f ? -100 : (int32_t)(vt_rng_uniform(r) * cols);
    cnt += v != -100;
  }
  const float *w = weights ? cw.data() : NULL;
  std::vector<float> l(rows, NAN), nll(rows, NAN), wr(rows, NAN), cl(rows), cn(rows), cwr(rows);
  std::vector<float> sl(rows, NAN), sn(rows, NAN), swr(rows, NAN);
  unsigned gx = warp ? (unsigned)(rows / (VT_SIM_THREADS / 32) / 2) : 3;
  if (warp) {
    CHECK(rows % (2 * gx * (VT_SIM_THREADS / 32)) == 0); /* every warp the same rows: uniform */
    launch(gx, 1, [&] {
      ce_forward_kernel<true>(rows, cols, vec, x.data(), t.data(), -100, w, l.data(), nll.data(),
                              wr.data());
    });
  } else {
    launch(gx, 1, [&] {
      ce_forward_kernel<false>(rows, cols, vec, x.data(), t.data(), -100, w, l.data(), nll.data(),
                               wr.data());
    });
  }
  launch(3, 1, [&] {
    ce_forward_kernel<false>(rows, cols, false, x.data(), t.data(), -100, w, sl.data(), sn.data(),
                             swr.data());
  });
  cpu->loss->ce_forward(cpu, rows, cols, x.data(), t.data(), -100, w, cl.data(), cn.data(),
                        cwr.data());
  char name[80];
  snprintf(name, sizeof name, "ce rows %lld cols %lld%s%s%s%s", (long long)rows, (long long)cols,
           warp ? " warp" : " block", vec ? " vec" : "", weights ? " weights" : "",
           accumulate ? " acc" : "");
  int bad = 0;
  for (int64_t i = 0; i < rows; i++) {
    double tol = ldexp(1.0, -21) * (fabs(cl[i]) + 1);
    bad += !(fabs(l[i] - cl[i]) <= tol) + !(fabs(l[i] - sl[i]) <= tol);
    bad += !(fabs(nll[i] - cn[i]) <= 2 * tol * cwr[i] + ldexp(fabs(cn[i]), -22));
    bad += memcmp(&wr[i], &cwr[i], sizeof(float)) != 0;
  }
  CHECK_MSG(bad == 0, "%s forward: %d values off", name, bad);
  float gout = 1.0f;
  std::vector<float> dx =
      accumulate ? draw(r, rows * cols, -1, 1) : std::vector<float>(rows * cols, NAN);
  std::vector<float> sdx = dx, cdx = dx;
  if (warp)
    launch(gx, 1, [&] {
      ce_backward_kernel<true>(rows, cols, vec, x.data(), t.data(), -100, w, cl.data(), &gout, &cnt,
                               dx.data(), accumulate);
    });
  else
    launch(gx, 1, [&] {
      ce_backward_kernel<false>(rows, cols, vec, x.data(), t.data(), -100, w, cl.data(), &gout,
                                &cnt, dx.data(), accumulate);
    });
  launch(3, 1, [&] {
    ce_backward_kernel<false>(rows, cols, false, x.data(), t.data(), -100, w, cl.data(), &gout,
                              &cnt, sdx.data(), accumulate);
  });
  cpu->loss->ce_backward(cpu, rows, cols, x.data(), t.data(), -100, w, cl.data(), &gout, &cnt,
                         cdx.data(), accumulate);
  CHECK_MSG(same_bits("dx", dx, sdx), "%s backward against the scalar kernel", name);
  CHECK_CLOSE(name, dx.data(), cdx.data(), (long)(rows * cols), 2e-6 / cnt, 1e-6);
  printf("%-48s checked\n", name);
}

/* The tolerances of a norm's checks against the CPU: the values and statistics (pairs of got,
 * want) within 1e-6, the gradients within 1e-5. */
static void check_norm_close(
    const char *name, double tol,
    std::initializer_list<std::pair<const std::vector<float> *, const std::vector<float> *>>
        pairs) {
  for (auto &p : pairs)
    CHECK_CLOSE(name, p.first->data(), p.second->data(), (long)p.second->size(), tol, tol);
}

/* GroupNorm (cuda_chnorm.cu), float4 or not, against the CPU: both sum in double, so the
 * statistics agree to f32 rounding; y, mean, rstd within 1e-6 (abs + rel), dx / dw / db
 * (accumulated into random values) within 1e-5. */
static void check_group_norm(vt_rng *r, int64_t n, int64_t c, int64_t s, int64_t groups, bool vec) {
  const vt_backend *cpu = vt_backend_cpu();
  int64_t len = n * c * s, ng = n * groups;
  std::vector<float> x = draw(r, len, -3, 5), w = draw(r, c, 0.5f, 1.5f), b = draw(r, c, -1, 1);
  std::vector<float> y(len, NAN), m(ng, NAN), rs(ng, NAN), cy(len), cm(ng), crs(ng);
  launch(3, 1, [&] {
    group_norm_kernel(n, c, s, groups, vec, 1e-5f, x.data(), w.data(), b.data(), y.data(), m.data(),
                      rs.data());
  });
  cpu->norm->group_norm(cpu, n, c, s, groups, 1e-5f, x.data(), w.data(), b.data(), cy.data(),
                        cm.data(), crs.data());
  char name[80];
  snprintf(name, sizeof name, "group_norm n %lld c %lld s %lld groups %lld%s", (long long)n,
           (long long)c, (long long)s, (long long)groups, vec ? " vec" : "");
  check_norm_close(name, 1e-6, {{&y, &cy}, {&m, &cm}, {&rs, &crs}});
  std::vector<float> dy = draw(r, len, -1, 1), dx = draw(r, len, -1, 1), dw = draw(r, c, -1, 1);
  std::vector<float> db = draw(r, c, -1, 1), cdx = dx, cdw = dw, cdb = db;
  launch(3, 1, [&] {
    group_norm_dx_kernel(n, c, s, groups, vec, x.data(), w.data(), cm.data(), crs.data(), dy.data(),
                         dx.data());
  });
  launch(3, 1, [&] {
    channel_grad_kernel(n, c, s, groups, vec && s % 4 == 0, x.data(), cm.data(), crs.data(),
                        dy.data(), dw.data(), db.data());
  });
  cpu->norm->group_norm_backward(cpu, n, c, s, groups, x.data(), w.data(), cm.data(), crs.data(),
                                 dy.data(), cdx.data(), cdw.data(), cdb.data());
  check_norm_close(name, 1e-5, {{&dx, &cdx}, {&dw, &cdw}, {&db, &cdb}});
  printf("%-48s checked\n", name);
}

/* BatchNorm1d, training (with running statistics) and eval, float4 or not, against the CPU with
 * group_norm's tolerances. */
static void check_batch_norm(vt_rng *r, int64_t n, int64_t c, int64_t s, bool training, bool vec) {
  const vt_backend *cpu = vt_backend_cpu();
  int64_t len = n * c * s;
  std::vector<float> x = draw(r, len, -3, 5), w = draw(r, c, 0.5f, 1.5f), b = draw(r, c, -1, 1);
  std::vector<float> rm = draw(r, c, -1, 1), rv = draw(r, c, 0.5f, 2.0f), crm = rm, crv = rv;
  std::vector<float> y(len, NAN), m(c, NAN), rs(c, NAN), cy(len), cm(c), crs(c);
  launch(3, 1, [&] {
    batch_norm_kernel(n, c, s, vec, training, 0.1f, 1e-5f, x.data(), w.data(), b.data(), rm.data(),
                      rv.data(), y.data(), m.data(), rs.data());
  });
  cpu->norm->batch_norm(cpu, n, c, s, training, 0.1f, 1e-5f, x.data(), w.data(), b.data(),
                        crm.data(), crv.data(), cy.data(), cm.data(), crs.data());
  char name[80];
  snprintf(name, sizeof name, "batch_norm n %lld c %lld s %lld%s%s", (long long)n, (long long)c,
           (long long)s, training ? " training" : " eval", vec ? " vec" : "");
  check_norm_close(name, 1e-6, {{&y, &cy}, {&m, &cm}, {&rs, &crs}, {&rm, &crm}, {&rv, &crv}});
  std::vector<float> dy = draw(r, len, -1, 1), dx = draw(r, len, -1, 1), dw = draw(r, c, -1, 1);
  std::vector<float> db = draw(r, c, -1, 1), cdx = dx, cdw = dw, cdb = db;
  launch(3, 1, [&] {
    batch_norm_backward_kernel(n, c, s, vec, training, x.data(), w.data(), cm.data(), crs.data(),
                               dy.data(), dx.data(), dw.data(), db.data());
  });
  cpu->norm->batch_norm_backward(cpu, n, c, s, training, x.data(), w.data(), cm.data(), crs.data(),
                                 dy.data(), cdx.data(), cdw.data(), cdb.data());
  check_norm_close(name, 1e-5, {{&dx, &cdx}, {&dw, &cdw}, {&db, &cdb}});
  printf("%-48s checked\n", name);
}

/* vt_for_vec (cuda_vec.cuh), the split of the float4 passes of the elementwise, norm and
 * softmax kernels: every element once over all workers, groups of 4 only at multiples of 4
 * below n, none without vec. */
static void check_for_vec(void) {
  int bad = 0;
  for (int64_t n = 0; n <= 41; n++)
    for (int64_t width : {1, 3, 32, 256})
      for (int vec = 0; vec < 2; vec++) {
        std::vector<int> seen((size_t)n + 1, 0);
        for (int64_t lane = 0; lane < width; lane++)
          vt_for_vec(n, vec, lane, width, [&](int64_t j, int w) {
            bad += w != 1 && (w != 4 || !vec || j % 4 != 0 || j + 4 > n);
            for (int e = 0; e < w && j + e < n; e++) seen[(size_t)(j + e)]++;
          });
        for (int64_t j = 0; j < n; j++) bad += seen[(size_t)j] != 1;
      }
  CHECK_MSG(bad == 0, "vt_for_vec: %d elements or groups wrong", bad);
  printf("%-48s checked\n", "vt_for_vec splits");
}

int main(void) {
  vt_rng r;
  vt_rng_seed(&r, 15);
  check_rope_qkv(&r, 2, 20, 4, 2, 8, 10000.0f, false, 4);
  check_rope_qkv(&r, 2, 5, 4, 2, 8, 10000.0f, false, 1);
  check_rope_qkv(&r, 2, 24, 2, 2, 16, 1e6f, true, 4);
  check_rope_qkv(&r, 2, 7, 2, 2, 16, 1e6f, true, 1);
  check_rope_qkv(&r, 1, 9, 3, 1, 64, 10000.0f, false, 4);
  check_rope_qkv(&r, 2, 12, 2, 1, 7, 0.0f, false, 1); /* a plain split, odd head size */
  check_rope_qkv(&r, 2, 40, 2, 1, 16, 0.0f, false, 4);
  check_swiglu(&r, 5, 64, 4);
  check_swiglu(&r, 5, 64, 1);
  check_swiglu(&r, 7, 13, 1);
  check_index_add(&r, 1, 12, 300, 200);
  check_index_add(&r, 3, 7, 5, 64);
  check_index_add(&r, 1, 200, 33, 300); /* more runs than block rows */
  for (vt_binary_op op : {VT_BIN_ADD, VT_BIN_SUB, VT_BIN_MUL, VT_BIN_DIV})
    for (int which = 0; which < 2; which++) {
      check_colsum_grad(&r, op, which, 3, 100, 136, false); /* 300 rows: 5 slices, float4 */
      check_colsum_grad(&r, op, which, 1, 37, 13, false);   /* one slice, a scalar tail */
    }
  check_colsum_grad(&r, VT_BIN_MUL, 1, 2, 50, 64, true);    /* misaligned: scalar */
  check_colsum_grad(&r, VT_BIN_ADD, 1, 1, 70000, 4, false); /* long columns: 1024 slices */
  check_colsum_layouts();
  check_colsum_reduce(&r, 3, 150, 20, false);
  check_colsum_reduce(&r, 2, 9, 7, true);
  check_colsum_reduce(&r, 1, 2, 300, false);
  const int64_t bias[3] = {0, 0, 1}, mid[3] = {8, 0, 1}, col[3] = {5, 1, 0};
  check_binary_rows(&r, 3, 40, 12, bias, 12); /* a bias over rows */
  check_binary_rows(&r, 3, 50, 8, mid, 24);   /* [3, 1, 8]: per sample */
  check_binary_rows(&r, 2, 5, 120, col, 10);  /* [2, 5, 1]: a column per row */
  check_rows_fit();
  check_gather_rows(&r, 1, 50, 64, 40);
  check_gather_rows(&r, 3, 9, 12, 11);
  check_rope_rows(&r, 2, 3, 12, 2, 16, 10000.0f, false);
  check_rope_rows(&r, 1, 2, 24, 1, 64, 1e6f, true);
  check_ce(&r, 16, 100, true, true, false, false); /* a warp per row, float4 */
  check_ce(&r, 16, 37, true, false, true, true);   /* odd columns: scalar */
  check_ce(&r, 5, 3000, false, true, true, false); /* a block per row */
  check_ce(&r, 5, 2001, false, false, false, true);
  check_group_norm(&r, 2, 8, 20, 4, true); /* groups of 40 values, channels of 20 */
  check_group_norm(&r, 2, 6, 6, 3, true);  /* groups of 12, channels of 6: dw / db scalar */
  check_group_norm(&r, 3, 6, 7, 2, false);
  check_group_norm(&r, 2, 4, 160, 2, true); /* more float4 groups than threads */
  check_batch_norm(&r, 4, 5, 24, true, true);
  check_batch_norm(&r, 4, 5, 24, false, true);
  check_batch_norm(&r, 3, 4, 7, true, false);
  check_batch_norm(&r, 4, 3, 200, true, true);
  check_for_vec();
  return vt_test_finish("test_cuda_sim");
}
