/* examples/embed/main.c — embedding lathe in a C program through liblathe (lathe/lathe.h).
 *
 *   embed MODEL.lathe [WEIGHTS.safetensors]
 *
 * Compiles the model in-process, optionally loads trained weights, lists the forward entry's
 * tensors from the descriptor, runs it with every sample set to a deterministic test pattern
 * (x[i] = (i % 17) / 16), and prints the scores of sample 0 and their argmax.
 * Build: cc main.c $(pkg-config --cflags --libs lathe)
 *
 * liblathe finds a model's code by itself. Linking the generated C into a product instead
 * (lathe compile FILE -o DIR), give each model, or each batch size of one model, its own
 * `--prefix NAME` (lathe_options.prefix here) so their symbols (NAME_forward, NAME_info, ...)
 * cannot clash; see the README's "Several models in one program".
 */
#include <stdio.h>
#include <stdlib.h>

#include "lathe/lathe.h"

static size_t numel(const lathe_tensor_info *t) {
  size_t n = 1;
  for (int k = 0; k < t->rank; k++) n *= (size_t)t->shape[k];
  return n;
}

/* Runs "forward" with input `x` and output `probs` (f32, [N, ...]); prints sample 0. */
static int run(lathe_model *m) {
  const lathe_model_info *info = lathe_info(m);
  const lathe_entry_info *fwd = NULL;
  for (int i = 0; i < info->n_entries; i++)
    if (info->entries[i].kind == LATHE_ENTRY_FORWARD) fwd = &info->entries[i];
  if (!fwd) return fprintf(stderr, "model %s has no forward entry\n", info->name), 1;
  const lathe_tensor_info *x = NULL, *y = NULL;
  for (int k = 0; k < fwd->n_args; k++) {
    const lathe_tensor_info *t = fwd->args[k].tensor;
    if (t) printf("  %-6s %s  rank %d\n", fwd->args[k].role == LATHE_ARG_INPUT ? "input" : "output",
                  t->name, t->rank);
    if (fwd->args[k].role == LATHE_ARG_INPUT && !x) x = t;
    if (fwd->args[k].role == LATHE_ARG_OUTPUT && !y) y = t;
  }
  if (!x || !y || x->dtype != LATHE_F32 || y->dtype != LATHE_F32 || x->rank < 1 || y->rank < 1)
    return fprintf(stderr, "expected an f32 input and an f32 output\n"), 1;
  size_t nx = numel(x), ny = numel(y), per_x = nx / (size_t)x->shape[0];
  size_t per_y = ny / (size_t)y->shape[0];
  float *xd = malloc(nx * sizeof *xd), *yd = malloc(ny * sizeof *yd);
  for (size_t i = 0; xd && i < nx; i++) xd[i] = (float)((i % per_x) % 17) / 16.0f;
  lathe_tensor in = {x->name, LATHE_F32, x->rank, x->shape, xd};
  lathe_tensor out = {y->name, LATHE_F32, y->rank, y->shape, yd};
  int rc = xd && yd ? lathe_call(m, fwd->name, &in, 1, &out, 1, NULL) : -1;
  if (rc != 0) fprintf(stderr, "%s", xd && yd ? lathe_error(m) : "out of memory\n");
  size_t best = 0;
  for (size_t k = 0; rc == 0 && k < per_y; k++) {
    printf("%s %.6f", k ? "" : "scores:", yd[k]);
    if (yd[k] > yd[best]) best = k;
  }
  if (rc == 0) printf("\nargmax: %zu\n", best);
  free(xd);
  free(yd);
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.lathe [WEIGHTS.safetensors]\n", argv[0]);
    return 2;
  }
  lathe_options o;
  lathe_options_init(&o);
  o.want_train = 0; /* inference only */
  char *errors = NULL;
  lathe_model *m = lathe_compile_file(argv[1], &o, &errors);
  if (!m) {
    fprintf(stderr, "%s", errors);
    lathe_string_free(errors);
    return 1;
  }
  printf("model %s (backend %s), %d params\n", lathe_info(m)->name, lathe_backend(m),
         lathe_info(m)->n_params);
  int rc = 0;
  if (argc > 2 && lathe_load(m, argv[2]) != 0) {
    fprintf(stderr, "%s", lathe_error(m));
    rc = 1;
  }
  if (rc == 0) rc = run(m);
  lathe_free(m);
  return rc;
}
