/* python/tests/train_ref.c — the C API's side of test_training.py: compile MODEL with
 * -D N=<n> and seed 0, load WEIGHTS, run STEPS train steps on the raw f32 inputs X.bin and
 * i32 labels LABEL.bin (the same batch each step), print each loss in hex (%a, exact) and
 * save params + state to OUT.safetensors.
 *   train_ref MODEL N WEIGHTS X.bin LABEL.bin STEPS OUT.safetensors  (x is [N, D...])
 * Exit 1 with lathe's diagnostics on stderr if anything fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/lathe.h"

static void *read_all(const char *path, size_t *bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *p = malloc(n > 0 ? (size_t)n : 1);
  *bytes = p && fread(p, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
  fclose(f);
  return p;
}

static const lathe_tensor_info *input_of(const lathe_entry_info *e, const char *name) {
  for (int k = 0; k < e->n_args; k++)
    if (e->args[k].role == LATHE_ARG_INPUT && !strcmp(e->args[k].tensor->name, name))
      return e->args[k].tensor;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 8) return fputs("usage: train_ref MODEL N WEIGHTS X LABEL STEPS OUT\n", stderr), 2;
  char define[64];
  snprintf(define, sizeof define, "N=%s", argv[2]);
  const char *defines[] = {define};
  lathe_options o;
  lathe_options_init(&o);
  o.defines = defines, o.n_defines = 1;
  char *err = NULL;
  lathe_model *m = lathe_compile_file(argv[1], &o, &err);
  if (!m) return fputs(err, stderr), 1;
  size_t xb = 0, lb = 0;
  void *x = read_all(argv[4], &xb), *label = read_all(argv[5], &lb);
  const lathe_entry_info *train = NULL;
  for (int i = 0; i < lathe_info(m)->n_entries; i++)
    if (lathe_info(m)->entries[i].kind == LATHE_ENTRY_TRAIN) train = &lathe_info(m)->entries[i];
  const lathe_tensor_info *xi = train ? input_of(train, "x") : NULL;
  const lathe_tensor_info *li = train ? input_of(train, "label") : NULL;
  if (!xi || !li || xb != xi->bytes || lb != li->bytes || lathe_load(m, argv[3]) != 0)
    return fprintf(stderr, "bad inputs or weights: %s\n", lathe_error(m)), 1;
  lathe_tensor in[2] = {{"x", xi->dtype, xi->rank, xi->shape, x},
                        {"label", li->dtype, li->rank, li->shape, label}};
  for (int s = 0, steps = atoi(argv[6]); s < steps; s++) {
    double loss = 0;
    if (lathe_call(m, train->name, in, 2, NULL, 0, &loss) != 0)
      return fputs(lathe_error(m), stderr), 1;
    printf("%a\n", loss);
  }
  if (lathe_save(m, argv[7], 1) != 0) return fputs(lathe_error(m), stderr), 1;
  free(x), free(label);
  lathe_free(m);
  return 0;
}
