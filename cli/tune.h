/* cli/tune.h — `lathe tune` (cli/cmd_tune.c) and its micro-programs (cli/tune_kernel.c). */
#ifndef LATHE_CLI_TUNE_H
#define LATHE_CLI_TUNE_H

#include "cli.h"
#include "driver/load.h"
#include "driver/tune.h"

enum { TUNE_KEY_MAX = 640, TUNE_MAX_ARGS = 16, TUNE_MAX_SAMPLES = 31 };

/* The micro-program of node id of g (a matmul or a forward convolution) into buf; false for
 * an op that has none (the backward convolutions). */
bool tune_kernel_source(const Graph *g, NodeId id, char *buf, size_t size);
/* Builds source with base's target and options, the kernel keyed key forced to choice, and
 * loads it into l (closed by the caller); checks that the schedule reached the kernel. */
bool tune_kernel_build(const DriverOptions *base, const char *source, const char *key,
                       const SchedChoice *choice, DriverLoaded *l, Diag *d);
/* Times l's forward entry: the median of samples (thread CPU time, microseconds per call),
 * and a malloc'd copy of its output (n_result floats) to compare candidates by. */
bool tune_kernel_time(const DriverLoaded *l, int samples, double *median_us, float **result,
                      size_t *n_result, Diag *d);
/* whether got equals ref within float rounding of a re-ordered sum (1e-3 of the largest |ref|) */
bool tune_kernel_agrees(const float *ref, const float *got, size_t n);

#endif
