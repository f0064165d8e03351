/* runtime/loader.c — build generated C into a shared object and load its descriptor.
 *
 * rt_build_shared runs `${CC:-cc} -std=c99 -O3 -shared -fPIC <extra flags> -o SO C -lm`
 * with posix_spawnp (no shell: $CC and the extra flags are split on blanks, never
 * interpreted), captures the compiler's stdout and stderr through a pipe, and on failure puts
 * that output into the Diag. rt_model_open dlopens with RTLD_NOW | RTLD_LOCAL (so unresolved
 * symbols fail here, and two models never clash) and checks the `<prefix>_info` descriptor's
 * version and, through its cpu_supported(), that this CPU runs the code (rt_model_check_cpu:
 * a clear error instead of an illegal instruction in the first call). rt_model_open_source
 * owns a mkdtemp directory ($TMPDIR or /tmp) holding
 * <prefix>.c, <prefix>.h and <prefix>.so; rt_model_close removes it. The prefix is the one of
 * the generated C's symbols (--prefix, by default the model's name; lathe_model_info.name).
 *
 * Invariants: an RtModel is either all zero (closed) or has a live handle and info; symbol
 * prefixes are C identifiers, so they are safe in file names and symbol names.
 */
#include "rt_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { RT_MAX_ARGS = 256, RT_MAX_COMPILER_OUTPUT = 16384 };

/* ---- argv building ----------------------------------------------------------------------- */

typedef struct ArgList {
  char *argv[RT_MAX_ARGS + 1]; /* NULL-terminated; entries point into owned buffers */
  int n;
  char *bufs[2]; /* owned copies of $CC and the extra flags */
} ArgList;

static bool args_push(ArgList *a, char *s) {
  if (a->n >= RT_MAX_ARGS) return false;
  a->argv[a->n++] = s;
  a->argv[a->n] = NULL;
  return true;
}

/* Splits a copy of text on blanks and appends the words. */
static bool args_split(ArgList *a, int slot, const char *text) {
  size_t len = strlen(text) + 1;
  char *copy = malloc(len);
  if (!copy) return false;
  memcpy(copy, text, len);
  a->bufs[slot] = copy;
  for (char *p = copy; *p;) {
    while (*p && isspace((unsigned char)*p))
      *p++ = '\0';
    if (!*p) break;
    if (!args_push(a, p)) return false;
    while (*p && !isspace((unsigned char)*p))
      p++;
  }
  return true;
}

static bool args_build(ArgList *a, const char *c_path, const char *so_path, const char *extra) {
  memset(a, 0, sizeof *a);
  const char *cc = getenv("CC");
  if (!cc || !*cc) cc = "cc";
  static char std[] = "-std=c99", opt[] = "-O3", shared[] = "-shared", pic[] = "-fPIC",
              out[] = "-o", libm[] = "-lm";
  bool ok = args_split(a, 0, cc) && a->n > 0 && args_push(a, std) && args_push(a, opt) &&
            args_push(a, shared) && args_push(a, pic);
  ok = ok && args_split(a, 1, extra ? extra : "");
  ok = ok && args_push(a, out) && args_push(a, (char *)so_path) && args_push(a, (char *)c_path) &&
       args_push(a, libm);
  return ok;
}

static void args_free(ArgList *a) {
  free(a->bufs[0]);
  free(a->bufs[1]);
}

/* ---- running the compiler ---------------------------------------------------------------- */

/* Reads the pipe to EOF, keeping the first RT_MAX_COMPILER_OUTPUT bytes (NUL-terminated). */
static char *drain(int fd) {
  char *buf = malloc(RT_MAX_COMPILER_OUTPUT + 1);
  size_t n = 0;
  char scratch[4096];
  for (;;) {
    ssize_t r = read(fd, scratch, sizeof scratch);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    size_t keep = (size_t)r;
    if (n + keep > RT_MAX_COMPILER_OUTPUT) keep = RT_MAX_COMPILER_OUTPUT - n;
    if (buf) memcpy(buf + n, scratch, keep);
    n += keep;
  }
  if (buf) buf[n] = '\0';
  return buf;
}

/* Spawns argv with stdout+stderr into a pipe; returns the exit status (-1: not run). */
static int run_captured(char **argv, char **output, int *spawn_errno) {
  *output = NULL;
  *spawn_errno = 0;
  int fds[2];
  if (pipe(fds) != 0) {
    *spawn_errno = errno;
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    *spawn_errno = rc;
    return -1;
  }
  *output = drain(fds[0]);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

bool rt_build_shared(const char *c_path, const char *so_path, const char *extra_flags, Diag *d) {
  ArgList a;
  if (!args_build(&a, c_path, so_path, extra_flags)) {
    args_free(&a);
    rt_error(d, "cannot build '%s': bad compiler command ($CC or flags empty or too long)", c_path);
    return false;
  }
  char *output = NULL;
  int err = 0;
  int status = run_captured(a.argv, &output, &err);
  if (status < 0) {
    rt_error(d, "cannot run the C compiler '%s': %s (set $CC to a C compiler)", a.argv[0],
             strerror(err ? err : ECHILD));
  } else if (status != 0) {
    rt_error(d, "the C compiler '%s' failed on '%s' (exit status %d):\n%s", a.argv[0], c_path,
             status, output && *output ? output : "(no output)\n");
  }
  free(output);
  args_free(&a);
  return status == 0;
}

/* ---- loading ----------------------------------------------------------------------------- */

static bool is_identifier(const char *s) {
  if (!s || !(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_') return false;
  return true;
}

bool rt_model_check_cpu(const lathe_model_info *info, const char *where, Diag *d) {
  if (!info->cpu_supported || info->cpu_supported()) return true;
  rt_error(d,
           "%s: model '%s' was compiled for %s, and this CPU lacks the instructions its kernels "
           "use (an entry point would stop on an illegal instruction); compile it again with "
           "--target native or --target generic",
           where, info->name ? info->name : "?", info->target ? info->target : "another CPU");
  return false;
}

static bool check_info(const lathe_model_info *info, const char *so_path, const char *sym,
                       Diag *d) {
  if (info->version != LATHE_MODEL_INFO_VERSION) {
    rt_error(d,
             "%s: '%s' has descriptor version %d but this lathe reads version %d; "
             "recompile the model",
             so_path, sym, info->version, LATHE_MODEL_INFO_VERSION);
    return false;
  }
  if (!rt_model_check_cpu(info, so_path, d)) return false;
  if (info->n_entries < 0 || info->n_params < 0 || info->n_states < 0 ||
      (info->n_entries > 0 && !info->entries) || (info->n_params > 0 && !info->params) ||
      (info->n_states > 0 && !info->states)) {
    rt_error(d, "%s: '%s' is not a valid model descriptor", so_path, sym);
    return false;
  }
  return true;
}

bool rt_model_open(RtModel *m, const char *so_path, const char *prefix, Diag *d) {
  memset(m, 0, sizeof *m);
  if (!is_identifier(prefix)) {
    rt_error(d, "invalid symbol prefix '%s': expected a C identifier", prefix);
    return false;
  }
  /* a path without '/' would make dlopen search the library path instead */
  char *path = malloc(strlen(so_path) + 3);
  if (!path) {
    rt_error(d, "cannot load '%s': out of memory", so_path);
    return false;
  }
  sprintf(path, "%s%s", strchr(so_path, '/') ? "" : "./", so_path);
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  free(path);
  if (!h) {
    rt_error(d, "cannot load '%s': %s", so_path, dlerror());
    return false;
  }
  /* A model built with -fopenmp (--threads) pulls in libgomp, whose idle threads outlive the
   * calls: unloading libgomp with the model would pull their code from under them. Pin it. */
  if (dlsym(h, "GOMP_parallel")) dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  char sym[300];
  snprintf(sym, sizeof sym, "%s_info", prefix);
  dlerror();
  const lathe_model_info *info = dlsym(h, sym);
  if (!info) {
    rt_error(d, "%s: no symbol '%s' (is it a lathe model with the symbol prefix '%s'?)", so_path,
             sym, prefix);
  }
  if (!info || !check_info(info, so_path, sym, d)) {
    dlclose(h);
    return false;
  }
  m->handle = h;
  m->info = info;
  return true;
}

/* Removes every file in dir (only ours: we created it) and dir itself. */
static void remove_dir(const char *dir) {
  DIR *dd = opendir(dir);
  if (dd) {
    struct dirent *e;
    char path[4096];
    while ((e = readdir(dd)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(dd);
  }
  rmdir(dir);
}

static char *make_temp_dir(Diag *d) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  size_t len = strlen(tmp) + 32;
  char *dir = malloc(len);
  if (!dir) {
    rt_error(d, "cannot create a build directory: out of memory");
    return NULL;
  }
  snprintf(dir, len, "%s/lathe-XXXXXX", tmp);
  if (!mkdtemp(dir)) {
    rt_error(d, "cannot create a build directory under '%s': %s", tmp, strerror(errno));
    free(dir);
    return NULL;
  }
  return dir;
}

bool rt_source_threaded(const char *c_text) {
  return strstr(c_text, "#define LATHE_OMP_FOR _Pragma") != NULL;
}

bool rt_model_open_source(RtModel *m, const char *prefix, const char *c_text, const char *h_text,
                          Diag *d) {
  memset(m, 0, sizeof *m);
  if (!is_identifier(prefix) || strlen(prefix) > 200) {
    rt_error(d, "invalid symbol prefix '%s': expected a C identifier", prefix);
    return false;
  }
  char *dir = make_temp_dir(d);
  if (!dir) return false;
  size_t len = strlen(dir) + strlen(prefix) + 8;
  char *c_path = malloc(len), *h_path = malloc(len), *so_path = malloc(len);
  bool ok = c_path && h_path && so_path;
  if (!ok) rt_error(d, "cannot build model '%s': out of memory", prefix);
  if (ok) {
    snprintf(c_path, len, "%s/%s.c", dir, prefix);
    snprintf(h_path, len, "%s/%s.h", dir, prefix);
    snprintf(so_path, len, "%s/%s.so", dir, prefix);
    ok = rt_write_file_atomic(h_path, h_text, strlen(h_text), d) &&
         rt_write_file_atomic(c_path, c_text, strlen(c_text), d) &&
         /* built for and run on this machine: tune for its CPU; the generated code never reads
          * errno, and without it sqrtf vectorizes (the Adam update) */
         rt_build_shared(c_path, so_path,
                         rt_source_threaded(c_text) ? "-march=native -fno-math-errno -fopenmp"
                                                    : "-march=native -fno-math-errno",
                         d) &&
         rt_model_open(m, so_path, prefix, d);
  }
  free(c_path);
  free(h_path);
  free(so_path);
  if (!ok) {
    remove_dir(dir);
    free(dir);
    return false;
  }
  m->dir = dir;
  return true;
}

void rt_model_close(RtModel *m) {
  if (m->handle) dlclose(m->handle);
  if (m->dir) {
    remove_dir(m->dir);
    free(m->dir);
  }
  memset(m, 0, sizeof *m);
}

const lathe_entry_info *rt_model_entry(const RtModel *m, const char *name) {
  if (!m->info) return NULL;
  for (int i = 0; i < m->info->n_entries; i++) {
    const lathe_entry_info *e = &m->info->entries[i];
    if (e->name && strcmp(e->name, name) == 0) return e;
  }
  return NULL;
}
