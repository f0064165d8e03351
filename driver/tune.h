/* driver/tune.h — the machine side of kernel schedules (docs/tuning.md): the CPU description
 * the cost model of passes/schedule.c starts from, and the tune cache that `lathe tune`
 * writes and every compile reads.
 *
 * The cache: one small text file per kernel choice under $LATHE_CACHE_DIR/tune, else
 * $XDG_CACHE_HOME/lathe/tune, else ~/.cache/lathe/tune, named by a hash of its key and holding
 * the key itself (passes_sched_key: the tuning version, the CPU model, the target, the op and
 * its shapes), so an entry of another CPU, target or version, a hash collision, or a damaged
 * file is never used. Entries are written atomically (temp file, fsync, rename). Off with
 * LATHE_NO_TUNE_CACHE=1 (or LATHE_NO_CACHE=1, which turns off the JIT's cache too), and per
 * compile with DriverOptions.no_tune_cache (--no-tune-cache).
 */
#ifndef LATHE_DRIVER_TUNE_H
#define LATHE_DRIVER_TUNE_H

#include "codegen/codegen.h"
#include "passes/passes.h"

enum { DRIVER_TUNE_MODEL_MAX = 128, DRIVER_TUNE_PATH_MAX = 4096 };

/* Everything pass_schedule needs for one compile; lives while the passes run. */
typedef struct DriverTune {
  SchedConfig config;                /* handed to the passes (PassCtx.sched) */
  char model[DRIVER_TUNE_MODEL_MAX]; /* the CPU model string config.cpu.model points at */
  char dir[DRIVER_TUNE_PATH_MAX];    /* the cache directory; "" when the cache is off */
  const char *override_key;          /* lathe tune: this key's choice is override, whatever */
  SchedChoice override;              /*   the cache says (a candidate being timed) */
} DriverTune;

/* This CPU: its model name (/proc/cpuinfo "model name", else "unknown") into model and the
 * data cache sizes of cpu0 (/sys/devices/system/cpu/cpu0/cache; 0 where unknown). */
void driver_tune_cpu(SchedCpu *cpu, char *model, size_t size);
/* The cache directory into buf; false when the cache is off (the environment) or has no home */
bool driver_tune_dir(char *buf, size_t size);
/* Fills t: the target's kernels (codegen), this CPU, the cache (unless no_cache: the
 * DriverOptions.no_tune_cache of a compile), and override for the kernel override_key
 * (DriverOptions.tune_key, tune_choice; NULL: none). t must stay where it is while t->config
 * is in use (config points into it). The driver's own header is not included here: driver.c
 * includes this one. */
void driver_tune_init(DriverTune *t, CgTarget target, bool no_cache, const char *override_key,
                      SchedChoice override);
/* SchedConfig.lookup: the override, else the valid cache entry for key (ctx: a DriverTune) */
bool driver_tune_lookup(void *ctx, const char *key, SchedChoice *out);
/* Reads the entry for key from directory dir; false when missing, foreign or damaged. */
bool driver_tune_read(const char *dir, const char *key, SchedChoice *out);
/* Writes the entry for key (the choice and its measured median, microseconds) into dir,
 * creating it (and its parents) as needed; atomically. False with an error in d. */
bool driver_tune_write(const char *dir, const char *key, const SchedChoice *c, double median_us,
                       Diag *d);
/* The file name of key's entry in dir into buf */
void driver_tune_path(const char *dir, const char *key, char *buf, size_t size);

#endif
