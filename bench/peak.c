/* bench/peak.c — the measured single-core f32 FMA peak of this machine, in GFLOP/s.
 *
 * Each kernel runs CHAINS independent accumulators of `acc = acc * m + a` (one FMA per vector
 * lane) so that enough FMAs are in flight to cover the FMA latency on every pipe; CHAINS is
 * chosen larger than latency x pipes of current x86 and Arm cores (4-5 cycles x 2 pipes).
 * Vectors use GCC/Clang vector extensions; build with `-O3 -march=native` so the multiply-add
 * contracts to a hardware FMA (the default -ffp-contract=fast of GNU C does that; bench/run.sh
 * passes it explicitly). One FMA counts as 2 flops. The values stay finite (m slightly below 1,
 * a tiny) and the result is printed so the compiler cannot drop the loop.
 *
 * Output (stdout): one line per vector width, then `peak_gflops <best>`.
 * Usage: peak [--reps R] [--min-time SECONDS]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CHAINS = 16 };

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One kernel per vector width: iters rounds of CHAINS vector FMAs; returns a checksum. */
#define PEAK_KERNEL(NAME, LANES)                                                             \
  typedef float NAME##_vec __attribute__((vector_size(4 * (LANES))));                       \
  static __attribute__((noinline)) double NAME(long iters, float seed) {                      \
    NAME##_vec acc[CHAINS], m, a;                                                            \
    for (int l = 0; l < (LANES); l++) m[l] = 0.999999f, a[l] = 1e-7f * seed;                 \
    for (int c = 0; c < CHAINS; c++)                                                         \
      for (int l = 0; l < (LANES); l++) acc[c][l] = seed + (float)(c * (LANES) + l);         \
    for (long i = 0; i < iters; i++) {                                                       \
      _Pragma("GCC unroll 16") for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * m + a;     \
    }                                                                                        \
    double sum = 0;                                                                          \
    for (int c = 0; c < CHAINS; c++)                                                         \
      for (int l = 0; l < (LANES); l++) sum += acc[c][l];                                    \
    return sum;                                                                              \
  }

PEAK_KERNEL(fma_x4, 4)
PEAK_KERNEL(fma_x8, 8)
PEAK_KERNEL(fma_x16, 16)

typedef double (*Kernel)(long, float);

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median GFLOP/s over reps timed runs of a kernel, each sized to take about min_time. */
static double measure(Kernel k, int lanes, int reps, double min_time, double *checksum) {
  long iters = 1000;
  for (;;) { /* calibrate (doubles as warm-up) */
    double t0 = now_seconds();
    *checksum += k(iters, 1.0f);
    if (now_seconds() - t0 >= min_time / 4 || iters > (1L << 40)) break;
    iters *= 2;
  }
  iters *= 4;
  double rates[64];
  for (int r = 0; r < reps; r++) {
    double t0 = now_seconds();
    *checksum += k(iters, (float)(r + 1));
    double dt = now_seconds() - t0;
    rates[r] = 2.0 * CHAINS * lanes * (double)iters / dt * 1e-9;
  }
  qsort(rates, (size_t)reps, sizeof rates[0], compare_doubles);
  return rates[reps / 2];
}

int main(int argc, char **argv) {
  int reps = 5;
  double min_time = 0.2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--reps") == 0) reps = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--min-time") == 0) min_time = atof(argv[i + 1]);
  }
  if (reps < 1 || reps > 64 || !(min_time > 0)) {
    fprintf(stderr, "usage: peak [--reps 1..64] [--min-time SECONDS]\n");
    return 2;
  }
  static const struct { Kernel k; int lanes; } kernels[] = {
      {fma_x4, 4}, {fma_x8, 8}, {fma_x16, 16}};
  double best = 0, checksum = 0;
  for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
    double g = measure(kernels[i].k, kernels[i].lanes, reps, min_time, &checksum);
    printf("fma_f32x%d_gflops %.2f\n", kernels[i].lanes, g);
    if (g > best) best = g;
  }
  printf("peak_gflops %.2f\n", best);
  fprintf(stderr, "peak: checksum %g\n", checksum); /* keeps the results live */
  return 0;
}
