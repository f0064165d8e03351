/* passes/optim.c — the optimizer step of a train entry, appended as IR after the backward
 * pass so that fusion and memory planning see the whole train step as one graph.
 *
 * Each optimizer reproduces torch.optim's single-tensor update formulas (PyTorch 1.13/2.x,
 * maximize=False, amsgrad=False) with PyTorch's defaults; see the comment on each. Optimizer
 * state (moments, buffers, the step counter) lives in Module states created here and found
 * again by name when the module is compiled again:
 *   "<opt>.<param>.<slot>"  e.g. adam.h1.w.m, adam.h1.w.v, sgd.h1.w.buf
 *   "<step>.<opt>.<param>.<slot>" for a named step of a multi-step train block,
 *   "<entry>.step_count"    f64 scalar, the number of steps taken (t - 1 during the step).
 * Writes are outputs: OUT_PARAM_UPDATE / OUT_STATE_UPDATE with target = param/state index.
 *
 * Scalar quantities (step counter, schedule, bias corrections, clip coefficient) are
 * computed in f64 and cast once to the param dtype, like PyTorch's Python-float scalars.
 * Options beyond the optimizer's own (all optional):
 *   clip_norm = c       clip the gradients to global L2 norm c (clip_grad_norm_ semantics)
 *   schedule = 0|1|2    constant | step | cosine; implied by step_size or total_steps
 *   step_size, gamma    step: lr * gamma^floor(e / step_size)            (StepLR)
 *   total_steps, min_lr cosine: min_lr + (lr - min_lr)(1 + cos(pi e/T))/2, e clamped to T
 *   warmup_steps = W    multiplies by min(1, (e + 1) / W)  (LinearLR(1/W, 1, W - 1))
 * where e = the number of steps taken before this one (the scheduler's last_epoch).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autodiff_internal.h"

typedef enum ArgId {
  A_LR,
  A_BETA1,
  A_BETA2,
  A_EPS,
  A_MOMENTUM,
  A_DAMPENING,
  A_NESTEROV,
  A_WEIGHT_DECAY,
  A_ALPHA,
  A_CENTERED,
  A_LR_DECAY,
  A_INITIAL_ACC,
  A_CLIP_NORM,
  A_SCHEDULE,
  A_STEP_SIZE,
  A_GAMMA,
  A_TOTAL_STEPS,
  A_MIN_LR,
  A_WARMUP_STEPS,
  A_COUNT
} ArgId;

static const char *const arg_names[A_COUNT] = {
    "lr",          "beta1",     "beta2",       "eps",
    "momentum",    "dampening", "nesterov",    "weight_decay",
    "alpha",       "centered",  "lr_decay",    "initial_accumulator_value",
    "clip_norm",   "schedule",  "step_size",   "gamma",
    "total_steps", "min_lr",    "warmup_steps"};

#define BIT(a) (1u << (a))
#define COMMON_ARGS                                                                                \
  (BIT(A_LR) | BIT(A_WEIGHT_DECAY) | BIT(A_CLIP_NORM) | BIT(A_SCHEDULE) | BIT(A_STEP_SIZE) |       \
   BIT(A_GAMMA) | BIT(A_TOTAL_STEPS) | BIT(A_MIN_LR) | BIT(A_WARMUP_STEPS))
#define SGD_ARGS (COMMON_ARGS | BIT(A_MOMENTUM) | BIT(A_DAMPENING) | BIT(A_NESTEROV))
#define ADAM_ARGS (COMMON_ARGS | BIT(A_BETA1) | BIT(A_BETA2) | BIT(A_EPS))

typedef enum OptKind { OPT_SGD, OPT_ADAM, OPT_ADAMW, OPT_RMSPROP, OPT_ADAGRAD } OptKind;

/* Defaults are PyTorch's (torch.optim.SGD has no default lr since 1.x; 2.x uses 1e-3). */
static const struct OptInfo {
  const char *name;
  OptKind kind;
  uint32_t args; /* valid args (ArgId bits) */
  double lr, momentum, nesterov, weight_decay, eps;
} opt_table[] = {
    {"sgd", OPT_SGD, SGD_ARGS, 1e-3, 0.0, 0, 0.0, 0.0},
    {"momentum", OPT_SGD, SGD_ARGS, 1e-3, 0.9, 0, 0.0, 0.0},
    {"nesterov", OPT_SGD, SGD_ARGS, 1e-3, 0.9, 1, 0.0, 0.0},
    {"adam", OPT_ADAM, ADAM_ARGS, 1e-3, 0.0, 0, 0.0, 1e-8},
    {"adamw", OPT_ADAMW, ADAM_ARGS, 1e-3, 0.0, 0, 1e-2, 1e-8},
    {"rmsprop", OPT_RMSPROP,
     COMMON_ARGS | BIT(A_ALPHA) | BIT(A_EPS) | BIT(A_MOMENTUM) | BIT(A_CENTERED), 1e-2, 0.0, 0, 0.0,
     1e-8},
    {"adagrad", OPT_ADAGRAD, COMMON_ARGS | BIT(A_EPS) | BIT(A_LR_DECAY) | BIT(A_INITIAL_ACC), 1e-2,
     0.0, 0, 0.0, 1e-10},
};
enum { OPT_TABLE_COUNT = sizeof opt_table / sizeof opt_table[0] };

typedef enum Schedule { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE, SCHED_COUNT } Schedule;

/* Everything the update needs while it is built. */
typedef struct Opt {
  AdCtx *a;
  const struct OptInfo *info;
  double v[A_COUNT]; /* argument values (defaults filled in) */
  bool given[A_COUNT];
  SrcLoc at[A_COUNT]; /* where each given argument was written */
  const char *prefix; /* state name prefix: "adam" or "disc.adam" */
  NodeId t;           /* f64 scalar: this step's number, 1-based */
  NodeId lr;          /* f64 scalar: the scheduled learning rate of this step */
  NodeId clip;        /* f64 scalar clip coefficient, or IR_NONE */
} Opt;

/* ---- arguments ---------------------------------------------------------------------------- */

static const struct OptInfo *find_optimizer(const TrainStep *s, Diag *d) {
  for (int i = 0; i < OPT_TABLE_COUNT; i++)
    if (s->optimizer && strcmp(s->optimizer, opt_table[i].name) == 0) return &opt_table[i];
  diag_error(d, s->loc,
             "unknown optimizer '%s': expected one of sgd, momentum, nesterov, "
             "adam, adamw, rmsprop, adagrad",
             s->optimizer ? s->optimizer : "");
  return NULL;
}

static void set_defaults(Opt *o) {
  const struct OptInfo *f = o->info;
  double defaults[A_COUNT] = {[A_LR] = f->lr,
                              [A_BETA1] = 0.9,
                              [A_BETA2] = 0.999,
                              [A_EPS] = f->eps,
                              [A_MOMENTUM] = f->momentum,
                              [A_NESTEROV] = f->nesterov,
                              [A_WEIGHT_DECAY] = f->weight_decay,
                              [A_ALPHA] = 0.99,
                              [A_GAMMA] = 0.1};
  memcpy(o->v, defaults, sizeof o->v);
}

static void list_valid(char *buf, size_t size, uint32_t mask) {
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; i < A_COUNT && len < size; i++)
    if (mask & BIT(i))
      len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "", arg_names[i]);
}

static bool read_args(Opt *o, const TrainStep *s, Diag *d) {
  bool ok = true;
  for (int k = 0; k < s->n_optim_args; k++) {
    const OptimArg *arg = &s->optim_args[k];
    int id = -1;
    for (int i = 0; i < A_COUNT && id < 0; i++)
      if ((o->info->args & BIT(i)) && strcmp(arg->name, arg_names[i]) == 0) id = i;
    if (id < 0) {
      char valid[512];
      list_valid(valid, sizeof valid, o->info->args);
      diag_error(d, arg->loc, "unknown argument '%s' of optimizer '%s': expected one of %s",
                 arg->name, o->info->name, valid);
      ok = false;
      continue;
    }
    o->v[id] = arg->value;
    o->given[id] = true;
    o->at[id] = arg->loc;
  }
  return ok;
}

/* Range checks, with the argument's location; the rules are torch.optim's. */
static bool check_range(Opt *o, ArgId id, double lo, double hi, bool hi_open, Diag *d) {
  double x = o->v[id];
  if (x >= lo && (hi_open ? x < hi : x <= hi)) return true;
  SrcLoc loc = o->given[id] ? o->at[id] : o->a->b.loc;
  diag_error(d, loc, "invalid %s = %g for optimizer '%s': expected a value in [%g, %g%s",
             arg_names[id], x, o->info->name, lo, hi, hi_open ? ")" : "]");
  return false;
}

static bool check_args(Opt *o, Diag *d) {
  bool ok = check_range(o, A_LR, 0, INFINITY, false, d);
  ok = check_range(o, A_BETA1, 0, 1, true, d) && ok;
  ok = check_range(o, A_BETA2, 0, 1, true, d) && ok;
  ok = check_range(o, A_EPS, 0, INFINITY, false, d) && ok;
  ok = check_range(o, A_MOMENTUM, 0, INFINITY, false, d) && ok;
  ok = check_range(o, A_WEIGHT_DECAY, 0, INFINITY, false, d) && ok;
  ok = check_range(o, A_ALPHA, 0, 1, false, d) && ok;
  ok = check_range(o, A_CLIP_NORM, 0, INFINITY, false, d) && ok;
  ok = check_range(o, A_SCHEDULE, 0, SCHED_COUNT - 1, false, d) && ok;
  ok = check_range(o, A_MIN_LR, 0, INFINITY, false, d) && ok;
  if (o->v[A_NESTEROV] != 0 && (o->v[A_MOMENTUM] <= 0 || o->v[A_DAMPENING] != 0)) {
    diag_error(d, o->given[A_NESTEROV] ? o->at[A_NESTEROV] : o->a->b.loc,
               "nesterov momentum requires momentum > 0 and dampening = 0");
    ok = false;
  }
  return ok;
}

/* ---- state -------------------------------------------------------------------------------- */

/* The STATE node of state `name` (created in the Module unless it exists), and its index. */
static NodeId state_node(Opt *o, const char *name, DType t, const Shape *s, double init,
                         int32_t *index) {
  Module *m = o->a->b.g->module;
  int32_t idx = -1;
  for (int32_t i = 0; i < m->n_states && idx < 0; i++)
    if (strcmp(m->states[i].name, name) == 0) idx = i;
  if (idx < 0) {
    InitSpec spec = {init == 0 ? INIT_ZEROS : INIT_CONSTANT, init, 0};
    idx = module_add_state(m, name, t, s, spec, o->a->b.loc);
  }
  *index = idx;
  return graph_add_source(o->a->b.g, OP_STATE, idx, o->a->b.loc);
}

/* A per-param slot: returns the current value; *update receives the output to write. */
typedef struct Slot {
  NodeId value;
  int32_t index;
  const char *name;
} Slot;

static Slot slot(Opt *o, const OptimParam *p, const char *what, double init) {
  Module *m = o->a->b.g->module;
  const TensorDecl *decl = &m->params[p->index];
  Slot s;
  s.name = arena_printf(&m->arena, "%s.%s.%s", o->prefix, decl->name, what);
  s.value = state_node(o, s.name, decl->dtype, &decl->shape, init, &s.index);
  return s;
}

static void write_slot(Opt *o, const Slot *s, NodeId value) {
  if (value != IR_NONE) graph_add_output(o->a->b.g, s->name, value, OUT_STATE_UPDATE, s->index);
}

/* ---- scalars: step counter, schedule, clipping -------------------------------------------- */

static NodeId f64(Opt *o, double v) {
  return build_scalar(&o->a->b, DT_F64, v);
}

/* cos(theta) for theta in [0, pi], as IR: -sin(theta - pi/2) by its Taylor series in Horner
 * form up to x^23 (|x| <= pi/2: truncation error < 1e-18), so no COS op is needed. */
static NodeId cos_0_pi(Opt *o, NodeId theta) {
  AdCtx *a = o->a;
  NodeId x = build_binary(&a->b, OP_SUB, theta, f64(o, M_PI / 2));
  NodeId x2 = build_binary(&a->b, OP_MUL, x, x);
  NodeId p = f64(o, 1.0);
  for (int k = 11; k >= 1; k--) {
    NodeId term = build_binary(&a->b, OP_DIV, build_binary(&a->b, OP_MUL, x2, p),
                               f64(o, (double)(2 * k) * (double)(2 * k + 1)));
    p = build_binary(&a->b, OP_SUB, f64(o, 1.0), term);
  }
  return build_unary(&a->b, OP_NEG, build_binary(&a->b, OP_MUL, x, p));
}

static bool need_positive(Opt *o, ArgId id, const char *why, Diag *d) {
  if (o->v[id] >= 1 && o->v[id] == floor(o->v[id])) return true;
  diag_error(d, o->given[id] ? o->at[id] : o->a->b.loc, "%s needs %s = a positive integer, got %g",
             why, arg_names[id], o->v[id]);
  return false;
}

/* The learning rate of step t (see the head comment). */
static bool schedule_lr(Opt *o, Diag *d) {
  AdCtx *a = o->a;
  Schedule kind = (Schedule)o->v[A_SCHEDULE];
  if (!o->given[A_SCHEDULE])
    kind = o->given[A_STEP_SIZE]     ? SCHED_STEP
           : o->given[A_TOTAL_STEPS] ? SCHED_COSINE
                                     : SCHED_CONSTANT;
  NodeId e = build_binary(&a->b, OP_SUB, o->t, f64(o, 1.0));
  NodeId lr = f64(o, o->v[A_LR]);
  if (kind == SCHED_STEP) {
    if (!need_positive(o, A_STEP_SIZE, "the step schedule", d)) return false;
    NodeId q = build_binary(&a->b, OP_DIV, e, f64(o, o->v[A_STEP_SIZE]));
    NodeId fl =
        build_cast(&a->b, build_cast(&a->b, q, DT_I64), DT_F64); /* q >= 0: truncation = floor */
    lr = build_binary(&a->b, OP_MUL, lr, build_binary(&a->b, OP_POW, f64(o, o->v[A_GAMMA]), fl));
  } else if (kind == SCHED_COSINE) {
    if (!need_positive(o, A_TOTAL_STEPS, "the cosine schedule", d)) return false;
    double total = o->v[A_TOTAL_STEPS], lo = o->v[A_MIN_LR];
    NodeId ec = build_binary(&a->b, OP_MINIMUM, e, f64(o, total));
    NodeId c = cos_0_pi(o, build_binary(&a->b, OP_MUL, ec, f64(o, M_PI / total)));
    NodeId half =
        build_binary(&a->b, OP_MUL, build_binary(&a->b, OP_ADD, f64(o, 1.0), c), f64(o, 0.5));
    lr = build_binary(&a->b, OP_ADD, f64(o, lo),
                      build_binary(&a->b, OP_MUL, f64(o, o->v[A_LR] - lo), half));
  }
  if (o->given[A_WARMUP_STEPS]) {
    if (!need_positive(o, A_WARMUP_STEPS, "warm-up", d)) return false;
    NodeId ramp = build_binary(&a->b, OP_DIV, o->t, f64(o, o->v[A_WARMUP_STEPS]));
    lr = build_binary(&a->b, OP_MUL, lr, build_binary(&a->b, OP_MINIMUM, f64(o, 1.0), ramp));
  }
  o->lr = lr;
  return !a->b.failed;
}

/* torch.nn.utils.clip_grad_norm_: coef = min(1, c / (||(||g_i||)|| + 1e-6)) */
static void clip_coefficient(Opt *o, const OptimParam *ps, int n) {
  AdCtx *a = o->a;
  NodeId total = f64(o, 0.0);
  for (int i = 0; i < n; i++) {
    NodeId sq = build_binary(&a->b, OP_MUL, ps[i].grad, ps[i].grad);
    uint32_t all = (1u << graph_node(a->b.g, ps[i].grad)->shape.rank) - 1;
    NodeId s = all ? build_reduce(&a->b, OP_SUM, sq, all, false) : sq;
    total = build_binary(&a->b, OP_ADD, total, build_cast(&a->b, s, DT_F64));
  }
  NodeId norm = build_binary(&a->b, OP_ADD, build_unary(&a->b, OP_SQRT, total), f64(o, 1e-6));
  NodeId coef = build_binary(&a->b, OP_DIV, f64(o, o->v[A_CLIP_NORM]), norm);
  o->clip = build_binary(&a->b, OP_MINIMUM, coef, f64(o, 1.0));
}

/* ---- per-param updates -------------------------------------------------------------------- */

/* Builders in the param's dtype. */
typedef struct Upd {
  Opt *o;
  AdCtx *a;
  DType t;
  NodeId p, g; /* current param value, gradient (clipped) */
} Upd;

static NodeId cst(Upd *u, double v) {
  return build_scalar(&u->a->b, u->t, v);
}
static NodeId mul(Upd *u, NodeId x, NodeId y) {
  return build_binary(&u->a->b, OP_MUL, x, y);
}
static NodeId add(Upd *u, NodeId x, NodeId y) {
  return build_binary(&u->a->b, OP_ADD, x, y);
}
static NodeId sub(Upd *u, NodeId x, NodeId y) {
  return build_binary(&u->a->b, OP_SUB, x, y);
}
static NodeId dvd(Upd *u, NodeId x, NodeId y) {
  return build_binary(&u->a->b, OP_DIV, x, y);
}
static NodeId scal(Upd *u, NodeId f64_scalar) {
  return build_cast(&u->a->b, f64_scalar, u->t);
}

/* g + weight_decay * p (the coupled L2 decay of every optimizer but AdamW) */
static NodeId decayed(Upd *u) {
  double wd = u->o->v[A_WEIGHT_DECAY];
  return wd != 0 ? add(u, u->g, mul(u, cst(u, wd), u->p)) : u->g;
}

/* beta * m + (1 - beta) * x */
static NodeId ema(Upd *u, double beta, NodeId m, NodeId x) {
  return add(u, mul(u, cst(u, beta), m), mul(u, cst(u, 1 - beta), x));
}

/* SGD: d = g + wd p; buf = mu buf + (1 - damp) d (buf = d on the first step);
 * d = nesterov ? d + mu buf : buf; p -= lr d */
static NodeId update_sgd(Upd *u, const OptimParam *p) {
  Opt *o = u->o;
  double mu = o->v[A_MOMENTUM], damp = o->v[A_DAMPENING];
  NodeId d = decayed(u);
  if (mu != 0) {
    Slot buf = slot(o, p, "buf", 0.0);
    NodeId fresh = damp != 0 ? mul(u, cst(u, 1 - damp), d) : d;
    NodeId next = add(u, mul(u, cst(u, mu), buf.value), fresh);
    if (damp != 0) { /* torch starts the buffer at d itself, undamped */
      NodeId first = scal(u, build_binary(&u->a->b, OP_EQ, o->t, f64(o, 1.0)));
      NodeId later = sub(u, cst(u, 1.0), first);
      next = add(u, mul(u, first, d), mul(u, later, next));
    }
    write_slot(o, &buf, next);
    d = o->v[A_NESTEROV] != 0 ? add(u, d, mul(u, cst(u, mu), next)) : next;
  }
  return sub(u, u->p, mul(u, scal(u, o->lr), d));
}

/* Adam / AdamW: (AdamW: p *= 1 - lr wd; else g += wd p); m = ema(b1); v = ema(b2, g^2);
 * p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
static NodeId update_adam(Upd *u, const OptimParam *p) {
  Opt *o = u->o;
  AdCtx *a = u->a;
  double b1 = o->v[A_BETA1], b2 = o->v[A_BETA2];
  NodeId param = u->p, g = u->g;
  if (o->info->kind == OPT_ADAMW) {
    NodeId keep = build_binary(&a->b, OP_SUB, f64(o, 1.0),
                               build_binary(&a->b, OP_MUL, o->lr, f64(o, o->v[A_WEIGHT_DECAY])));
    param = mul(u, param, scal(u, keep));
  } else {
    g = decayed(u);
  }
  Slot m = slot(o, p, "m", 0.0), v = slot(o, p, "v", 0.0);
  NodeId m1 = ema(u, b1, m.value, g);
  NodeId v1 = ema(u, b2, v.value, mul(u, g, g));
  write_slot(o, &m, m1);
  write_slot(o, &v, v1);
  NodeId bc1 =
      build_binary(&a->b, OP_SUB, f64(o, 1.0), build_binary(&a->b, OP_POW, f64(o, b1), o->t));
  NodeId bc2 =
      build_binary(&a->b, OP_SUB, f64(o, 1.0), build_binary(&a->b, OP_POW, f64(o, b2), o->t));
  NodeId step_size = scal(u, build_binary(&a->b, OP_DIV, o->lr, bc1));
  NodeId denom =
      add(u, dvd(u, build_unary(&a->b, OP_SQRT, v1), scal(u, build_unary(&a->b, OP_SQRT, bc2))),
          cst(u, o->v[A_EPS]));
  return sub(u, param, mul(u, step_size, dvd(u, m1, denom)));
}

/* RMSprop: g += wd p; v = ema(alpha, g^2); avg = sqrt(v [- ga^2 if centered]) + eps;
 * momentum: buf = mu buf + g / avg, p -= lr buf; else p -= lr g / avg */
static NodeId update_rmsprop(Upd *u, const OptimParam *p) {
  Opt *o = u->o;
  double alpha = o->v[A_ALPHA], mu = o->v[A_MOMENTUM];
  NodeId g = decayed(u);
  Slot v = slot(o, p, "square_avg", 0.0);
  NodeId v1 = ema(u, alpha, v.value, mul(u, g, g));
  write_slot(o, &v, v1);
  NodeId var = v1;
  if (o->v[A_CENTERED] != 0) {
    Slot ga = slot(o, p, "grad_avg", 0.0);
    NodeId ga1 = ema(u, alpha, ga.value, g);
    write_slot(o, &ga, ga1);
    var = sub(u, v1, mul(u, ga1, ga1));
  }
  NodeId avg = add(u, build_unary(&u->a->b, OP_SQRT, var), cst(u, o->v[A_EPS]));
  NodeId d = dvd(u, g, avg);
  if (mu > 0) {
    Slot buf = slot(o, p, "buf", 0.0);
    d = add(u, mul(u, cst(u, mu), buf.value), d);
    write_slot(o, &buf, d);
  }
  return sub(u, u->p, mul(u, scal(u, o->lr), d));
}

/* Adagrad: g += wd p; clr = lr / (1 + (t - 1) lr_decay); sum += g^2;
 * p -= clr g / (sqrt(sum) + eps) */
static NodeId update_adagrad(Upd *u, const OptimParam *p) {
  Opt *o = u->o;
  AdCtx *a = u->a;
  NodeId g = decayed(u);
  Slot s = slot(o, p, "sum", o->v[A_INITIAL_ACC]);
  NodeId s1 = add(u, s.value, mul(u, g, g));
  write_slot(o, &s, s1);
  NodeId decay = build_binary(&a->b, OP_MUL, build_binary(&a->b, OP_SUB, o->t, f64(o, 1.0)),
                              f64(o, o->v[A_LR_DECAY]));
  NodeId clr = build_binary(&a->b, OP_DIV, o->lr, build_binary(&a->b, OP_ADD, f64(o, 1.0), decay));
  NodeId std = add(u, build_unary(&a->b, OP_SQRT, s1), cst(u, o->v[A_EPS]));
  return sub(u, u->p, mul(u, scal(u, clr), dvd(u, g, std)));
}

static void update_param(Opt *o, const OptimParam *p) {
  AdCtx *a = o->a;
  const Node *pn = graph_node(a->b.g, p->value);
  Upd u = {o, a, pn->dtype, p->value, p->grad};
  if (o->clip != IR_NONE) u.g = mul(&u, u.g, scal(&u, o->clip));
  NodeId next = IR_NONE;
  switch (o->info->kind) {
  case OPT_SGD:
    next = update_sgd(&u, p);
    break;
  case OPT_ADAM:
  case OPT_ADAMW:
    next = update_adam(&u, p);
    break;
  case OPT_RMSPROP:
    next = update_rmsprop(&u, p);
    break;
  case OPT_ADAGRAD:
    next = update_adagrad(&u, p);
    break;
  }
  if (next != IR_NONE)
    graph_add_output(a->b.g, a->b.g->module->params[p->index].name, next, OUT_PARAM_UPDATE,
                     p->index);
}

bool optim_append(AdCtx *a, const TrainStep *step, const char *entry, const OptimParam *ps, int n) {
  Opt o;
  memset(&o, 0, sizeof o);
  o.a = a;
  o.clip = IR_NONE;
  a->b.loc = step->loc;
  if (!(o.info = find_optimizer(step, a->b.diag))) return false;
  set_defaults(&o);
  if (!read_args(&o, step, a->b.diag) || !check_args(&o, a->b.diag)) return false;
  Module *m = a->b.g->module;
  o.prefix = step->name ? arena_printf(&m->arena, "%s.%s", step->name, o.info->name) : o.info->name;
  int32_t count_index;
  const char *count_name = arena_printf(&m->arena, "%s.step_count", entry);
  Shape scalar = shape_make(0, NULL);
  NodeId count = state_node(&o, count_name, DT_F64, &scalar, 0.0, &count_index);
  o.t = build_binary(&a->b, OP_ADD, count, f64(&o, 1.0));
  if (!schedule_lr(&o, a->b.diag)) return false;
  if (o.given[A_CLIP_NORM]) clip_coefficient(&o, ps, n);
  for (int i = 0; i < n && !a->b.failed; i++)
    update_param(&o, &ps[i]);
  if (a->b.failed) return false;
  graph_add_output(a->b.g, count_name, o.t, OUT_STATE_UPDATE, count_index);
  return true;
}

/* ---- the apply entry ---------------------------------------------------------------------- */

/* The module input "grad.<param>" that carries param p's gradient into "apply" (made on the
 * first compile, found again on the next); -1 after a diagnostic if a model input took it. */
static int32_t gradient_input(Module *m, int32_t p, Diag *d) {
  const TensorDecl *param = &m->params[p];
  const char *name = arena_printf(&m->arena, "grad.%s", param->name);
  for (int32_t i = 0; i < m->n_inputs; i++) {
    const TensorDecl *in = &m->inputs[i];
    if (strcmp(in->name, name) != 0) continue;
    if (in->dtype == param->dtype && shape_equal(&in->shape, &param->shape)) return i;
    diag_error(d, in->loc, "input '%s' clashes with the gradient input of the apply entry", name);
    return -1;
  }
  return module_add_input(m, name, param->dtype, &param->shape, param->loc);
}

Graph *optim_apply_entry(Module *m, const Graph *train, Diag *d) {
  const TrainStep *step = &m->steps[train->step];
  Graph *g = graph_new(m, "apply");
  g->step = train->step;
  AdCtx a = {build_init(g, d, step->loc), NULL, NULL, 0};
  OptimParam *ps = arena_alloc(&g->arena, sizeof *ps * (size_t)(train->n_outputs + 1));
  int n = 0;
  for (int i = 0; i < train->n_outputs; i++) {
    const GraphOutput *o = &train->outputs[i];
    if (o->kind != OUT_PARAM_UPDATE) continue;
    int32_t in = gradient_input(m, o->target, d);
    if (in < 0) return graph_free(g), NULL;
    SrcLoc loc = m->params[o->target].loc;
    ps[n++] = (OptimParam){o->target, graph_add_source(g, OP_PARAM, o->target, loc),
                           graph_add_source(g, OP_INPUT, in, loc)};
  }
  if (!optim_append(&a, step, train->name, ps, n)) return graph_free(g), NULL;
  return g;
}
