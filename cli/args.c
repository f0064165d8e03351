/* cli/args.c — command-line option matching shared by every command.
 *
 * Options may come in any order around the positional FILE; each command loops over
 * cli_option/cli_flag/cli_compile_option and treats anything else as positional or an error.
 * An option missing its value fails the cursor (reported once); every matcher after it in the
 * same loop iteration then matches nothing instead of reading past argv.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_args_init(CliArgs *a, const char *cmd, int argc, char **argv) {
  memset(a, 0, sizeof *a);
  a->argc = argc;
  a->argv = argv;
  a->i = 1; /* argv[0] is the command name */
  a->cmd = cmd;
}

bool cli_args_done(const CliArgs *a) { return a->i >= a->argc || a->failed; }

int cli_args_parse(CliArgs *a, const char *help, int (*option)(CliArgs *a, void *o), void *o) {
  while (!cli_args_done(a)) {
    if (cli_flag(a, "--help", "-h")) {
      fputs(help, stdout);
      return -1;
    }
    if (option(a, o) != EXIT_OK) return EXIT_USAGE;
  }
  return a->failed ? EXIT_USAGE : EXIT_OK;
}

int cli_usage_error(const CliArgs *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "lathe %s: ", a->cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'lathe %s --help'.\n", a->cmd);
  va_end(ap);
  return EXIT_USAGE;
}

bool cli_flag(CliArgs *a, const char *long_name, const char *short_name) {
  if (cli_args_done(a)) return false; /* an option before ran out of arguments */
  const char *arg = a->argv[a->i];
  if ((long_name && strcmp(arg, long_name) == 0) || (short_name && strcmp(arg, short_name) == 0)) {
    a->i++;
    return true;
  }
  return false;
}

/* --name value | --name=value | -Xvalue | -X value */
bool cli_option(CliArgs *a, const char *long_name, const char *short_name) {
  if (cli_args_done(a)) return false;
  const char *arg = a->argv[a->i];
  const char *names[2] = {long_name, short_name};
  for (int k = 0; k < 2; k++) {
    const char *n = names[k];
    if (!n) continue;
    size_t len = strlen(n);
    if (strncmp(arg, n, len) != 0) continue;
    if (arg[len] == '=' && k == 0) {
      a->value = arg + len + 1;
    } else if (arg[len] == '\0') {
      if (a->i + 1 >= a->argc) {
        cli_usage_error(a, "option '%s' needs a value", n);
        a->failed = true;
        a->i = a->argc;
        return false;
      }
      a->value = a->argv[++a->i];
    } else if (k == 1 && strlen(n) == 2) {
      a->value = arg + len; /* -DNAME=1, -O2 */
    } else {
      continue;
    }
    a->i++;
    return true;
  }
  return false;
}

bool cli_parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s || *s == '-') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static bool parse_define(CliArgs *a, CliCompile *c, const char *text) {
  const char *eq = strchr(text, '=');
  Define def = {0};
  if (!eq || eq == text || !frontend_define_value(eq + 1, &def)) {
    cli_usage_error(a, "expected -D NAME=INTEGER or NAME=dynamic(max=M) with M >= 1, got '%s'",
                    text);
    a->failed = true;
    return true;
  }
  if (c->n_defines == CLI_MAX_DEFINES) {
    cli_usage_error(a, "too many -D options (at most %d)", CLI_MAX_DEFINES);
    a->failed = true;
    return true;
  }
  /* the name is kept as a pointer into argv; cut it at '=' in place */
  ((char *)eq)[0] = '\0';
  def.name = text;
  c->defines[c->n_defines++] = def;
  return true;
}

bool cli_compile_option(CliArgs *a, CliCompile *c) {
  if (cli_args_done(a)) return false;
  const char *arg = a->argv[a->i];
  if (cli_option(a, NULL, "-D")) return parse_define(a, c, a->value);
  if (cli_option(a, "--max-batch", NULL)) {
    uint64_t v = 0;
    if (!cli_parse_u64(a->value, &v) || v < 1 || v > INT32_MAX) {
      cli_usage_error(a, "--max-batch expects an integer from 1 to %d, got '%s'", INT32_MAX,
                      a->value);
      a->failed = true;
    }
    c->onnx_max_batch = (int64_t)v;
    return true;
  }
  if (cli_option(a, "--loss", NULL)) {
    c->onnx_loss = a->value;
    return true;
  }
  if (cli_option(a, "--optimizer", NULL)) {
    c->onnx_optimizer = a->value;
    return true;
  }
  if (strncmp(arg, "-O", 2) == 0 && arg[2] >= '0' && arg[2] <= '3' && arg[3] == '\0') {
    c->opt_level = arg[2] - '0';
    a->i++;
    return true;
  }
  if (cli_option(a, "--dtype", NULL)) {
    if (strcmp(a->value, "f32") == 0) c->dtype = DT_F32;
    else if (strcmp(a->value, "f64") == 0) c->dtype = DT_F64;
    else {
      cli_usage_error(a, "--dtype expects f32 or f64, got '%s'", a->value);
      a->failed = true;
    }
    return true;
  }
  if (cli_option(a, "--lib", NULL)) {
    c->lib_dir = a->value;
    return true;
  }
  if (cli_option(a, "--model", NULL)) { /* which model of a file with several */
    c->model_name = a->value;
    return true;
  }
  if (cli_flag(a, "--line-directives", NULL)) {
    c->line_directives = true;
    return true;
  }
  if (cli_flag(a, "--split-step", NULL)) {
    c->want_split = true;
    return true;
  }
  if (cli_option(a, "--buckets", NULL)) { /* docs/distributed.md: the per-bucket hook */
    uint64_t n;
    if (!cli_parse_u64(a->value, &n) || n < 1 || n > ((uint64_t)1 << 40)) {
      cli_usage_error(a, "--buckets expects a size in bytes from 1 to 2^40, got '%s'", a->value);
      a->failed = true;
    } else {
      c->buckets = (int64_t)n;
    }
    return true;
  }
  if (cli_flag(a, "--no-tune-cache", NULL)) { /* docs/tuning.md: the cost model alone */
    c->no_tune_cache = true;
    return true;
  }
  if (cli_flag(a, "--time-passes", NULL)) {
    c->time_passes = true;
    return true;
  }
  if (cli_option(a, "--target", NULL)) {
    if (!cg_target_parse(a->value, &c->target)) {
      cli_usage_error(a, "--target expects native, generic, x86-64-v3, x86-64-v4 or aarch64, "
                         "got '%s'", a->value);
      a->failed = true;
    }
    return true;
  }
  if (cli_option(a, "--threads", NULL)) {
    uint64_t n;
    if (!cli_parse_u64(a->value, &n) || n < 1 || n > 1024) {
      cli_usage_error(a, "--threads expects a count from 1 to 1024, got '%s'", a->value);
      a->failed = true;
    } else {
      c->threads = (int)n;
    }
    return true;
  }
  if (cli_option(a, "--prefix", NULL)) {
    const char *why = cg_prefix_error(a->value);
    if (why) {
      cli_usage_error(a, "invalid --prefix '%s': %s", a->value, why);
      a->failed = true;
    }
    c->prefix = a->value;
    return true;
  }
  if (cli_option(a, "--dump-after", NULL)) {
    c->dump_after = a->value;
    return true;
  }
  if (cli_option(a, "--disable", NULL)) {
    if (c->n_disabled < CLI_MAX_DISABLED) c->disabled[c->n_disabled++] = a->value;
    return true;
  }
  return false;
}

int cli_positional(CliArgs *a, const char **file) {
  if (cli_args_done(a)) return EXIT_USAGE; /* reported by the option that failed */
  const char *arg = a->argv[a->i++];
  if (arg[0] == '-') return cli_usage_error(a, "unknown option '%s'", arg);
  if (*file) return cli_usage_error(a, "expected one FILE, got '%s' and '%s'", *file, arg);
  *file = arg;
  return EXIT_OK;
}

int cli_onnx_loss_check(const CliArgs *a, const CliCompile *c) {
  if (!driver_is_onnx(c->file) || c->onnx_loss) return EXIT_OK;
  return cli_usage_error(a,
                         "%s is an ONNX model, which has no loss: give --loss cross_entropy "
                         "(adds an i32 input 'label') or --loss mse (adds an input 'target' of "
                         "the first output's shape)",
                         c->file);
}
