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
 * |r| <= ln(2) / 2; the rounding adds and subtracts 1.5 * 2^23. */
static inline float lathe_expf(float x) {
  float c = x > 88.7228394f ? 88.7228394f : x < -87.3365f ? -87.3365f : x;
  float n = (c * 1.44269504f + 12582912.0f) - 12582912.0f;
  float r = c - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 126) * (1 << 23); /* 2^(n-1): n + 126 is in [0, 254] */
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  float y = p * scale * 2.0f;
  return x != x ? x : x > 88.7228394f ? (float)HUGE_VAL : x < -87.3365f ? 0.0f : y;
}
/* @lathe-kernel tanhf */
static inline float lathe_tanhf(float x) {
  float a = x < 0 ? -x : x, z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x; /* |x| < 0.625 */
  float big = 1.0f - 2.0f / (lathe_expf(2.0f * a) + 1.0f);
  return a < 0.625f ? small : x < 0 ? -big : big;
}
/* @lathe-kernel sigmoidf */
static inline float lathe_sigmoidf(float x) {
  float e = lathe_expf(x < 0 ? x : -x);
  return x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}
