/* cli/dump.c — `lathe dump FILE`: the IR of the model or of an entry point after a pass. */
#include "cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: lathe dump [OPTIONS] FILE\n"
    "\n"
    "Print the IR of FILE. Without --after, the elaborated model graph; with --after PASS,\n"
    "every entry point (forward, train...) after PASS.\n"
    "\n"
    "options:\n"
    "  --format text|dot   IR text (default) or Graphviz dot\n"
    "  --after PASS        print the entry graphs after PASS (see below)\n"
    "  --entry NAME        only this entry point (forward, train, ...)\n"
    "  --kernels           after the whole pipeline: each kernel, its IR nodes, source lines\n"
    "  --memplan           after the whole pipeline: the workspace plan of each entry (with a\n"
    "                      run-time batch: sizes and offsets A*n + B, and each entry's\n"
    "                      <MODEL>_<ENTRY>_WORKSPACE_BYTES(n) of the generated header)\n"
    "  -D NAME=VALUE       override a `const` of the model\n"
    "  --model NAME        which model of a file with several (default: the one its\n"
    "                      train block names, else the last)\n"
    "  --max-batch M       a .onnx FILE's symbolic batch: dynamic, 1 to M (default 64)\n"
    "  --dtype f32|f64     compile every f32 as f64\n"
    "  -O0 .. -O3          optimization level (default -O2)\n"
    "  -h, --help          this help\n"
    "\n"
    "passes, in order:\n";

static void print_help(void) {
  fputs(help, stdout);
  for (int p = 0; p < passes_count(); p++)
    printf("  %-10s %s\n", passes_name(p), passes_description(p));
}

/* `--kernels`: kernel k, then one line per IR node it computes, with its source line. */
static void print_kernels(const Graph *g) {
  int32_t *kernel_of = malloc((g->n_nodes + 1) * sizeof *kernel_of);
  int32_t n = kernel_of ? graph_fill_kernels(g, kernel_of) : -1;
  printf("; entry %s: %d kernels\n", g->name, n);
  for (int32_t k = 0; k < n; k++) {
    bool head = false;
    for (uint32_t id = 0; id < g->n_nodes; id++) {
      const Node *nd = &g->nodes[id];
      if (kernel_of[id] != k) continue;
      if (!head) printf("kernel %d%s:\n", k, nd->group >= 0 ? " (fused)" : "");
      head = true;
      char shape[200];
      printf("  %%%u = %s : %s%s", id, ir_ops[nd->op].name, dtype_name(nd->dtype),
             shape_str(&nd->shape, shape, sizeof shape));
      if (nd->name) printf("  -- %s", nd->name);
      if (nd->loc.file) printf("  (%s:%u:%u)", nd->loc.file, nd->loc.line, nd->loc.col);
      putchar('\n');
    }
  }
  free(kernel_of);
}

/* "A*n + B" of a dynamic module's affine sizes and offsets ("A*n" when B is 0, "B" when A is),
 * as the generated header's plan table writes them; a static module's plain B */
static const char *affine(int64_t per_n, int64_t fixed, char *buf, size_t size) {
  if (per_n == 0)
    snprintf(buf, size, "%lld", (long long)fixed);
  else if (fixed == 0)
    snprintf(buf, size, "%lld*n", (long long)per_n);
  else
    snprintf(buf, size, "%lld*n + %lld", (long long)per_n, (long long)fixed);
  return buf;
}

/* `--memplan`: buffer, bytes, offset, first and last kernel; arena vs the sum of buffers. In
 * a module with a run-time batch (docs/dynamic-batch.md) sizes and offsets are A*n + B. */
static void print_memplan(const Module *m, const Graph *g) {
  PlanBuffer *b = malloc((g->n_nodes + 1) * sizeof *b);
  int64_t total = 0;
  int n = b ? graph_fill_buffers(g, b, &total) : -1;
  char s1[64], s2[64];
  if (m->dyn_max > 0)
    printf("; entry %s: workspace plan at run-time batch n, 1 <= n <= %lld (bytes A*n + B)\n",
           g->name, (long long)m->dyn_max);
  else
    printf("; entry %s: workspace plan\n", g->name);
  printf("%-10s %-16s %16s %16s %6s %6s\n", "buffer", "name", "bytes", "offset", "first", "last");
  for (int i = 0; i < n; i++) {
    const Node *nd = &g->nodes[b[i].node];
    printf("%%%-9u %-16s %16s %16s %6d %6d\n", b[i].node, nd->name ? nd->name : "-",
           affine(b[i].bytes_n, b[i].bytes, s1, sizeof s1),
           affine(b[i].offset_n, b[i].offset, s2, sizeof s2), b[i].first, b[i].last);
  }
  if (m->dyn_max > 0) {
    int64_t arena = g->workspace_bytes_n * m->dyn_max + g->workspace_bytes;
    printf("arena %s bytes (%lld at n = %lld); sum of %d buffers at the bound %lld bytes "
           "(%.1f%%)\n",
           affine(g->workspace_bytes_n, g->workspace_bytes, s1, sizeof s1), (long long)arena,
           (long long)m->dyn_max, n, (long long)total,
           total > 0 ? 100.0 * (double)arena / (double)total : 0.0);
  } else {
    printf("arena %lld bytes; sum of %d buffers %lld bytes (%.1f%%)\n",
           (long long)g->workspace_bytes, n, (long long)total,
           total > 0 ? 100.0 * (double)g->workspace_bytes / (double)total : 0.0);
  }
  free(b);
}

/* A dynamic module's <MODEL>_<ENTRY>_WORKSPACE_BYTES(n) = A*n + B of the generated header:
 * the plan above plus the kernels' scratch and pre-packed operands, which codegen adds; read
 * from the compiled model's descriptor (workspace_per_n, workspace_base), so it is the
 * header's number, not a second derivation of it. */
static bool print_workspace_macros(const Module *m, const CliCompile *c, const char *entry) {
  RtModel model = {0};
  if (!cli_load(m, c, &model)) return false;
  char upper[256], s1[64];
  size_t k = 0;
  for (; model.info->name[k] && k + 1 < sizeof upper; k++)
    upper[k] = (char)toupper((unsigned char)model.info->name[k]);
  upper[k] = '\0';
  printf("; the generated header's workspace (the plan, kernel scratch, pre-packed operands)\n");
  int64_t max_a = 0, max_b = 0; /* <MODEL>_WORKSPACE_BYTES(n): enough for every entry */
  for (int i = 0; i < model.info->n_entries; i++) {
    const lathe_entry_info *e = &model.info->entries[i];
    if ((int64_t)e->workspace_per_n > max_a) max_a = (int64_t)e->workspace_per_n;
    if ((int64_t)e->workspace_base > max_b) max_b = (int64_t)e->workspace_base;
  }
  if (!entry) printf("%s_WORKSPACE_BYTES(n) = %s\n", upper, affine(max_a, max_b, s1, sizeof s1));
  for (int i = 0; i < model.info->n_entries; i++) {
    const lathe_entry_info *e = &model.info->entries[i];
    if (entry && strcmp(entry, e->name) != 0) continue;
    printf("%s_", upper);
    for (const char *p = e->name; *p; p++)
      putchar(toupper((unsigned char)*p));
    printf("_WORKSPACE_BYTES(n) = %s\n",
           affine((int64_t)e->workspace_per_n, (int64_t)e->workspace_base, s1, sizeof s1));
  }
  rt_model_close(&model);
  return true;
}

static void print_graph(const Graph *g, bool dot) {
  char *text = dot ? ir_print_dot(g) : ir_print(g);
  if (text) fputs(text, stdout);
  free(text);
}

int cmd_dump(int argc, char **argv) {
  CliArgs a;
  CliCompile c;
  bool dot = false;
  const char *after = NULL, *entry = NULL;
  enum { VIEW_IR, VIEW_KERNELS, VIEW_MEMPLAN } view = VIEW_IR;
  cli_args_init(&a, "dump", argc, argv);
  cli_compile_init(&c);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      print_help();
      return EXIT_OK;
    }
    if (cli_option(&a, "--format", NULL)) {
      if (strcmp(a.value, "dot") != 0 && strcmp(a.value, "text") != 0)
        return cli_usage_error(&a, "--format expects text or dot, got '%s'", a.value);
      dot = strcmp(a.value, "dot") == 0;
      continue;
    }
    if (cli_option(&a, "--after", NULL)) {
      after = a.value;
      continue;
    }
    if (cli_flag(&a, "--kernels", NULL)) {
      view = VIEW_KERNELS;
      continue;
    }
    if (cli_flag(&a, "--memplan", NULL)) {
      view = VIEW_MEMPLAN;
      continue;
    }
    if (cli_option(&a, "--entry", NULL)) {
      entry = a.value;
      continue;
    }
    if (cli_compile_option(&a, &c)) continue;
    if (cli_positional(&a, &c.file) != EXIT_OK) return EXIT_USAGE;
  }
  if (a.failed) return EXIT_USAGE;
  if (!c.file) return cli_usage_error(&a, "expected a model FILE");
  if (view != VIEW_IR && after)
    return cli_usage_error(&a, "--kernels and --memplan show the whole pipeline: drop --after");
  if (view == VIEW_IR && after) {
    bool known = false;
    for (int p = 0; p < passes_count(); p++)
      known |= strcmp(passes_name(p), after) == 0;
    if (!known) return cli_usage_error(&a, "--after: unknown pass '%s'", after);
    /* stop the pipeline right after the requested pass */
    bool past = false;
    for (int p = 0; p < passes_count(); p++) {
      if (past && c.n_disabled < CLI_MAX_DISABLED) c.disabled[c.n_disabled++] = passes_name(p);
      past |= strcmp(passes_name(p), after) == 0;
    }
  } else if (view == VIEW_IR) { /* the elaborated model: no pass at all */
    for (int p = 0; p < passes_count() && c.n_disabled < CLI_MAX_DISABLED; p++)
      c.disabled[c.n_disabled++] = passes_name(p);
  }
  Module *m = cli_build_module(&c);
  if (!m) return EXIT_USER;
  if (!after && view == VIEW_IR) {
    print_graph(m->model, dot);
  } else {
    int shown = 0;
    for (int i = 0; i < m->n_entries; i++) {
      if (entry && strcmp(entry, m->entries[i]->name) != 0) continue;
      if (view == VIEW_KERNELS)
        print_kernels(m->entries[i]);
      else if (view == VIEW_MEMPLAN)
        print_memplan(m, m->entries[i]);
      else
        print_graph(m->entries[i], dot);
      shown++;
    }
    if (entry && !shown) {
      fprintf(stderr, "lathe dump: model '%s' has no entry point '%s'\n", m->name, entry);
      module_free(m);
      return EXIT_USER;
    }
    if (view == VIEW_MEMPLAN && m->dyn_max > 0 && !print_workspace_macros(m, &c, entry)) {
      module_free(m);
      return EXIT_USER;
    }
  }
  module_free(m);
  return EXIT_OK;
}
