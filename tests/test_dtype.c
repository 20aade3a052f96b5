// ctest-labels: unit
/* bf16 / f16 conversions: edge values against PyTorch's rounding (fixture), every 16-bit
 * pattern round-tripping through f32, NaN staying NaN, and the cast op on tensors. */
#include <stdlib.h>
#include <string.h>

#include "tests/fixture.h"
#include "tests/testutil.h"

static bool is_nan16(uint16_t h, bool bf) {
  return bf ? ((h & 0x7f80u) == 0x7f80u && (h & 0x7fu))
            : ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu));
}

int main(void) {
  vt_fixture *fx = vt_fixture_load("dtype/conversions.txt");
  const vt_fixture_tensor *hi = vt_fixture_get(fx, "f32_hi"), *lo = vt_fixture_get(fx, "f32_lo");
  const vt_fixture_tensor *bf = vt_fixture_get(fx, "bf16"), *hf = vt_fixture_get(fx, "f16");
  for (long i = 0; i < hi->n; i++) {
    float f = vt_bits_f32(((uint32_t)hi->i[i] << 16) | (uint32_t)lo->i[i]);
    CHECK_MSG(vt_f32_to_bf16(f) == (uint16_t)bf->i[i], "bf16(%.9g) = 0x%04x, torch 0x%04x",
              (double)f, vt_f32_to_bf16(f), (unsigned)bf->i[i]);
    CHECK_MSG(vt_f32_to_f16(f) == (uint16_t)hf->i[i], "f16(%.9g) = 0x%04x, torch 0x%04x", (double)f,
              vt_f32_to_f16(f), (unsigned)hf->i[i]);
  }
  vt_fixture_free(fx);

  /* every 16-bit pattern survives f32 and back; NaNs stay NaN */
  int bad_bf = 0, bad_hf = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    uint16_t b = (uint16_t)h;
    if (is_nan16(b, true))
      bad_bf += !isnan(vt_bf16_to_f32(b)) || !is_nan16(vt_f32_to_bf16(vt_bf16_to_f32(b)), true);
    else
      bad_bf += vt_f32_to_bf16(vt_bf16_to_f32(b)) != b;
    if (is_nan16(b, false))
      bad_hf += !isnan(vt_f16_to_f32(b)) || !is_nan16(vt_f32_to_f16(vt_f16_to_f32(b)), false);
    else
      bad_hf += vt_f32_to_f16(vt_f16_to_f32(b)) != b;
  }
  CHECK_MSG(bad_bf == 0, "%d bf16 patterns do not round-trip", bad_bf);
  CHECK_MSG(bad_hf == 0, "%d f16 patterns do not round-trip", bad_hf);
  CHECK(isnan(vt_bf16_to_f32(vt_f32_to_bf16(NAN))));
  CHECK(isnan(vt_f16_to_f32(vt_f32_to_f16(NAN))));
  CHECK(vt_f16_to_f32(0x0001u) == 5.9604644775390625e-8f); /* smallest subnormal */
  CHECK(vt_f16_to_f32(0x7bffu) == 65504.0f);

  /* the cast op: f32 -> bf16 -> f32 on a tensor uses the same rounding */
  vt_ctx *ctx = vt_test_cpu_ctx();
  float x[4] = {1.00390625f, 1.01171875f, -3.0f, 65520.0f}, y[4];
  vt_tensor *t = vt_from_host(ctx, VT_F32, 1, (int64_t[]){4}, x);
  vt_tensor *b16 = vt_cast(ctx, t, VT_BF16), *h16 = vt_cast(ctx, t, VT_F16);
  vt_to_host(ctx, vt_cast(ctx, b16, VT_F32), y);
  CHECK(y[0] == 1.0f && y[1] == 1.015625f && y[2] == -3.0f && y[3] == 65536.0f);
  vt_to_host(ctx, vt_cast(ctx, h16, VT_F32), y);
  CHECK(y[0] == 1.00390625f && y[2] == -3.0f && isinf(y[3]));
  CHECK(vt_dtype_size(VT_BF16) == 2 && vt_dtype_size(VT_I64) == 8);
  CHECK(vt_dtype_from_name("bf16") == VT_BF16 && vt_dtype_from_name("f8") == -1);
  CHECK(!vt_ctx_failed(ctx));
  vt_ctx_free(ctx);
  return vt_test_finish("test_dtype");
}
