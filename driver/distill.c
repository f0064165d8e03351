/* driver/distill.c — knowledge distillation in the train step: the `distill` statement
 * (docs/compression.md), carried out between the frontend and the passes.
 *
 * For each train step with a TrainDistill (frontend/elab_distill.c checked T, alpha and the
 * student's logits):
 *   1. the teacher file is read — a .lathe file, or a .onnx file through the importer as
 *      `lathe compile FILE.onnx` does — and compiled by the frontend with the student's float
 *      type, library dir and -D overrides (those naming a const the teacher lacks ignored);
 *   2. its params and states become constants holding its trained weights (`weights W`, or
 *      an ONNX file's initializers), as `lathe compile --bake` does (driver/bake.c): the
 *      generated C stays standalone (the teacher is static tables in it), the student's
 *      params struct and checkpoints hold only the student, and the host loads nothing new;
 *   3. the nodes its logits depend on are copied into Module.model, named `teacher.<name>`,
 *      in inference mode (each TRAIN_SELECT resolved to its inference input: batch norm's
 *      running statistics, no dropout), its inputs bound to the student's inputs of the same
 *      name, which must have the same dtype and shape;
 *   4. the step's loss becomes alpha * T^2 * KL + (1 - alpha) * hard, with
 *      KL = mean over the leading axes of sum_c p_t (log p_t - log p_s),
 *      p = softmax(logits / T) over the last axis, the teacher's logits under stop_gradient.
 * The teacher has no params, and its logits pass a STOP_GRAD, so the backward pass that
 * autodiff derives never enters it; its forward is fused and planned with the student's.
 */
#include "driver/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"
#include "ir/build.h"

/* What one teacher is while it is built. */
typedef struct Teacher {
  const TrainDistill *td;
  Module *m;             /* the compiled, baked teacher */
  RtTensorSet w;         /* its weights: the checkpoint W, or an ONNX file's initializers */
  const char *files[16]; /* teacher SrcLoc file → its copy in the student's arena (pairs) */
  const char *copies[16];
  int n_files;
  bool unreadable; /* the file could not be opened (reported at the statement's FILE) */
} Teacher;

/* The teacher's .lathe text (an ONNX file imported: its initializers into t->w). */
static bool teacher_source(Teacher *t, const Module *s, const DriverOptions *o, char **text,
                           Diag *d) {
  const char *path = t->td->teacher;
  FILE *f = fopen(path, "rb");
  if (!f) {
    diag_error(d, t->td->teacher_loc, "cannot read the teacher '%s': %s", path, strerror(errno));
    t->unreadable = true;
    return false;
  }
  fclose(f);
  size_t len = 0;
  char *data = NULL;
  if (!rt_read_file(path, &data, &len, d)) return false;
  if (!driver_is_onnx(path)) {
    *text = data;
    return frontend_check_text(path, data, len, d);
  }
  ImportOptions io;
  import_options_init(&io);
  io.defines = o->defines;
  io.n_defines = o->n_defines;
  if (s->dyn_max) io.max_batch = s->dyn_max;
  ImportResult r;
  bool ok = onnx_import(path, (const uint8_t *)data, len, &io, &r, d);
  free(data);
  if (!ok) return false;
  *text = r.text;
  r.text = NULL;
  t->w = r.weights; /* moved */
  rt_set_init(&r.weights);
  import_result_fini(&r);
  return true;
}

/* The batch that fixes a dynamic teacher (an ONNX export with a symbolic batch) for a static
 * student: the student's axis 0 of an input the teacher shares, over its multiple k; 0 if
 * none applies. */
static int64_t static_batch(const Module *t, const Module *s) {
  if (!t->dyn_max || s->dyn_max) return 0;
  for (int i = 0; i < t->n_inputs; i++) {
    const Shape *ts = &t->inputs[i].shape;
    for (int j = 0; ts->dyn && j < s->n_inputs; j++)
      if (strcmp(t->inputs[i].name, s->inputs[j].name) == 0 && s->inputs[j].shape.rank > 0 &&
          s->inputs[j].shape.dim[0] % ts->dyn == 0)
        return s->inputs[j].shape.dim[0] / ts->dyn;
  }
  return 0;
}

/* The teacher's text compiled with the student's options (-D overrides a teacher const does
 * not declare ignored), its dynamic batch fixed to the student's static one. */
static Module *teacher_frontend(const Teacher *t, const Module *s, const char *text,
                                const DriverOptions *o, Diag *d) {
  Define defines[DRIVER_MAX_DEFINES + 1];
  memcpy(defines, o->defines, (size_t)o->n_defines * sizeof *defines);
  FrontendOptions fo;
  frontend_options_init(&fo);
  fo.lib_dir = o->lib_dir;
  fo.defines = defines;
  fo.n_defines = o->n_defines;
  fo.float_dtype = o->dtype;
  fo.defines_optional = true;
  Module *m = frontend_compile(t->td->teacher, text, &fo, d);
  int64_t batch = m ? static_batch(m, s) : 0;
  if (!batch) return m;
  char name[256];
  snprintf(name, sizeof name, "%s", m->dyn_name);
  defines[fo.n_defines++] = (Define){.name = name, .value = batch};
  module_free(m);
  return frontend_compile(t->td->teacher, text, &fo, d);
}

/* Compiles and bakes the teacher into t->m. */
static bool teacher_compile(Teacher *t, const Module *s, const DriverOptions *o, Diag *d) {
  const TrainDistill *td = t->td;
  char *text = NULL;
  bool ok = teacher_source(t, s, o, &text, d);
  if (ok) ok = (t->m = teacher_frontend(t, s, text, o, d)) != NULL;
  free(text);
  if (!ok) { /* a file that was read: its own errors are above */
    if (!t->unreadable)
      diag_error(d, td->loc,
                 "the teacher '%s' of this 'distill' does not compile (its errors are above)",
                 td->teacher);
    return false;
  }
  if (t->m->n_params + t->m->n_states == 0) return true;
  if (td->weights) {
    rt_set_fini(&t->w);
    rt_set_init(&t->w);
    if (!rt_safetensors_read(td->weights, &t->w, d)) {
      diag_error(d, td->weights_loc, "cannot load the teacher's weights '%s' (see above)",
                 td->weights);
      return false;
    }
  } else if (t->w.n == 0) {
    diag_error(d, td->loc,
               "the teacher '%s' has %d params ('%s', ...): give its trained checkpoint with "
               "'weights \"FILE.safetensors\"'",
               td->teacher, t->m->n_params, t->m->n_params ? t->m->params[0].name : "?");
    return false;
  }
  const char *wpath = td->weights ? td->weights : td->teacher;
  if (driver_bake_set(t->m, &t->w, "distill", wpath, d)) return true;
  diag_error(d, td->loc, "the weights '%s' do not fit the teacher '%s' (see above)", wpath,
             td->teacher);
  return false;
}

/* The teacher's logits: `logits NAME` (an output, else the last binding of that name), or
 * its first output; a softmax output stands for its input (the probabilities of a classifier
 * are not logits, and distilling them as such would be silently wrong). */
static NodeId teacher_logits(const Teacher *t, Diag *d) {
  const Graph *g = t->m->model;
  const char *want = t->td->logits;
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *out = &g->outputs[i];
    if (out->kind != OUT_VALUE || (want && strcmp(out->name, want) != 0)) continue;
    const Node *n = graph_node(g, out->node);
    bool probs = !want && n->op == OP_SOFTMAX && n->attr.softmax.axis == n->shape.rank - 1;
    return probs ? n->in[0] : out->node;
  }
  for (NodeId id = g->n_nodes; want && id-- > 0;)
    if (g->nodes[id].name && strcmp(g->nodes[id].name, want) == 0) return id;
  char names[512] = "";
  for (int i = 0; i < g->n_outputs; i++) {
    size_t n = strlen(names);
    if (g->outputs[i].kind == OUT_VALUE)
      snprintf(names + n, sizeof names - n, "%s'%s'", n ? ", " : "", g->outputs[i].name);
  }
  if (want)
    diag_error(d, t->td->logits_loc, "the teacher '%s' has no binding or output '%s'%s%s",
               t->td->teacher, want, *names ? "; its outputs: " : "", names);
  else
    diag_error(d, t->td->loc, "the teacher '%s' has no output: name its logits with 'logits NAME'",
               t->td->teacher);
  return IR_NONE;
}

/* The teacher's location loc with its file name copied into the student's arena */
static SrcLoc teacher_loc(Teacher *t, Module *s, SrcLoc loc) {
  if (!loc.file) return loc;
  for (int i = 0; i < t->n_files; i++)
    if (t->files[i] == loc.file) return (SrcLoc){t->copies[i], loc.line, loc.col};
  const char *copy = arena_strdup(&s->arena, loc.file);
  if (t->n_files < (int)(sizeof t->files / sizeof t->files[0]))
    t->files[t->n_files] = loc.file, t->copies[t->n_files++] = copy;
  return (SrcLoc){copy, loc.line, loc.col};
}

/* The student's INPUT node of the teacher's input node n, checked to match; IR_NONE
 * (reported) when the student has no such input or its type differs. */
static NodeId student_input(const Teacher *t, const Module *s, const Node *n, Diag *d) {
  const TensorDecl *ti = &t->m->inputs[n->attr.source.index];
  char a[200], b[200];
  for (NodeId id = 0; id < s->model->n_nodes; id++) {
    const Node *sn = graph_node(s->model, id);
    if (sn->op != OP_INPUT || strcmp(s->inputs[sn->attr.source.index].name, ti->name) != 0)
      continue;
    if (sn->dtype == n->dtype && shape_equal(&sn->shape, &n->shape)) return id;
    diag_error(d, t->td->loc,
               "the teacher's input '%s' is %s%s but the student's is %s%s: 'distill' needs "
               "the inputs to match by name and shape",
               ti->name, dtype_name(n->dtype), shape_str(&n->shape, a, sizeof a),
               dtype_name(sn->dtype), shape_str(&sn->shape, b, sizeof b));
    return IR_NONE;
  }
  diag_error(d, t->td->loc,
             "the teacher's logits need its input '%s' %s%s, and the student has no input of "
             "that name: 'distill' needs the inputs to match by name and shape",
             ti->name, dtype_name(n->dtype), shape_str(&n->shape, a, sizeof a));
  return IR_NONE;
}

/* Graph g's subgraphs (SCAN bodies), at every depth, now belong to module m. */
static void adopt_subgraphs(Graph *g, Module *m) {
  g->module = m;
  for (int i = 0; i < g->n_subgraphs; i++)
    adopt_subgraphs(g->subgraphs[i], m);
}

/* The attributes of teacher node n as a node of s->model: constant data copied, a scan body
 * cloned, random streams moved past the student's (stream_base). */
static NodeAttr copy_attr(const Graph *tg, const Node *n, Graph *g, uint32_t stream_base) {
  NodeAttr at = n->attr;
  if (n->op == OP_CONST && at.constant.data) {
    size_t bytes = (size_t)shape_numel(&at.constant.shape) * sizeof(double);
    double *data = arena_alloc(&g->arena, bytes ? bytes : sizeof(double));
    memcpy(data, at.constant.data, bytes);
    at.constant.data = data;
  } else if (n->op == OP_SCAN) {
    Graph *body = graph_clone(tg->subgraphs[at.scan.body], NULL);
    adopt_subgraphs(body, g->module);
    at.scan.body = graph_add_subgraph(g, body);
  } else if (n->op == OP_RANDOM || n->op == OP_DROPOUT) {
    at.random.stream += stream_base;
  }
  return at;
}

/* The first random stream after every RANDOM/DROPOUT node of g */
static uint32_t next_stream(const Graph *g) {
  uint32_t next = 0;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if ((n->op == OP_RANDOM || n->op == OP_DROPOUT) && n->attr.random.stream >= next)
      next = n->attr.random.stream + 1;
  }
  return next;
}

/* Marks the teacher nodes `logits` depends on in inference mode (a TRAIN_SELECT reads only
 * its second input). live has one flag per teacher node. */
static void mark_live(const Graph *tg, NodeId logits, bool *live) {
  live[logits] = true;
  for (NodeId id = logits + 1; id-- > 0;) {
    const Node *n = graph_node(tg, id);
    if (!live[id]) continue;
    if (n->op == OP_TRAIN_SELECT)
      live[n->in[1]] = true;
    else
      for (int k = 0; k < n->n_in; k++)
        live[n->in[k]] = true;
  }
}

/* Copies the teacher's logits and what they depend on into s->model; returns the copy of
 * logits, or IR_NONE (reported). */
static NodeId teacher_merge(Teacher *t, Module *s, NodeId logits, Diag *d) {
  const Graph *tg = t->m->model;
  Graph *g = s->model;
  bool *live = calloc(tg->n_nodes, sizeof *live);
  NodeId *map = malloc(tg->n_nodes * sizeof *map);
  if (!live || !map) {
    free(live), free(map);
    diag_error(d, t->td->loc, "out of memory merging the teacher");
    return IR_NONE;
  }
  mark_live(tg, logits, live);
  uint32_t stream_base = next_stream(g);
  bool ok = true;
  for (NodeId id = 0; id <= logits && ok; id++) {
    const Node *n = graph_node(tg, id);
    map[id] = IR_NONE;
    if (!live[id]) continue;
    if (n->op == OP_INPUT) {
      ok = (map[id] = student_input(t, s, n, d)) != IR_NONE;
      continue;
    }
    if (n->op == OP_TRAIN_SELECT) {
      map[id] = map[n->in[1]];
      continue;
    }
    NodeId in[IR_MAX_INPUTS];
    for (int k = 0; k < n->n_in; k++)
      in[k] = map[n->in[k]];
    NodeAttr at = copy_attr(tg, n, g, stream_base);
    map[id] = graph_add(g, n->op, in, n->n_in, &at, teacher_loc(t, s, n->loc), d);
    ok = map[id] != IR_NONE;
    if (ok && n->name)
      graph_node(g, map[id])->name = arena_printf(&g->arena, "teacher.%s", n->name);
  }
  NodeId out = ok ? map[logits] : IR_NONE;
  free(live), free(map);
  return out;
}

/* loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * hard (head comment) */
static NodeId distill_loss(Graph *g, const TrainDistill *td, NodeId teacher, Diag *d) {
  Builder b = build_init(g, d, td->loc);
  const Node *sn = graph_node(g, td->student_logits);
  int rank = sn->shape.rank;
  NodeAttr axis = {.softmax = {.axis = rank - 1}};
  NodeId temp = build_scalar_like(&b, td->student_logits, td->temperature);
  NodeId ts = build_binary(&b, OP_DIV, build_unary(&b, OP_STOP_GRAD, teacher), temp);
  NodeId ss = build_binary(&b, OP_DIV, td->student_logits, temp);
  NodeId log_pt = build_node(&b, OP_LOG_SOFTMAX, &ts, 1, &axis);
  NodeId pt = build_node(&b, OP_SOFTMAX, &ts, 1, &axis);
  NodeId log_ps = build_node(&b, OP_LOG_SOFTMAX, &ss, 1, &axis);
  NodeId terms = build_binary(&b, OP_MUL, pt, build_binary(&b, OP_SUB, log_pt, log_ps));
  NodeId kl = build_reduce(&b, OP_SUM, terms, 1u << (rank - 1), false);
  if (rank > 1) kl = build_reduce(&b, OP_MEAN, kl, (1u << (rank - 1)) - 1, false);
  double soft = td->alpha * td->temperature * td->temperature;
  NodeId loss = build_binary(&b, OP_MUL, kl, build_scalar_like(&b, kl, soft));
  if (td->alpha < 1) {
    NodeId hard = build_cast(&b, td->hard_loss, graph_node(g, kl)->dtype);
    hard = build_binary(&b, OP_MUL, hard, build_scalar_like(&b, hard, 1 - td->alpha));
    loss = build_binary(&b, OP_ADD, loss, hard);
  }
  return b.failed ? IR_NONE : loss;
}

/* Builds step ts's teacher and loss into s->model (the head comment's steps 1-4). */
static bool distill_step(Module *s, TrainStep *ts, const DriverOptions *o, Diag *d) {
  TrainDistill *td = ts->distill;
  Teacher t = {.td = td};
  rt_set_init(&t.w);
  bool ok = teacher_compile(&t, s, o, d);
  NodeId logits = ok ? teacher_logits(&t, d) : IR_NONE;
  NodeId copy = logits != IR_NONE ? teacher_merge(&t, s, logits, d) : IR_NONE;
  ok = copy != IR_NONE;
  const Node *sn = graph_node(s->model, td->student_logits);
  const Node *tn = ok ? graph_node(s->model, copy) : NULL;
  const char *tname = ok ? t.m->model->nodes[logits].name : NULL;
  char a[200], b[200];
  if (ok && (!dtype_is_float(tn->dtype) || !shape_equal(&tn->shape, &sn->shape))) {
    diag_error(d, td->loc,
               "the teacher's logits '%s' are %s%s but the student's 'logits' are %s%s: "
               "'distill' needs the same classes (and batch)",
               tname ? tname : "(its first output)", dtype_name(tn->dtype),
               shape_str(&tn->shape, a, sizeof a), dtype_name(sn->dtype),
               shape_str(&sn->shape, b, sizeof b));
    ok = false;
  }
  NodeId loss = ok ? distill_loss(s->model, td, copy, d) : IR_NONE;
  if (loss != IR_NONE) {
    ts->loss_node = loss;
    graph_add_output(s->model, ts->loss, loss, OUT_LOSS, -1);
    td->built = true;
  }
  module_free(t.m);
  rt_set_fini(&t.w);
  return loss != IR_NONE;
}

bool driver_distill(Module *m, const DriverOptions *o, Diag *d) {
  bool ok = true;
  for (int i = 0; i < m->n_steps; i++)
    if (m->steps[i].distill && !m->steps[i].distill->built)
      ok &= distill_step(m, &m->steps[i], o, d);
  return ok;
}
