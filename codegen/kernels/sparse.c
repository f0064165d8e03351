/* codegen/kernels/sparse.c — kernel library text: the routines of the sparse products over a
 * baked, mostly-zero B (issue #20, docs/compression.md "Sparse compilation"). codegen/sparse.c
 * writes B's tables and the calls, and emits these once into a file that uses them.
 *
 * dot8: the DOT kernel of a few rows of A (batch-1 inference) against B [K, N] by output
 * columns, 8 columns at a time. The columns are sorted by their number of nonzeros and taken
 * in groups of 8 (cols[8 g + q]: lane q of group g); group g's entries run step by step, 8 to
 * a step (entries start[g] .. start[g + 1]), lane q of a step one nonzero of its column: its
 * value v[e] and the offset of its row in a row of A (k * A's column stride), the rows in
 * ascending order. A column shorter than its group's longest is padded with value 0 at a
 * row where its B is 0: a term of the dense product (A[k] * 0), never a NaN the dense
 * product lacks. The offsets go in pairs, one uint64_t holding two, the first in the low 32
 * bits: one load gives two rows (3 loads per nonzero become 1.6: measured 1.6x faster than
 * the column-by-column dot product on Zen 3, docs/compression.md).
 *
 * Each lane is one sum in row order, so the vector kernel and its scalar twin agree bit for
 * bit unless the compiler contracts the vector one into multiply-adds (LATHE_GEMM_FN).
 */
/* @lathe-kernel dot8 */
/* c[cols[j]] = sum of a[row] * v over column cols[j]'s entries, j < n, 8 columns at a time
 * (codegen/kernels/sparse.c: the layout) */
#ifdef LATHE_VECTOR
typedef float lathe_vf8 __attribute__((vector_size(32), may_alias));
typedef float lathe_vf8u __attribute__((vector_size(32), aligned(4), may_alias));
LATHE_GEMM_FN void lathe_sparse_dot8(const float *a, const float *v, const uint64_t *ix,
                                     const int32_t *start, const int32_t *cols, ptrdiff_t n,
                                     float *c) {
  for (ptrdiff_t g = 0; g * 8 < n; g++) {
    lathe_vf8 s = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    const uint64_t *r = ix + start[g] / 2;
    for (int32_t e = start[g]; e < start[g + 1]; e += 8, r += 4) {
      const lathe_vf8 x = {a[(uint32_t)r[0]], a[r[0] >> 32], a[(uint32_t)r[1]], a[r[1] >> 32],
                           a[(uint32_t)r[2]], a[r[2] >> 32], a[(uint32_t)r[3]], a[r[3] >> 32]};
      s += x * *(const lathe_vf8u *)(v + e);
    }
    const ptrdiff_t lanes = n - g * 8 < 8 ? n - g * 8 : 8;
    for (ptrdiff_t q = 0; q < lanes; q++) c[cols[g * 8 + q]] = s[q];
  }
}
#else
static void lathe_sparse_dot8(const float *a, const float *v, const uint64_t *ix,
                              const int32_t *start, const int32_t *cols, ptrdiff_t n, float *c) {
  for (ptrdiff_t g = 0; g * 8 < n; g++) {
    float s[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    const uint64_t *r = ix + start[g] / 2;
    for (int32_t e = start[g]; e < start[g + 1]; e += 8, r += 4)
      for (int q = 0; q < 8; q += 2) {
        s[q] += a[(uint32_t)r[q / 2]] * v[e + q];
        s[q + 1] += a[r[q / 2] >> 32] * v[e + q + 1];
      }
    const ptrdiff_t lanes = n - g * 8 < 8 ? n - g * 8 : 8;
    for (ptrdiff_t q = 0; q < lanes; q++) c[cols[g * 8 + q]] = s[q];
  }
}
#endif
/* @lathe-kernel finite */
/* 1 when the k elements a[0], a[cs], ... a[(k - 1) cs] are all finite (x - x is 0 then, and
 * NaN for an infinity or a NaN): a sparse product's check of a row of A (codegen/sparse.c) */
static int lathe_sparse_finite(const float *a, ptrdiff_t k, ptrdiff_t cs) {
  int finite = 1;
  for (ptrdiff_t i = 0; i < k; i++) finite &= a[i * cs] - a[i * cs] == 0.0f;
  return finite;
}
/* @lathe-kernel dot8_nonfinite */
/* entry e's row offset: the low half of pair e / 2 for an even e, the high half for an odd */
static uint64_t lathe_sparse_row(const uint64_t *ix, int32_t e) {
  return e % 2 ? ix[e / 2] >> 32 : (uint32_t)ix[e / 2];
}
/* after lathe_sparse_dot8 on a row of A holding an infinity or a NaN: the dense product's
 * terms a[k] * 0 that the tables leave out are NaN there (0 * inf), so each column adds
 * those of the rows not among its nonzeros (k rows, cs apart in a; a cold path) */
static void lathe_sparse_dot8_nonfinite(const float *a, ptrdiff_t k, ptrdiff_t cs,
                                        const float *v, const uint64_t *ix,
                                        const int32_t *start, const int32_t *cols, ptrdiff_t n,
                                        float *c) {
  for (ptrdiff_t j = 0; j < n; j++) {
    const int32_t g = (int32_t)(j / 8), q = (int32_t)(j % 8);
    int32_t e = start[g]; /* the column's next entry: its nonzeros first, the padding last */
    float zero_terms = 0.0f;
    for (ptrdiff_t i = 0; i < k; i++) {
      if (e < start[g + 1] && v[e + q] != 0.0f && lathe_sparse_row(ix, e + q) == (uint64_t)(i * cs))
        e += 8;
      else
        zero_terms += a[i * cs] * 0.0f;
    }
    c[cols[j]] += zero_terms;
  }
}
