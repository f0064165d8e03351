#!/usr/bin/env bash
# The README shows the dynamic-batch header as lathe writes it (issue 17): every C block of
# README.md that defines MLP_MAX_N is, line for line and in order, a part of the mlp.h that
# `lathe compile examples/mlp.lathe -D 'N=dynamic(max=64)'` writes; and the Embedding
# section's usage block (a workspace reserved statically for the bound, one call at the rows
# that arrived) builds with gcc -std=c11 -Wall -Wextra -Werror against it and runs at 37 rows.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
# from the source tree, as the README runs it (the plan's source paths are relative)
(cd "$ROOT" &&
  "$LATHE" compile examples/mlp.lathe -D 'N=dynamic(max=64)' -o "$TMP/gen" 2> /dev/null)
/usr/bin/python3 - "$ROOT/README.md" gen/mlp.h <<'PY'
import re, sys
readme, header = open(sys.argv[1]).read(), open(sys.argv[2]).read().splitlines()
blocks = re.findall(r"```c\n(.*?)```", readme, re.S)
shown = [b for b in blocks if "#define MLP_MAX_N" in b]
assert len(shown) >= 2, f"expected the header in two README blocks, found {len(shown)}"
for block in shown:
    at = 0
    for line in block.splitlines():
        try:
            at = header.index(line, at) + 1
        except ValueError:
            sys.exit(f"FAIL: README line not in the generated mlp.h (in order):\n  {line}")
    print(f"ok: a README block of {len(block.splitlines())} lines is mlp.h's, line for line")
usage = [b for b in blocks if "ws[MLP_FORWARD_WORKSPACE_BYTES(MLP_MAX_N)]" in b]
assert len(usage) == 1, usage
open("usage.inc", "w").write(usage[0])
PY
cat > main.c <<'C'
/* the README's Embedding usage block, verbatim (usage.inc), at 37 rows */
#include <math.h>
#include <stdio.h>

#include "mlp.h"

static mlp_params params;
static mlp_state state;
static float x[64 * 784], probs[64 * 10];

int main(void) {
  const int64_t rows = 37;
  mlp_init(&params, &state, 1);
  for (int i = 0; i < 37 * 784; i++) x[i] = (float)(i % 17) / 17.0f;
#include "usage.inc"
  for (int r = 0; r < 37; r++) {
    float sum = 0;
    for (int c = 0; c < 10; c++) sum += probs[r * 10 + c];
    if (fabsf(sum - 1.0f) > 1e-5f) return printf("FAIL: row %d sums to %g\n", r, sum), 1;
  }
  if (probs[37 * 10] != 0.0f) return puts("FAIL: a row past n was written"), 1;
  puts("ok: the README's usage block runs at 37 rows");
  return 0;
}
C
gcc -std=c11 -O1 -Wall -Wextra -Werror -Igen main.c gen/mlp.c -lm -o main
./main
echo "readme_header: ok"
