/* ir/sched.c — the names of a kernel schedule's choices (IrSched, ir.h): how they are printed
 * by ir/attr.c and read back. The schedule itself is decided by passes/schedule.c. */
#include "ir.h"

#include <string.h>

static const char *const gemm_names[IR_SCHED_GEMM_COUNT] = {NULL, "packed", "direct"};
static const char *const from_names[IR_SCHED_FROM_COUNT] = {NULL, "model", "tuned"};

static bool parse_name(const char *const *names, int count, const char *name, int *out) {
  for (int i = 1; i < count; i++)
    if (strcmp(name, names[i]) == 0) return *out = i, true;
  return false;
}

const char *ir_sched_gemm_name(IrSchedGemm g) {
  return g >= 0 && g < IR_SCHED_GEMM_COUNT ? gemm_names[g] : NULL;
}

bool ir_sched_gemm_parse(const char *name, IrSchedGemm *out) {
  int v;
  if (!parse_name(gemm_names, IR_SCHED_GEMM_COUNT, name, &v)) return false;
  *out = (IrSchedGemm)v;
  return true;
}

const char *ir_sched_from_name(IrSchedFrom f) {
  return f >= 0 && f < IR_SCHED_FROM_COUNT ? from_names[f] : NULL;
}

bool ir_sched_from_parse(const char *name, IrSchedFrom *out) {
  int v;
  if (!parse_name(from_names, IR_SCHED_FROM_COUNT, name, &v)) return false;
  *out = (IrSchedFrom)v;
  return true;
}
