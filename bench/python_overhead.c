/* bench/python_overhead.c — the C side of bench/python_overhead.py: the median time of one
 * lathe_call of MODEL's forward entry (batch 1 via -D N=1), over REPS calls after a warm-up,
 * through the embedding API with preallocated tensors. Prints "median_ns <n>".
 *   python_overhead MODEL REPS [backend: jit|cc] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lathe/lathe.h"

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) return fputs("usage: python_overhead MODEL REPS [jit|cc]\n", stderr), 2;
  const char *defines[] = {"N=1"};
  lathe_options o;
  lathe_options_init(&o);
  o.defines = defines, o.n_defines = 1;
  o.backend = argc > 3 && !strcmp(argv[3], "cc") ? LATHE_BACKEND_CC : LATHE_BACKEND_JIT;
  char *err = NULL;
  lathe_model *m = lathe_compile_file(argv[1], &o, &err);
  if (!m) return fputs(err, stderr), 1;
  const lathe_entry_info *e = NULL;
  for (int i = 0; i < lathe_info(m)->n_entries; i++)
    if (!strcmp(lathe_info(m)->entries[i].name, "forward")) e = &lathe_info(m)->entries[i];
  if (!e) return fputs("no forward entry\n", stderr), 1;
  lathe_tensor in[8], out[8];
  int n_in = 0, n_out = 0;
  for (int k = 0; k < e->n_args && n_in < 8 && n_out < 8; k++) {
    const lathe_tensor_info *t = e->args[k].tensor;
    if (!t) continue;
    lathe_tensor v = {t->name, t->dtype, t->rank, t->shape, calloc(1, t->bytes + 64)};
    if (e->args[k].role == LATHE_ARG_INPUT)
      in[n_in++] = v;
    else
      out[n_out++] = v;
  }
  int reps = atoi(argv[2]);
  long long *ns = malloc(sizeof *ns * (size_t)(reps > 0 ? reps : 1));
  for (int r = -reps / 10; r < reps; r++) { /* the first tenth warms up */
    long long t0 = now_ns();
    if (lathe_call(m, "forward", in, n_in, out, n_out, NULL) != 0)
      return fputs(lathe_error(m), stderr), 1;
    if (r >= 0) ns[r] = now_ns() - t0;
  }
  qsort(ns, (size_t)reps, sizeof *ns, cmp_ll);
  printf("median_ns %lld\n", ns[reps / 2]);
  for (int i = 0; i < n_in; i++)
    free(in[i].data);
  for (int i = 0; i < n_out; i++)
    free(out[i].data);
  free(ns);
  lathe_free(m);
  return 0;
}
