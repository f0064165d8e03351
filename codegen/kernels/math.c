/* codegen/kernels/math.c — kernel library text: the f32 exp, tanh and sigmoid of the generated
 * code (codegen/c_backend.c emits each only when a kernel calls it; tanh and sigmoid use exp).
 *
 * Each `@lathe-kernel NAME` section is embedded into lathe at build time as the string
 * cg_kernel_math_NAME (scripts/embed-kernels.py) and copied into generated files with its LT_*
 * identifiers replaced by the target's numbers (cg_kernel_emit, codegen/gemm.c); an LT_* alone on
 * a line stands for whole lines. A `@lathe-check-only` region is not embedded: it stands in for
 * code generated around the text, so that the build can compile the library as C (the
 * lathe_kernels_check target: check.c includes every file in order) under -std=c99 -Wall -Wextra
 * -Wpedantic -Werror. Nothing above the first section is embedded.
 */
/* @lathe-kernel expf */
/* f32 exp, tanh and sigmoid without libm calls, so loops over them vectorize (Cephes
 * polynomials; relative error below 3e-7). exp(x) = 2^n * exp(r), n = round(x / ln 2),
 * |r| <= ln(2) / 2; the rounding adds and subtracts 1.5 * 2^23, and the sum's low bits are n.
 * Branch-free: every value is computed for every x and the out-of-range cases are chosen last
 * by lathe_selectf, a bitwise blend. A `?:` would do under AVX-512, where GCC masks the
 * arithmetic of a conditional arm, but under AVX2 GCC (12) keeps such loops scalar: with
 * -ftrapping-math (its default) it will not execute an arm's float arithmetic unconditionally,
 * and it moves the arithmetic feeding a `?:` into the arm that uses it (a clamp's constant arm
 * folds the next product; the final `?:` pulls the polynomial into its else). The blend is
 * integer arithmetic on every lane, which GCC and Clang vectorize. */
static inline float lathe_selectf(int c, float a, float b) { /* c ? a : b */
  uint32_t ia, ib, m = 0u - (uint32_t)(c != 0), r;
  float y;
  memcpy(&ia, &a, sizeof ia);
  memcpy(&ib, &b, sizeof ib);
  r = (ia & m) | (ib & ~m);
  memcpy(&y, &r, sizeof y);
  return y;
}
static inline float lathe_expf(float x) {
  /* x past the ends (or NaN): garbage but defined (no float-to-int conversion), replaced last */
  float t = x * 1.44269504f + 12582912.0f;
  float n = t - 12582912.0f;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  uint32_t bits;
  float scale, y;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  memcpy(&bits, &t, sizeof bits);
  bits = (bits - 0x4b400000u + 126u) << 23; /* 2^(n-1): t = 1.5 * 2^23 + n */
  memcpy(&scale, &bits, sizeof scale);
  y = p * scale * 2.0f;
  y = lathe_selectf(x > 88.7228394f, (float)HUGE_VAL, y);
  y = lathe_selectf(x < -87.3365f, 0.0f, y);
  return lathe_selectf(x != x, x, y);
}
/* @lathe-kernel tanhf */
static inline float lathe_tanhf(float x) {
  uint32_t ix, ia, ib;
  float a, z = x * x, p = -5.70498872745e-3f, small, big;
  memcpy(&ix, &x, sizeof ix);
  ia = ix & 0x7fffffffu;
  memcpy(&a, &ia, sizeof a); /* |x| */
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  small = p * z * x + x; /* |x| < 0.625 */
  big = 1.0f - 2.0f / (lathe_expf(2.0f * a) + 1.0f); /* tanh |x|, in [0, 1] */
  memcpy(&ib, &big, sizeof ib);
  ib |= ix & 0x80000000u; /* x's sign */
  memcpy(&big, &ib, sizeof big);
  return lathe_selectf(a < 0.625f, small, big);
}
/* @lathe-kernel sigmoidf */
static inline float lathe_sigmoidf(float x) {
  uint32_t ix;
  float m, e;
  memcpy(&ix, &x, sizeof ix);
  ix |= 0x80000000u;
  memcpy(&m, &ix, sizeof m); /* -|x| */
  e = lathe_expf(m);
  return lathe_selectf(x >= 0, 1.0f, e) / (1.0f + e); /* 1 / (1 + e^-x), e^x / (1 + e^x) */
}
