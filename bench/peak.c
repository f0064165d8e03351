/* bench/peak.c — the measured single-core f32 FMA peak of this machine, per vector width.
 *
 * A core issues a new FMA on each of its P FMA pipes every cycle, but each result is ready only
 * L cycles later (L = 4 on Zen 3/4 and Skylake-X, 5 on Haswell), so a loop reaches the peak only
 * with at least P x L independent accumulator chains in flight — and only if every chain stays
 * in a register: a chain spilled to the stack adds a store-to-load round trip to its latency
 * and, since the loop waits for its slowest chain, drags every other chain down with it. (The
 * first version of this file ran 16 chains of 256-bit vectors plus the two constant vectors on
 * 16 AVX2 registers: three chains spilled and it reported 5.5 GFLOP/s on a Zen 3 whose peak is
 * about 75.) So each kernel here runs as many chains as its register file holds beside the two
 * constants:
 *   - 128- and 256-bit (SSE width with FMA3, AVX2 + FMA): 16 registers -> 12 chains, enough for
 *     2 pipes x 5 cycles (Haswell) and 2 x 4 (Zen 3, Skylake);
 *   - 512-bit (AVX-512F): 32 registers -> 24 chains, enough for 2 ports x 4 cycles (Intel with two
 *     512-bit FMA ports, Zen 4) with room to spare;
 *   - other architectures (Arm NEON, 128-bit, 32 registers): 24 chains of `acc * m + a` in GNU
 *     vector extensions, which contract to one FMA (bench/run.sh builds with -ffp-contract=fast).
 * On x86 each kernel is compiled for its own instruction set (a target attribute) with the FMA
 * intrinsics, so the file builds with or without -march and a width runs only when
 * __builtin_cpu_supports says the CPU has it. One FMA counts as 2 flops per lane. The values stay
 * finite (m slightly below 1, a tiny) and their sum is printed so the loop cannot be dropped.
 *
 * Output (stdout): one line per vector width this CPU runs, `fma_f32x<lanes>_gflops <value>`,
 * then `peak_gflops <best>`. Usage: peak [--reps R] [--min-time SECONDS]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PEAK_X86 1
#endif

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One kernel: iters rounds of CHAINS independent vector FMAs acc = acc * m + a; returns the sum
 * of the accumulators. VEC is the vector type, SET1 broadcasts a float, FMA(x, y, z) = x * y + z,
 * STORE writes a vector to a float array. */
#define PEAK_KERNEL(NAME, ATTR, VEC, LANES, CHAINS, SET1, FMA, STORE)                              \
  ATTR static __attribute__((noinline)) double NAME(long iters, float seed) {                      \
    VEC acc[CHAINS];                                                                               \
    VEC m = SET1(0.999999f), a = SET1(1e-7f * seed);                                               \
    for (int c = 0; c < (CHAINS); c++)                                                             \
      acc[c] = SET1(seed + (float)c);                                                              \
    for (long i = 0; i < iters; i++) {                                                             \
      _Pragma("GCC unroll 32") for (int c = 0; c < (CHAINS); c++) acc[c] = FMA(acc[c], m, a);      \
    }                                                                                              \
    double sum = 0;                                                                                \
    float lanes[LANES];                                                                            \
    for (int c = 0; c < (CHAINS); c++) {                                                           \
      STORE(lanes, acc[c]);                                                                        \
      for (int l = 0; l < (LANES); l++)                                                            \
        sum += lanes[l];                                                                           \
    }                                                                                              \
    return sum;                                                                                    \
  }

typedef double (*Kernel)(long, float);

typedef struct PeakWidth {
  Kernel kernel;
  int lanes;  /* floats per vector */
  int chains; /* independent accumulators */
  int usable; /* this CPU runs it (set at start-up) */
} PeakWidth;

#ifdef PEAK_X86
#define PEAK_ATTR(isa) __attribute__((target(isa)))
PEAK_KERNEL(fma_x4, PEAK_ATTR("fma"), __m128, 4, 12, _mm_set1_ps, _mm_fmadd_ps, _mm_storeu_ps)
PEAK_KERNEL(fma_x8, PEAK_ATTR("avx2,fma"), __m256, 8, 12, _mm256_set1_ps, _mm256_fmadd_ps,
            _mm256_storeu_ps)
PEAK_KERNEL(fma_x16, PEAK_ATTR("avx512f"), __m512, 16, 24, _mm512_set1_ps, _mm512_fmadd_ps,
            _mm512_storeu_ps)

static PeakWidth widths[] = {{fma_x4, 4, 12, 0}, {fma_x8, 8, 12, 0}, {fma_x16, 16, 24, 0}};

static void widths_detect(void) {
  __builtin_cpu_init();
  widths[0].usable = __builtin_cpu_supports("fma");
  widths[1].usable = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  widths[2].usable = __builtin_cpu_supports("avx512f");
}
#else
typedef float peak_v4 __attribute__((vector_size(16)));
static peak_v4 peak_v4_set1(float x) {
  return (peak_v4){x, x, x, x};
}
static peak_v4 peak_v4_fma(peak_v4 x, peak_v4 y, peak_v4 z) {
  return x * y + z;
}
static void peak_v4_store(float *p, peak_v4 v) {
  memcpy(p, &v, sizeof v);
}
PEAK_KERNEL(fma_x4, , peak_v4, 4, 24, peak_v4_set1, peak_v4_fma, peak_v4_store)

static PeakWidth widths[] = {{fma_x4, 4, 24, 0}};

static void widths_detect(void) {
  widths[0].usable = 1;
}
#endif

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median GFLOP/s over reps timed runs of a kernel, each sized to take about min_time. */
static double measure(const PeakWidth *w, int reps, double min_time, double *checksum) {
  long iters = 1000;
  for (;;) { /* calibrate (doubles as warm-up) */
    double t0 = now_seconds();
    *checksum += w->kernel(iters, 1.0f);
    if (now_seconds() - t0 >= min_time / 4 || iters > (1L << 40)) break;
    iters *= 2;
  }
  iters *= 4;
  double rates[64];
  for (int r = 0; r < reps; r++) {
    double t0 = now_seconds();
    *checksum += w->kernel(iters, (float)(r + 1));
    double dt = now_seconds() - t0;
    rates[r] = 2.0 * w->chains * w->lanes * (double)iters / dt * 1e-9;
  }
  qsort(rates, (size_t)reps, sizeof rates[0], compare_doubles);
  return rates[reps / 2];
}

int main(int argc, char **argv) {
  int reps = 5;
  double min_time = 0.2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--reps") == 0)
      reps = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--min-time") == 0)
      min_time = atof(argv[i + 1]);
  }
  if (argc % 2 == 0 || reps < 1 || reps > 64 || !(min_time > 0)) {
    fprintf(stderr, "usage: peak [--reps 1..64] [--min-time SECONDS]\n");
    return 2;
  }
  widths_detect();
  double best = 0, checksum = 0;
  for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
    if (!widths[i].usable) continue;
    double g = measure(&widths[i], reps, min_time, &checksum);
    printf("fma_f32x%d_gflops %.2f\n", widths[i].lanes, g);
    if (g > best) best = g;
  }
  if (best == 0) {
    fprintf(stderr, "peak: this CPU has no FMA unit this program knows\n");
    return 1;
  }
  printf("peak_gflops %.2f\n", best);
  fprintf(stderr, "peak: checksum %g\n", checksum); /* keeps the results live */
  return 0;
}
