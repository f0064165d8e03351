/* cli/cmd_build.c — `lathe build FILE -o libNAME.so [--emit obj]`: a self-describing shared
 * object (or relocatable object) of a model.
 *
 * The generated C gets one extra function, `const lathe_model_info *lathe_model(void)`, so a
 * loader needs no model name: it dlsym's `lathe_model`, reads the descriptor, and calls the
 * entry points by their symbols (`lathe run libNAME.so` does so through libffi). It is weak
 * under GCC and Clang, so relocatable objects of several models (built with different
 * --prefix) still link into one program. The sources are written to a temp directory; the
 * compiler writes OUT.tmp next to OUT, renamed into place on success, so a failed build
 * leaves no partial output.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help =
    "usage: lathe build [OPTIONS] FILE -o libNAME.so\n"
    "\n"
    "Compile FILE and build it with the system C compiler ($CC, default cc) into a\n"
    "self-describing shared object: it exports the entry points (e.g. <model>_forward),\n"
    "<model>_init, the descriptor <model>_info, and lathe_model() returning it.\n"
    "Run it with `lathe run libNAME.so --input NAME=FILE.npy`.\n"
    "\n"
    "options:\n"
    "  -o, --out PATH       output file (default lib<model>.so, or <model>.o; <model>:\n"
    "                       the --prefix when given)\n"
    "  --emit so|obj        shared object (default) or relocatable object file\n"
    "  --header PATH        also write the generated header there\n"
    "  --cflags FLAGS       extra C compiler flags, e.g. \"-O3 -march=native\"\n"
    "  -D NAME=VALUE        override a `const` of the model\n"
    "  --max-batch M        a .onnx FILE's symbolic batch: dynamic, 1 to M (default 64)\n"
    "  --prefix NAME        NAME instead of the model's name in every exported symbol, type\n"
    "                       and macro (NAME_forward, NAME_info, ...) and the default output\n"
    "                       name: objects of two models, or of one built twice with\n"
    "                       different -D, then link into one program\n"
    "  --split-step         also export <model>_grad and <model>_apply (the train step\n"
    "                       split at the gradient exchange, docs/distributed.md)\n"
    "  --buckets BYTES      with --split-step: <model>_grad calls hooks->ready as each\n"
    "                       bucket of ~BYTES of gradients is final\n"
    "  --dtype f32|f64      compile every f32 as f64\n"
    "  -O0 .. -O3           lathe optimization level (default -O2)\n"
    "  --lib DIR            where `import` finds library files\n"
    "  -h, --help           this help\n";

typedef struct BuildOptions {
  CliCompile c;
  const char *out, *header, *cflags;
  bool object; /* --emit obj */
} BuildOptions;

static int parse_args(BuildOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "build", argc, argv);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      return -1;
    }
    if (cli_option(&a, "--out", "-o")) {
      o->out = a.value;
    } else if (cli_option(&a, "--header", NULL)) {
      o->header = a.value;
    } else if (cli_option(&a, "--cflags", NULL)) {
      o->cflags = a.value;
    } else if (cli_option(&a, "--emit", NULL)) {
      if (strcmp(a.value, "so") != 0 && strcmp(a.value, "obj") != 0)
        return cli_usage_error(&a, "--emit expects so or obj, got '%s'", a.value);
      o->object = strcmp(a.value, "obj") == 0;
    } else if (!cli_compile_option(&a, &o->c)) {
      if (cli_positional(&a, &o->c.file) != EXIT_OK) return EXIT_USAGE;
    }
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  return EXIT_OK;
}

/* c_text plus the `lathe_model` accessor (malloc'd); prefix: of the descriptor <prefix>_info */
static char *with_accessor(const char *c_text, const char *prefix) {
  const char *fmt = "%s\n/* added by `lathe build`: the descriptor under a fixed name (weak: the\n"
                    " * objects of several models link into one program, this one then\n"
                    " * returning the first model's; call <prefix>_info there instead) */\n"
                    "const lathe_model_info *lathe_model(void);\n"
                    "#if defined(__GNUC__)\n__attribute__((weak))\n#endif\n"
                    "const lathe_model_info *lathe_model(void) { return &%s_info; }\n";
  size_t n = strlen(c_text) + strlen(fmt) + strlen(prefix) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, fmt, c_text, prefix);
  return s;
}

/* Writes the sources into a fresh temp dir and compiles them to tmp_out. */
static bool compile_sources(const BuildOptions *o, const char *prefix, const char *c_text,
                            const char *h_text, const char *tmp_out, Diag *d) {
  const char *tmp = getenv("TMPDIR");
  char dir[4096], c_path[4300], h_path[4300], flags[4096];
  snprintf(dir, sizeof dir, "%s/lathe-build-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    diag_error(d, (SrcLoc){0}, "cannot create a build directory: %s", strerror(errno));
    return false;
  }
  snprintf(c_path, sizeof c_path, "%s/%s.c", dir, prefix);
  snprintf(h_path, sizeof h_path, "%s/%s.h", dir, prefix);
  snprintf(flags, sizeof flags, "%s %s %s", o->object ? "-c" : "",
           rt_source_threaded(c_text) ? "-fopenmp" : "", o->cflags ? o->cflags : "");
  bool ok = rt_write_file_atomic(h_path, h_text, strlen(h_text), d) &&
            rt_write_file_atomic(c_path, c_text, strlen(c_text), d) &&
            rt_build_shared(c_path, tmp_out, flags, d);
  unlink(c_path);
  unlink(h_path);
  rmdir(dir);
  return ok;
}

static bool build(const BuildOptions *o, const char *prefix, const char *c_text, const char *h_text,
                  const char *out, Diag *d) {
  char *full = with_accessor(c_text, prefix);
  char tmp_out[4200];
  snprintf(tmp_out, sizeof tmp_out, "%s.tmp%ld", out, (long)getpid());
  bool ok = full && compile_sources(o, prefix, full, h_text, tmp_out, d);
  if (!full) diag_error(d, (SrcLoc){0}, "out of memory");
  if (ok && rename(tmp_out, out) != 0) {
    diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", out, strerror(errno));
    ok = false;
  }
  if (!ok) unlink(tmp_out);
  if (ok && o->header) ok = rt_write_file_atomic(o->header, h_text, strlen(h_text), d);
  free(full);
  return ok;
}

int cmd_build(int argc, char **argv) {
  BuildOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  Module *m = cli_build_module(&o.c);
  if (!m) return EXIT_USER;
  char *c_text = NULL, *h_text = NULL, out[4096];
  bool ok = cli_emit(m, &o.c, &c_text, &h_text);
  const char *prefix = driver_prefix(m, &o.c);
  if (o.out) snprintf(out, sizeof out, "%s", o.out);
  else snprintf(out, sizeof out, o.object ? "%s.o" : "lib%s.so", prefix);
  Diag d;
  diag_init(&d);
  ok = ok && build(&o, prefix, c_text, h_text, out, &d);
  if (ok) fprintf(stderr, "wrote %s\n", out);
  diag_flush(&d, stderr);
  diag_fini(&d);
  free(c_text);
  free(h_text);
  module_free(m);
  return ok ? EXIT_OK : EXIT_USER;
}
