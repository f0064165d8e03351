/* bench/gpt_drive.c — checks and times the GPT decode step compiled by `lathe compile`
 * (bench/gpt_decode.sh): the forward entry of a model with inputs tok i32[1] and pos i32[],
 * output logits [1, V], and a KV cache either in the model's state (updated by the entry: the
 * `gpt_step` of examples/gpt.lathe) or passed through (inputs NAME_in, outputs NAME_out, a
 * step written without state; the driver swaps each pair's buffers after a call, so the
 * cache is never copied by the driver).
 *
 *   cc -O3 -march=native -fno-math-errno -I DIR -DMODEL_HEADER='"gpt_step.h"'
 *      -DMODEL_INFO=gpt_step_info bench/gpt_drive.c DIR/gpt_step.c -lm
 *   gpt_drive [--weights W.safetensors] [--ref REF.bin] [--tol 1e-4] [--reps R] [--min-time S]
 *
 * --weights loads every param of the model from a safetensors file (F32, shapes checked; a
 * model compiled with --bake has its weights built in and may list none). --ref checks the
 * step: REF.bin (bench/torch_gpt.py weights) holds n token ids (int32) and PyTorch's logits of
 * the step at each position ([n, V] float32); the driver feeds the ids at positions 0..n-1 from
 * the freshly initialized (zero) cache and fails (exit 1) unless every logit is within
 * tol * max |logit| of PyTorch's. Timing: positions run 0..TMAX-1 and around (TMAX: the
 * cache's next-to-last axis, [L, B, KV_HEADS, TMAX, DH] or one cache per layer [B, KV_HEADS,
 * TMAX, DH]), tokens from a fixed list; warm-up, a calibration,
 * then the median seconds per step over reps runs of --min-time seconds each, like
 * bench/drive.c. Output (stdout): `check_max_abs E max_logit M` after a check, then
 * `seconds <median per step> calls <per run> reps <r>`. Errors: a message, exit 1; usage 2.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include MODEL_HEADER

enum { MAX_ARGS = 64, MAX_REPS = 64, MAX_PAIRS = 8 };

typedef struct Options {
  const char *weights, *ref;
  double tol, min_time;
  int reps;
} Options;

/* The bound entry: argument storage and where the step's inputs and outputs are. */
typedef struct Step {
  const lathe_entry_info *e;
  void *args[MAX_ARGS];
  int32_t *tok, *pos;
  const float *logits;
  int64_t vocab, tmax;
  int pairs[MAX_PAIRS][2]; /* argument indices of a NAME_in input and its NAME_out output */
  int n_pairs;
} Step;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *alloc64(size_t bytes) {
  void *p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  if (!p) {
    fprintf(stderr, "gpt_drive: out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  memset(p, 0, bytes + 64);
  return p;
}

static void *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "gpt_drive: cannot open %s\n", path);
    return NULL;
  }
  char *data = NULL;
  long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)n + 1)) &&
      fread(data, 1, (size_t)n, f) == (size_t)n) {
    data[n] = 0;
    *size = (size_t)n;
  } else {
    fprintf(stderr, "gpt_drive: cannot read %s\n", path);
    free(data);
    data = NULL;
  }
  fclose(f);
  return data;
}

/* The value of "key": in the JSON object text [obj, end) (safetensors' flat header). */
static const char *json_field(const char *obj, const char *end, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *at = strstr(obj, pat);
  return at && at < end ? at + strlen(pat) : NULL;
}

/* Copies tensor t of the safetensors file (raw, size bytes) into dst: F32, shape checked. */
static int load_tensor(const char *raw, size_t size, const lathe_tensor_info *t, char *dst) {
  uint64_t hn = 0;
  for (int i = 7; i >= 0; i--)
    hn = hn << 8 | (unsigned char)raw[i];
  char key[256];
  snprintf(key, sizeof key, "\"%s\":{", t->name);
  const char *obj = strstr(raw + 8, key), *end = obj ? strchr(obj + strlen(key), '}') : NULL;
  const char *dt = obj && end ? json_field(obj, end, "dtype") : NULL;
  const char *sh = obj && end ? json_field(obj, end, "shape") : NULL;
  const char *off = obj && end ? json_field(obj, end, "data_offsets") : NULL;
  if (!dt || !sh || !off || (size_t)(obj - raw) >= 8 + hn) {
    fprintf(stderr, "gpt_drive: the weights have no tensor '%s'\n", t->name);
    return 0;
  }
  int ok = strncmp(dt, "\"F32\"", 5) == 0 && *sh == '[';
  for (int d = 0; ok && d < t->rank; d++) {
    char *next;
    ok = strtoll(sh + 1, &next, 10) == t->shape[d] && (*next == ',' || *next == ']');
    sh = next;
  }
  ok = ok && *sh == ']';
  char *next;
  unsigned long long a = strtoull(off + 1, &next, 10), b = strtoull(next + 1, NULL, 10);
  if (!ok || b - a != t->bytes || 8 + hn + b > size) {
    fprintf(stderr,
            "gpt_drive: tensor '%s' of the weights is not F32 of the model's shape "
            "(%zu bytes)\n",
            t->name, t->bytes);
    return 0;
  }
  memcpy(dst, raw + 8 + hn + a, t->bytes);
  return 1;
}

static int load_weights(const lathe_model_info *m, void *params, const char *path) {
  size_t size = 0;
  char *raw = read_file(path, &size);
  int ok = raw && size >= 8;
  for (int i = 0; ok && i < m->n_params; i++)
    ok = load_tensor(raw, size, &m->params[i], (char *)params + m->params[i].offset);
  free(raw);
  return ok;
}

static const lathe_tensor_info *arg_tensor(const Step *s, int i) {
  return s->e->args[i].tensor;
}

/* The output NAME_out of an input NAME_in, or -1. */
static int find_out(const Step *s, const char *in_name) {
  size_t n = strlen(in_name) - 3;
  for (int j = 0; j < s->e->n_args; j++)
    if (s->e->args[j].role == LATHE_ARG_OUTPUT &&
        strncmp(arg_tensor(s, j)->name, in_name, n) == 0 &&
        strcmp(arg_tensor(s, j)->name + n, "_out") == 0)
      return j;
  return -1;
}

/* Binds an input or output argument i; 0 with a message on an argument it does not know. */
static int bind_tensor(Step *s, int i) {
  const lathe_tensor_info *t = arg_tensor(s, i);
  const char *name = t->name;
  size_t len = strlen(name);
  s->args[i] = alloc64(t->bytes);
  if (strcmp(name, "tok") == 0 && t->dtype == LATHE_I32 && t->bytes == 4)
    s->tok = s->args[i];
  else if (strcmp(name, "pos") == 0 && t->dtype == LATHE_I32 && t->bytes == 4)
    s->pos = s->args[i];
  else if (strcmp(name, "logits") == 0 && t->dtype == LATHE_F32 && t->rank == 2 &&
           t->shape[0] == 1) {
    s->logits = s->args[i];
    s->vocab = t->shape[1];
  } else if (len > 3 && strcmp(name + len - 3, "_in") == 0 &&
             s->e->args[i].role == LATHE_ARG_INPUT) {
    int j = find_out(s, name);
    if (j < 0 || s->n_pairs == MAX_PAIRS || arg_tensor(s, j)->bytes != t->bytes) {
      fprintf(stderr, "gpt_drive: input '%s' has no output of its size named *_out\n", name);
      return 0;
    }
    s->pairs[s->n_pairs][0] = i, s->pairs[s->n_pairs++][1] = j;
    if (t->rank >= 4) s->tmax = t->shape[t->rank - 2];
  } else if (s->e->args[i].role == LATHE_ARG_INPUT) { /* other outputs are computed, unread */
    fprintf(stderr,
            "gpt_drive: unexpected input '%s' (expected tok i32[1], pos i32[] and "
            "caches NAME_in with outputs NAME_out)\n",
            name);
    return 0;
  }
  return 1;
}

static int bind(Step *s, const lathe_model_info *m, const Options *o) {
  void *params = alloc64(m->params_bytes), *state = alloc64(m->state_bytes);
  m->init(params, state, 0);
  if (o->weights && !load_weights(m, params, o->weights)) return 0;
  for (int i = 0; i < m->n_states; i++)
    if (m->states[i].rank >= 4) s->tmax = m->states[i].shape[m->states[i].rank - 2];
  for (int i = 0; i < s->e->n_args; i++) {
    switch (s->e->args[i].role) {
    case LATHE_ARG_PARAMS:
      s->args[i] = params;
      break;
    case LATHE_ARG_STATE:
      s->args[i] = state;
      break;
    case LATHE_ARG_WORKSPACE:
      s->args[i] = alloc64(s->e->workspace_bytes);
      break;
    case LATHE_ARG_INPUT:
    case LATHE_ARG_OUTPUT:
      if (!bind_tensor(s, i)) return 0;
      break;
    default:
      fprintf(stderr, "gpt_drive: the model has a run-time batch; build it fixed\n");
      return 0;
    }
  }
  if (!s->tok || !s->pos || !s->logits || s->tmax <= 0) {
    fprintf(stderr, "gpt_drive: the entry needs inputs tok i32[1], pos i32[], output logits "
                    "f32[1, V] and a cache [..., TMAX, DH] of rank >= 4 (state or NAME_in)\n");
    return 0;
  }
  return 1;
}

/* One decode step of token tok at position pos. */
static void step(Step *s, int32_t tok, int32_t pos) {
  *s->tok = tok, *s->pos = pos;
  s->e->call(s->args, NULL);
  for (int p = 0; p < s->n_pairs; p++) {
    void *t = s->args[s->pairs[p][0]];
    s->args[s->pairs[p][0]] = s->args[s->pairs[p][1]], s->args[s->pairs[p][1]] = t;
  }
}

static int check(Step *s, const Options *o) {
  size_t size = 0;
  char *raw = read_file(o->ref, &size);
  if (!raw) return 0;
  size_t row = 4 + 4 * (size_t)s->vocab, n = size / row;
  if (size % row || n == 0 || n > (size_t)s->tmax) {
    fprintf(stderr, "gpt_drive: %s: %zu bytes is not n ids and [n, %lld] logits, 1 <= n <= %lld\n",
            o->ref, size, (long long)s->vocab, (long long)s->tmax);
    free(raw);
    return 0;
  }
  const int32_t *ids = (const int32_t *)raw;
  const float *want = (const float *)(raw + 4 * n);
  double err = 0, scale = 0;
  for (size_t i = 0; i < n; i++) {
    step(s, ids[i], (int32_t)i);
    for (int64_t v = 0; v < s->vocab; v++) {
      double w = want[i * (size_t)s->vocab + (size_t)v], d = fabs((double)s->logits[v] - w);
      if (!(d <= err)) err = d; /* a NaN sticks */
      if (fabs(w) > scale) scale = fabs(w);
    }
  }
  free(raw);
  printf("check_max_abs %.3g max_logit %.3g\n", err, scale);
  if (!(err <= o->tol * scale)) {
    fprintf(stderr,
            "gpt_drive: CHECK FAILED: lathe's step logits differ from PyTorch's by %.3g "
            "(tolerance %.3g x max |logit| %.3g)\n",
            err, o->tol, scale);
    return 0;
  }
  return 1;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Steps for calls calls from position *pos on; returns the seconds taken. */
static double run(Step *s, long calls, int32_t *pos) {
  double t0 = now_seconds();
  for (long i = 0; i < calls; i++) {
    step(s, (int32_t)((7 * *pos + 3) % s->vocab), *pos);
    *pos = (int32_t)((*pos + 1) % s->tmax);
  }
  return now_seconds() - t0;
}

static void time_steps(Step *s, const Options *o) {
  int32_t pos = 0;
  run(s, s->tmax, &pos); /* warm-up: page faults, cold caches */
  long calls = 1;
  for (;; calls *= 2) {
    double elapsed = run(s, calls, &pos);
    if (elapsed >= o->min_time / 4 || calls >= (1L << 40)) {
      calls = (long)((double)calls * o->min_time / (elapsed > 1e-9 ? elapsed : 1e-9));
      calls = calls > 0 ? calls : 1;
      break;
    }
  }
  double per_call[MAX_REPS];
  for (int r = 0; r < o->reps; r++)
    per_call[r] = run(s, calls, &pos) / (double)calls;
  qsort(per_call, (size_t)o->reps, sizeof per_call[0], compare_doubles);
  printf("seconds %.9g calls %ld reps %d\n", per_call[o->reps / 2], calls, o->reps);
}

static int parse_options(Options *o, int argc, char **argv) {
  *o = (Options){NULL, NULL, 1e-4, 0.2, 5};
  for (int i = 1; i < argc; i += 2) { /* every option takes a value */
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return 0;
    if (strcmp(argv[i], "--weights") == 0)
      o->weights = v;
    else if (strcmp(argv[i], "--ref") == 0)
      o->ref = v;
    else if (strcmp(argv[i], "--tol") == 0)
      o->tol = atof(v);
    else if (strcmp(argv[i], "--reps") == 0)
      o->reps = atoi(v);
    else if (strcmp(argv[i], "--min-time") == 0)
      o->min_time = atof(v);
    else
      return 0;
  }
  return o->reps >= 1 && o->reps <= MAX_REPS && o->min_time > 0 && o->tol > 0;
}

int main(int argc, char **argv) {
  Options o;
  if (!parse_options(&o, argc, argv)) {
    fprintf(stderr, "usage: gpt_drive [--weights W.safetensors] [--ref REF.bin] [--tol T] "
                    "[--reps 1..64] [--min-time SECONDS]\n");
    return 2;
  }
  const lathe_model_info *m = &MODEL_INFO;
  if (m->cpu_supported && !m->cpu_supported()) {
    fprintf(stderr, "gpt_drive: this CPU lacks the instructions of target %s\n", m->target);
    return 1;
  }
  Step s = {0};
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i].name, "forward") == 0) s.e = &m->entries[i];
  if (!s.e || s.e->n_args > MAX_ARGS) {
    fprintf(stderr, "gpt_drive: model '%s' has no forward entry\n", m->name);
    return 1;
  }
  if (!bind(&s, m, &o) || (o.ref && !check(&s, &o))) return 1;
  time_steps(&s, &o);
  return 0;
}
