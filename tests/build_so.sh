#!/usr/bin/env bash
# `lathe build` → a self-describing shared object and a relocatable object; `lathe run LIB.so`
# calls its forward entry through libffi (dlsym of the real symbol), compared with PyTorch's
# fixture outputs; both backends of `lathe run FILE.lathe` (jit, cc) agree; wrong input
# names, dtypes and shapes are clear errors with exit status 1.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
FIX=$ROOT/tests/fixtures/mlp
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

"$LATHE" build "$ROOT/examples/mlp.lathe" -o libmymlp.so --header mlp.h
for sym in lathe_model mlp_info mlp_forward mlp_train mlp_init; do
  grep -q " $sym\$" <<<"$(nm -D libmymlp.so)" || { echo "FAIL: libmymlp.so lacks $sym"; exit 1; }
done
grep -q 'mlp_forward' mlp.h
echo "ok: libmymlp.so exports its descriptor, lathe_model and the entry points"

# the model name comes from lathe_model(), not the file name
"$LATHE" run libmymlp.so --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" --out so
/usr/bin/python3 "$ROOT/tests/compare_npy.py" so/probs.npy "$FIX/probs.npy" 1e-5

for backend in jit cc; do
  "$LATHE" run --backend $backend "$ROOT/examples/mlp.lathe" \
    --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" --out $backend
  /usr/bin/python3 "$ROOT/tests/compare_npy.py" $backend/probs.npy "$FIX/probs.npy" 1e-5
done
# the three ways to run a model agree with each other to 1e-6: the standalone C built into a
# shared object (called through libffi), the JIT, and cc + dlopen
/usr/bin/python3 "$ROOT/tests/compare_npy.py" jit/probs.npy so/probs.npy 1e-6
/usr/bin/python3 "$ROOT/tests/compare_npy.py" cc/probs.npy so/probs.npy 1e-6

# errors: exit 1 and a message naming the problem
expect_error() { # pattern command...
  local pattern=$1
  shift
  set +e
  "$@" >out.txt 2>err.txt
  local rc=$?
  set -e
  if [[ $rc -ne 1 ]] || ! grep -q -- "$pattern" err.txt; then
    echo "FAIL: '$*' gave status $rc, expected 1 and '$pattern':"
    cat err.txt
    exit 1
  fi
  echo "ok: $pattern"
}
/usr/bin/python3 -c "
import numpy as np
np.save('x_f64.npy', np.zeros((64, 784), np.float64))
np.save('x_shape.npy', np.zeros((32, 784), np.float32))"
expect_error "has no input 'y'" "$LATHE" run libmymlp.so --input y="$FIX/x.npy"
expect_error "is f64\[64, 784\], but the model expects f32\[64, 784\]" \
  "$LATHE" run libmymlp.so --input x=x_f64.npy
expect_error "is f32\[32, 784\], but the model expects f32\[64, 784\]" \
  "$LATHE" run libmymlp.so --input x=x_shape.npy
expect_error "missing input 'x'" "$LATHE" run libmymlp.so
expect_error "cannot load 'nosuch.so'" "$LATHE" run nosuch.so --input x="$FIX/x.npy"
set +e
"$LATHE" run --backend gpu "$ROOT/examples/mlp.lathe" 2>err.txt
rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q "expects jit, cc or auto" err.txt || { echo "FAIL: --backend gpu"; exit 1; }

# a failing build leaves no partial output
printf 'model broken(x: f32[2]) { output y = nosuch(x) }\n' > broken.lathe
expect_error "error" "$LATHE" build broken.lathe -o libbroken.so
[[ ! -e libbroken.so ]] && ! ls libbroken.so.tmp* >/dev/null 2>&1

# a relocatable object, linked into a C program that calls the model by its symbols
"$LATHE" build "$ROOT/examples/mlp.lathe" --emit obj -o mlp.o
cat > main.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "mlp.h"
const lathe_model_info *lathe_model(void);
int main(void) {
  static mlp_params p;
  static mlp_state s;
  static float x[64 * 784], probs[64 * 10];
  void *ws = aligned_alloc(64, MLP_FORWARD_WORKSPACE_BYTES + 64);
  mlp_init(&p, &s, 1);
  mlp_forward(&p, x, probs, ws);
  float sum = 0;
  for (int k = 0; k < 10; k++) sum += probs[k];
  printf("%s %.4f\n", lathe_model()->name, sum);
  free(ws);
  return 0;
}
C
if grep -q MLP_FORWARD_WORKSPACE_BYTES mlp.h; then :; else
  sed -i 's/MLP_FORWARD_WORKSPACE_BYTES/MLP_WORKSPACE_BYTES/' main.c
fi
cc -std=c11 -I. main.c mlp.o -lm -o main
grep -q '^mlp 1.0000$' <<<"$(./main)" || { echo "FAIL: mlp.o program printed: $(./main)"; exit 1; }
echo "ok: mlp.o links into a C program"
