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
#include <vector>

#include "autograd/cuda/cuda_fused.cu"

extern "C" {
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
  check_for_vec();
  return vt_test_finish("test_cuda_sim");
}
