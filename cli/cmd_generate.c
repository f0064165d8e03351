/* cli/cmd_generate.c — `lathe generate FILE --weights W --prompt TEXT --tokens N`: text from a
 * decode step with a KV cache (docs/gpt.md; examples/gpt.lathe's gpt_step).
 *
 * The step (--model, default gpt_step) is compiled like `lathe run` compiles a forward entry,
 * with the checkpoint W's params (its state, the cache, starts from the initializers: zeros).
 * It must take an i32[1] token and an i32[] position and give the next token's logits [1, V];
 * the context TMAX is the extent its write_at writes at the position. The prompt's bytes, as
 * ids of W.vocab (the vocabulary `lathe train --data text=...` saves beside the checkpoint),
 * are fed one per call (the prefill, through the same step); then each sampled token is fed
 * back. Sampling is on the host: softmax of logits / T over the ids of the vocabulary (T = 0:
 * the most likely), the k most likely with --top-k, drawn with the counter-based generator of
 * ir/rng.h keyed by (seed, token index), so a seed gives the same text on every machine
 * (given the same logits). The text is printed as it is made (flushed per token).
 *
 * A full context slides: when the position reaches TMAX, the last TMAX / 2 tokens are fed
 * again from position 0 (cache rows past the position are masked, so the stale ones need no
 * clearing), and sampling goes on; a prompt longer than TMAX is an error.
 */
#include "cli.h"
#include "ir/rng.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help =
    "usage: lathe generate FILE --weights W --prompt TEXT --tokens N [OPTIONS]\n"
    "\n"
    "Compile FILE's decode step (a model taking one token and its position, keeping a KV\n"
    "cache in its state: examples/gpt.lathe's gpt_step), load the trained weights W, feed\n"
    "the prompt through it, then sample N more tokens and print the text as it is made.\n"
    "The vocabulary is W.vocab, saved by `lathe train --data text=FILE` beside W.\n"
    "\n"
    "options:\n"
    "  -w, --weights W       the checkpoint (safetensors) of the trained model\n"
    "  --prompt TEXT         the text to continue (its bytes must be in the vocabulary)\n"
    "  --tokens N            how many tokens to sample\n"
    "  --temperature T       softmax temperature (default 1; 0: always the most likely)\n"
    "  --top-k K             sample among the K most likely tokens (default 0: all)\n"
    "  --seed S              seed of the sampler (default 0): a seed gives the same text\n"
    "  --model NAME          the step model of FILE (default gpt_step)\n"
    "  -D NAME=VALUE         override a `const` (-D TMAX=256: a longer context)\n"
    "  --dtype f32|f64       compile every f32 as f64\n"
    "  -O0 .. -O3            optimization level (default -O2)\n"
    "  -h, --help            this help\n"
    "\n"
    "When the context (the step's TMAX positions) is full, the last TMAX / 2 tokens are fed\n"
    "again from position 0 and sampling goes on.\n";

typedef struct GenOptions {
  CliCompile c;
  const char *weights, *prompt;
  uint64_t tokens, seed, top_k;
  double temperature;
} GenOptions;

static bool parse_number(CliArgs *a, const char *name, uint64_t *out) {
  if (cli_parse_u64(a->value, out)) return true;
  cli_usage_error(a, "%s expects a non-negative integer, got '%s'", name, a->value);
  a->failed = true;
  return false;
}

static bool parse_temperature(CliArgs *a, double *out) {
  char *end = NULL;
  errno = 0;
  *out = strtod(a->value, &end);
  if (end != a->value && *end == '\0' && errno == 0 && *out >= 0 && isfinite(*out)) return true;
  cli_usage_error(a, "--temperature expects a number >= 0, got '%s'", a->value);
  a->failed = true;
  return false;
}

static int parse_args(GenOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "generate", argc, argv);
  bool have_tokens = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      return -1;
    }
    if (cli_option(&a, "--weights", "-w"))
      o->weights = a.value;
    else if (cli_option(&a, "--prompt", NULL))
      o->prompt = a.value;
    else if (cli_option(&a, "--tokens", NULL))
      have_tokens = parse_number(&a, "--tokens", &o->tokens);
    else if (cli_option(&a, "--top-k", NULL))
      parse_number(&a, "--top-k", &o->top_k);
    else if (cli_option(&a, "--seed", NULL))
      parse_number(&a, "--seed", &o->seed);
    else if (cli_option(&a, "--temperature", NULL))
      parse_temperature(&a, &o->temperature);
    else if (!cli_compile_option(&a, &o->c) && cli_positional(&a, &o->c.file) != EXIT_OK)
      return EXIT_USAGE;
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  if (!o->weights) return cli_usage_error(&a, "expected --weights W (a trained checkpoint)");
  if (!o->prompt || !*o->prompt) return cli_usage_error(&a, "expected --prompt TEXT (not empty)");
  if (!have_tokens) return cli_usage_error(&a, "expected --tokens N");
  return EXIT_OK;
}

/* ---- the vocabulary: W.vocab (runtime/data.h's RtVocab, as training wrote it) ---- */

static bool vocab_read(RtVocab *v, const char *path, Diag *d) {
  if (access(path, F_OK) != 0) {
    diag_error(d, (SrcLoc){0},
               "generate needs the vocabulary '%s' that `lathe train --data "
               "text=FILE` writes beside the checkpoint",
               path);
    return false;
  }
  return rt_vocab_read(v, path, d);
}

/* the prompt as ids, each byte found in the vocabulary */
static bool prompt_ids(const char *prompt, const RtVocab *v, int32_t *ids, Diag *d) {
  return rt_vocab_encode(v, "--prompt", (const unsigned char *)prompt, strlen(prompt), ids, d);
}

/* ---- the step ---- */

typedef struct Step {
  const lathe_entry_info *e;
  void *args[CLI_MAX_ARGS];
  int32_t tok, pos;
  void *logits, *ws; /* [1, V] of dtype */
  int dtype;
  int64_t vocab; /* V */
} Step;

static bool is_i32(const lathe_tensor_info *t, int rank) {
  return t->dtype == LATHE_I32 && t->rank == rank && (rank == 0 || t->shape[0] == 1) && !t->dyn;
}

/* checks the forward entry is a step (tok i32[1], pos i32[], logits [1, V]) and binds its
 * arguments: the token, the position, the logits, params, state and the workspace */
static bool step_bind(Step *s, const lathe_entry_info *e, CliWeights *w, Diag *d) {
  int n_tok = 0, n_pos = 0, n_out = 0;
  s->e = e;
  for (int k = 0; k < e->n_args && k < CLI_MAX_ARGS; k++) {
    const lathe_arg_info *a = &e->args[k];
    if (a->role == LATHE_ARG_PARAMS)
      s->args[k] = w->params;
    else if (a->role == LATHE_ARG_STATE)
      s->args[k] = w->state;
    else if (a->role == LATHE_ARG_WORKSPACE)
      s->args[k] = s->ws;
    else if (a->role == LATHE_ARG_INPUT && is_i32(a->tensor, 1) && ++n_tok)
      s->args[k] = &s->tok;
    else if (a->role == LATHE_ARG_INPUT && is_i32(a->tensor, 0) && ++n_pos)
      s->args[k] = &s->pos;
    else if (a->role == LATHE_ARG_OUTPUT && a->tensor->rank == 2 && a->tensor->shape[0] == 1 &&
             (a->tensor->dtype == LATHE_F32 || a->tensor->dtype == LATHE_F64) && ++n_out) {
      s->dtype = a->tensor->dtype;
      s->vocab = a->tensor->shape[1];
      s->logits = calloc((size_t)s->vocab, sizeof(double));
      s->args[k] = s->logits;
    } else {
      n_out = -1; /* anything else: not a step */
    }
  }
  if (n_tok == 1 && n_pos == 1 && n_out == 1 && e->n_args <= CLI_MAX_ARGS) return true;
  diag_error(d, (SrcLoc){0},
             "the model's forward entry is not a decode step: expected inputs "
             "i32[1] (the token) and i32[] (its position) and one output [1, V] "
             "(the next token's logits), like examples/gpt.lathe's gpt_step");
  return false;
}

static double logit(const Step *s, int64_t i) {
  return s->dtype == LATHE_F64 ? ((const double *)s->logits)[i] : ((const float *)s->logits)[i];
}

static void step_run(Step *s, int32_t tok, int32_t pos) {
  s->tok = tok;
  s->pos = pos;
  double ret = 0;
  s->e->call(s->args, &ret);
}

/* ---- sampling ---- */

/* The next id among the first n logits: softmax at temperature t over the top_k largest
 * (0: all), drawn with uniform u in [0, 1); t == 0 takes the largest (the lowest id on ties). */
static int sample(const Step *s, int n, double t, int top_k, double u) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (logit(s, i) > logit(s, best)) best = i;
  if (t == 0) return best;
  /* the k-th largest logit: those below it are left out (ties with it stay in) */
  double cut = -INFINITY, sorted[256];
  if (top_k > 0 && top_k < n) {
    for (int i = 0; i < n; i++) { /* insertion sort, descending: n <= 256 (the vocabulary) */
      double v = logit(s, i);
      int j = i;
      for (; j > 0 && sorted[j - 1] < v; j--)
        sorted[j] = sorted[j - 1];
      sorted[j] = v;
    }
    cut = sorted[top_k - 1];
  }
  double total = 0, top = logit(s, best);
  for (int i = 0; i < n; i++)
    total += logit(s, i) >= cut ? exp((logit(s, i) - top) / t) : 0;
  double acc = 0, target = u * total;
  for (int i = 0; i < n; i++) {
    if (logit(s, i) < cut) continue;
    acc += exp((logit(s, i) - top) / t);
    if (acc > target) return i;
  }
  return best; /* rounding left target at the very end */
}

/* ---- the generation loop ---- */

typedef struct Gen {
  const GenOptions *o;
  const char *vocab_path; /* W.vocab */
  int64_t tmax;
  RtVocab vocab;
  int32_t *ids; /* the context fed so far, tmax of them */
} Gen;

/* the prompt within the context, every byte in the vocabulary (before the compile) */
static bool prompt_fits(const Gen *g, Diag *d) {
  size_t len = strlen(g->o->prompt);
  if ((int64_t)len > g->tmax) {
    diag_error(d, (SrcLoc){0},
               "the prompt has %zu bytes, more than the step's context of %lld positions "
               "(-D TMAX=... for a longer one)",
               len, (long long)g->tmax);
    return false;
  }
  int32_t *ids = malloc((strlen(g->o->prompt) + 1) * sizeof *ids);
  bool ok = ids && prompt_ids(g->o->prompt, &g->vocab, ids, d);
  free(ids);
  return ok;
}

/* feeds ids[from .. to) at positions from .. to - 1 */
static void feed(Step *s, const Gen *g, int64_t from, int64_t to) {
  for (int64_t p = from; p < to; p++)
    step_run(s, g->ids[p], (int32_t)p);
}

static bool generate(Gen *g, Step *s, Diag *d) {
  const GenOptions *o = g->o;
  int64_t len = (int64_t)strlen(o->prompt);
  if (!prompt_ids(o->prompt, &g->vocab, g->ids, d)) return false;
  fputs(o->prompt, stdout);
  fflush(stdout);
  feed(s, g, 0, len);
  for (uint64_t k = 0; k < o->tokens; k++) {
    double u = lathe_rng_uniform(o->seed, k, 0, 0);
    int id = sample(s, g->vocab.n, o->temperature, (int)o->top_k, u);
    fputc(rt_vocab_decode(&g->vocab, id), stdout);
    fflush(stdout);
    if (k + 1 == o->tokens) break; /* its logits would go unused */
    if (len == g->tmax) {          /* slide: the last half again from position 0 */
      int64_t keep = g->tmax / 2;
      memmove(g->ids, g->ids + len - keep, (size_t)keep * sizeof *g->ids);
      len = keep;
      feed(s, g, 0, len);
    }
    g->ids[len] = id;
    step_run(s, id, (int32_t)len++);
  }
  fputc('\n', stdout);
  return true;
}

/* The step's context: the extent its write_at writes at the position input (the cache's
 * TMAX), the smallest if several; 0 (reported) when the forward entry writes none. */
static int64_t step_context(const Module *m, Diag *d) {
  const Graph *g = NULL;
  for (int i = 0; i < m->n_entries; i++)
    if (m->entries[i]->kind == ENTRY_FORWARD) g = m->entries[i];
  int64_t tmax = 0;
  for (uint32_t id = 0; g && id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    if (n->op != OP_WRITE_AT) continue;
    const Node *at = &g->nodes[n->in[2]];
    if (at->op != OP_INPUT || at->shape.rank != 0) continue;
    int64_t len = g->nodes[n->in[0]].shape.dim[n->attr.softmax.axis];
    tmax = tmax == 0 || len < tmax ? len : tmax;
  }
  if (tmax == 0)
    diag_error(d, (SrcLoc){0},
               "model '%s' writes no cache at a position input (write_at(..., "
               "index = pos) in an `update`): it is not a decode step",
               m->name);
  return tmax;
}

/* after the step is loaded: the vocabulary, the weights, the arguments; then the text */
static bool run_loaded(Gen *g, RtModel *model, Diag *d) {
  CliWeights w = {0};
  Step s;
  memset(&s, 0, sizeof s);
  const lathe_entry_info *e = rt_model_entry(model, "forward");
  bool ok = e && cli_weights_init(&w, model->info, g->o->weights, 0, d);
  if (ok) s.ws = rt_aligned_alloc(e->workspace_bytes ? e->workspace_bytes : 64);
  ok = ok && step_bind(&s, e, &w, d);
  if (ok && g->vocab.n > s.vocab) {
    diag_error(d, (SrcLoc){0},
               "%s has %d bytes but the model's logits only %lld: not this "
               "model's vocabulary",
               g->vocab_path, g->vocab.n, (long long)s.vocab);
    ok = false;
  }
  g->ids = ok ? malloc((size_t)g->tmax * sizeof *g->ids) : NULL;
  ok = ok && g->ids && generate(g, &s, d);
  free(g->ids);
  free(s.logits);
  free(s.ws);
  cli_weights_fini(&w);
  return ok;
}

int cmd_generate(int argc, char **argv) {
  GenOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  o.c.want_train = false;
  o.temperature = 1.0;
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  if (!o.c.model_name) o.c.model_name = "gpt_step";
  Module *m = cli_build_module(&o.c);
  if (!m) return EXIT_USER;
  Diag d;
  diag_init(&d);
  char path[4096];
  rt_vocab_path(path, sizeof path, o.weights);
  Gen g = {.o = &o, .vocab_path = path};
  RtModel model = {0};
  /* the vocabulary and the prompt first: their errors need no compile */
  bool ok = vocab_read(&g.vocab, path, &d) && (g.tmax = step_context(m, &d)) > 0 &&
            prompt_fits(&g, &d) && cli_load(m, &o.c, &model);
  module_free(m);
  ok = ok && run_loaded(&g, &model, &d);
  if (model.handle) rt_model_close(&model);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok ? EXIT_OK : EXIT_USER;
}
