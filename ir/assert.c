/* ir/assert.c — the reporter behind IR_ASSERT: internal invariant failures.
 *
 * The one place in the library allowed to print and abort: an internal invariant was
 * violated (a compiler bug), which no user input may reach.
 */
#include <stdio.h>
#include <stdlib.h>

#include "diag.h"

void ir_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "internal error: %s:%d: %s\n", file, line, expr);
  fflush(stderr);
  abort();
}
