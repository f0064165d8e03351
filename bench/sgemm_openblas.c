/* bench/sgemm_openblas.c — the peer for lathe's matmul: OpenBLAS cblas_sgemm, row-major,
 * C = A @ B with A [n, n], B [n, n], on one thread.
 *
 * Single thread: bench/run.sh sets OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1, and this
 * program calls openblas_set_num_threads(1) too. Operands are uniform in [0, 1); each size is
 * warmed up and calibrated, then timed as the median over reps runs of enough calls to last
 * min_time.
 *
 * Output (stdout): `sgemm <n> <seconds per call> <GFLOP/s>` per size (2 n^3 flops per call).
 * Usage: sgemm_openblas [--reps R] [--min-time SECONDS] N...
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads); /* OpenBLAS extension, declared by some cblas.h */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void fill(float *x, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    x[i] = (float)(s >> 40) / (float)(1 << 24);
  }
}

static void sgemm(int n, const float *a, const float *b, float *c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}

/* Median seconds per call over reps runs. */
static double time_size(int n, int reps, double min_time) {
  size_t elems = (size_t)n * (size_t)n;
  float *a = aligned_alloc(64, elems * sizeof(float) + 64);
  float *b = aligned_alloc(64, elems * sizeof(float) + 64);
  float *c = aligned_alloc(64, elems * sizeof(float) + 64);
  if (!a || !b || !c) {
    fprintf(stderr, "sgemm_openblas: out of memory at n=%d\n", n);
    exit(1);
  }
  fill(a, elems, 1), fill(b, elems, 2);
  sgemm(n, a, b, c); /* warm-up */
  long iters = 1;
  for (;; iters *= 2) { /* calibration, also warm-up: until a batch lasts min_time / 4 */
    double t0 = now_seconds();
    for (long i = 0; i < iters; i++) sgemm(n, a, b, c);
    double elapsed = now_seconds() - t0;
    if (elapsed >= min_time / 4 || iters >= (1L << 40)) {
      iters = (long)((double)iters * min_time / (elapsed > 1e-9 ? elapsed : 1e-9));
      if (iters < 1) iters = 1;
      break;
    }
  }
  double per_call[64];
  for (int r = 0; r < reps; r++) {
    double t0 = now_seconds();
    for (long i = 0; i < iters; i++) sgemm(n, a, b, c);
    per_call[r] = (now_seconds() - t0) / (double)iters;
  }
  qsort(per_call, (size_t)reps, sizeof per_call[0], compare_doubles);
  fprintf(stderr, "sgemm_openblas: n=%d c[0]=%g (%ld calls x %d reps)\n", n, c[0], iters, reps);
  free(a), free(b), free(c);
  return per_call[reps / 2];
}

int main(int argc, char **argv) {
  int reps = 5;
  double min_time = 0.2;
  int i = 1;
  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    if (strcmp(argv[i], "--reps") == 0) reps = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--min-time") == 0) min_time = atof(argv[i + 1]);
    else break;
  }
  if (i >= argc || reps < 1 || reps > 64 || !(min_time > 0)) {
    fprintf(stderr, "usage: sgemm_openblas [--reps 1..64] [--min-time SECONDS] N...\n");
    return 2;
  }
  openblas_set_num_threads(1);
  for (; i < argc; i++) {
    int n = atoi(argv[i]);
    if (n < 1 || n > 16384) {
      fprintf(stderr, "sgemm_openblas: size '%s' is not in 1..16384\n", argv[i]);
      return 2;
    }
    double s = time_size(n, reps, min_time);
    printf("sgemm %d %.9g %.3f\n", n, s, 2.0 * n * (double)n * n / s * 1e-9);
    fflush(stdout);
  }
  return 0;
}
