/* driver/tune.c — this CPU's description and the tune cache (driver/tune.h, docs/tuning.md).
 *
 * An entry is three lines of text:
 *   lathe tune entry 1
 *   key <the key, exactly as passes_sched_key writes it>
 *   choice gemm=<none|packed|direct> kc=<n> mc=<n> nc=<n> algo=<none|naive|gemm|direct|winograd>
 *   median_us <the winner's measured median>       (informative, not read)
 * Its file name is the FNV-1a hash of the key in hex; reading checks the whole key, so a
 * collision, an entry of another CPU or version, or a truncated file reads as missing.
 */
#include "tune.h"

#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char entry_magic[] = "lathe tune entry 1";

/* ---- the CPU --------------------------------------------------------------------------------- */

/* "32K", "512K", "32768K", "1M" -> bytes; 0 when unreadable */
static int64_t parse_size(const char *s) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (end == s || v <= 0) return 0;
  if (*end == 'K') return v << 10;
  if (*end == 'M') return v << 20;
  return v;
}

/* the first line of a small file into buf (newline stripped); false when unreadable */
static bool read_line(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  if (!f) return false;
  bool ok = fgets(buf, (int)size, f) != NULL;
  fclose(f);
  if (ok) buf[strcspn(buf, "\n")] = 0;
  return ok;
}

/* cpu0's data and unified caches by level, from sysfs */
static void read_caches(SchedCpu *cpu) {
  for (int i = 0; i < 8; i++) {
    char path[128], level[16], type[32], size[32];
    const char *base = "/sys/devices/system/cpu/cpu0/cache/index";
    snprintf(path, sizeof path, "%s%d/level", base, i);
    if (!read_line(path, level, sizeof level)) break;
    snprintf(path, sizeof path, "%s%d/type", base, i);
    if (!read_line(path, type, sizeof type) || strcmp(type, "Instruction") == 0) continue;
    snprintf(path, sizeof path, "%s%d/size", base, i);
    if (!read_line(path, size, sizeof size)) continue;
    int64_t bytes = parse_size(size);
    if (level[0] == '1') cpu->l1d = bytes;
    if (level[0] == '2') cpu->l2 = bytes;
    if (level[0] == '3') cpu->l3 = bytes;
  }
}

void driver_tune_cpu(SchedCpu *cpu, char *model, size_t size) {
  memset(cpu, 0, sizeof *cpu);
  snprintf(model, size, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (strncmp(line, "model name", 10) != 0 || !colon) continue;
    colon += 1 + strspn(colon + 1, " \t");
    colon[strcspn(colon, "\n")] = 0;
    snprintf(model, size, "%s", colon);
    break;
  }
  if (f) fclose(f);
  cpu->model = model;
  read_caches(cpu);
}

/* ---- the cache ------------------------------------------------------------------------------- */

static bool env_on(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

bool driver_tune_dir(char *buf, size_t size) {
  if (env_on("LATHE_NO_TUNE_CACHE") || env_on("LATHE_NO_CACHE")) return false;
  const char *env = getenv("LATHE_CACHE_DIR");
  int len;
  if (env && *env)
    len = snprintf(buf, size, "%s/tune", env);
  else if ((env = getenv("XDG_CACHE_HOME")) && env[0] == '/')
    len = snprintf(buf, size, "%s/lathe/tune", env);
  else if ((env = getenv("HOME")) && *env)
    len = snprintf(buf, size, "%s/.cache/lathe/tune", env);
  else
    return false;
  return len > 0 && (size_t)len < size;
}

void driver_tune_path(const char *dir, const char *key, char *buf, size_t size) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const char *p = key; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ULL;
  snprintf(buf, size, "%s/%016llx.tune", dir, (unsigned long long)h);
}

void driver_tune_init(DriverTune *t, CgTarget target, bool no_cache, const char *override_key,
                      SchedChoice override) {
  memset(t, 0, sizeof *t);
  CgOptions co;
  cg_options_init(&co);
  co.target = target;
  cg_sched_target(&co, &t->config);
  driver_tune_cpu(&t->config.cpu, t->model, sizeof t->model);
  if (no_cache || !driver_tune_dir(t->dir, sizeof t->dir)) t->dir[0] = 0;
  t->override_key = override_key;
  t->override = override;
  t->config.lookup = driver_tune_lookup;
  t->config.lookup_ctx = t;
}

bool driver_tune_lookup(void *ctx, const char *key, SchedChoice *out) {
  const DriverTune *t = ctx;
  if (t->override_key && strcmp(t->override_key, key) == 0) {
    *out = t->override;
    return true;
  }
  return t->dir[0] && driver_tune_read(t->dir, key, out);
}

/* "gemm=direct kc=256 mc=96 nc=256 algo=none" -> *out; false unless all five are well formed */
static bool parse_choice(const char *s, SchedChoice *out) {
  char gemm[16], algo[16];
  int kc, mc, nc, used = 0;
  if (sscanf(s, "gemm=%15[a-z] kc=%d mc=%d nc=%d algo=%15[a-z]%n", gemm, &kc, &mc, &nc, algo,
             &used) != 5 ||
      s[used] != 0)
    return false;
  IrSchedGemm g = IR_SCHED_GEMM_UNSET;
  IrConvAlgo a = IR_CONV_ALGO_UNSET;
  if (strcmp(gemm, "none") != 0 && !ir_sched_gemm_parse(gemm, &g)) return false;
  if (strcmp(algo, "none") != 0 && !ir_conv_algo_parse(algo, &a)) return false;
  *out = (SchedChoice){.gemm = g, .kc = kc, .mc = mc, .nc = nc, .algo = a};
  return true;
}

bool driver_tune_read(const char *dir, const char *key, SchedChoice *out) {
  char path[DRIVER_TUNE_PATH_MAX + 64];
  driver_tune_path(dir, key, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  char line[1024];
  bool ok = fgets(line, sizeof line, f) && strcmp(line, "lathe tune entry 1\n") == 0 &&
            fgets(line, sizeof line, f) && strncmp(line, "key ", 4) == 0 &&
            strlen(line) == strlen(key) + 5 && strncmp(line + 4, key, strlen(key)) == 0 &&
            line[4 + strlen(key)] == '\n' && fgets(line, sizeof line, f) &&
            strncmp(line, "choice ", 7) == 0 && strchr(line, '\n');
  fclose(f);
  if (!ok) return false;
  line[strcspn(line, "\n")] = 0;
  return parse_choice(line + 7, out);
}

/* mkdir -p dir; false with an error in d */
static bool make_dirs(const char *dir, Diag *d) {
  char path[DRIVER_TUNE_PATH_MAX];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1;; p++) {
    bool end = *p == 0;
    if (*p != '/' && !end) continue;
    *p = 0;
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
      diag_error(d, (SrcLoc){0}, "cannot create the tune cache directory %s: %s", path,
                 strerror(errno));
      return false;
    }
    if (end) return true;
    *p = '/';
  }
}

bool driver_tune_write(const char *dir, const char *key, const SchedChoice *c, double median_us,
                       Diag *d) {
  if (!make_dirs(dir, d)) return false;
  const char *gemm = ir_sched_gemm_name((IrSchedGemm)c->gemm);
  const char *algo = ir_conv_algo_name((IrConvAlgo)c->algo);
  char text[2048], path[DRIVER_TUNE_PATH_MAX + 64];
  int len = snprintf(
      text, sizeof text, "%s\nkey %s\nchoice gemm=%s kc=%d mc=%d nc=%d algo=%s\nmedian_us %.3f\n",
      entry_magic, key, gemm ? gemm : "none", c->kc, c->mc, c->nc, algo ? algo : "none", median_us);
  if (len <= 0 || (size_t)len >= sizeof text) {
    diag_error(d, (SrcLoc){0}, "tune cache key too long: %s", key);
    return false;
  }
  driver_tune_path(dir, key, path, sizeof path);
  return rt_write_file_atomic(path, text, (size_t)len, d);
}
