#!/usr/bin/env bash
# --prefix NAME: one model compiled twice (-D N=1 --prefix mlp1, -D N=64 --prefix mlp64) links
# into ONE C program, with gcc and with clang at -Wall -Wextra -Werror, and both forwards agree
# on the same rows; every exported symbol carries its prefix (nm; also for every example model
# and a baked one); without --prefix the same link fails (the problem the option solves). A
# prefixed `lathe build` .so runs in `lathe run` (found through lathe_model() and, without
# it, through the file name), prefixed objects of
# `build --emit obj` link together, `lathe run --prefix` loads through the JIT and cc, and a
# bad prefix is a usage error (exit 2) that writes nothing.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
MODEL=$ROOT/examples/mlp.lathe
FIX=$ROOT/tests/fixtures/mlp
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

"$LATHE" compile "$MODEL" -D N=1 --prefix mlp1 -o gen
"$LATHE" compile "$MODEL" -D N=64 --prefix mlp64 -o gen
[[ -f gen/mlp1.c && -f gen/mlp1.h && -f gen/mlp64.c && -f gen/mlp64.h && ! -e gen/mlp.c ]] ||
  { echo "FAIL: compile --prefix did not write gen/<prefix>.c and .h"; ls gen; exit 1; }
# no name of the default prefix is left (the model file's name in comments is mlp.lathe)
if grep -nE '\bmlp_|\bMLP_' gen/mlp1.c gen/mlp1.h | grep -v '"mlp_forward"'; then
  echo "FAIL: an mlp_/MLP_ name is left in the mlp1 output"
  exit 1
fi

cat > main.c <<'C'
/* both builds of mlp in one program: same params, the same 64 rows through both forwards */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp1.h"
#include "mlp64.h"

typedef char same_params_[sizeof(mlp1_params) == sizeof(mlp64_params) ? 1 : -1];

static mlp1_params p1;
static mlp1_state s1;
static mlp64_params p64;
static mlp64_state s64;
static float x[64 * 784], probs64[64 * 10], probs1[10];

static void *workspace(size_t bytes) { /* aligned_alloc wants a multiple of the alignment */
  return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
}

int main(void) {
  mlp1_init(&p1, &s1, 7);
  mlp64_init(&p64, &s64, 7);
  if (memcmp(&p1, &p64, sizeof p1) != 0) return puts("FAIL: the two inits differ"), 1;
  if (!mlp1_cpu_supported() || !mlp64_cpu_supported()) return puts("FAIL: cpu_supported"), 1;
  if (strcmp(mlp1_info.name, "mlp1") || strcmp(mlp64_info.name, "mlp64") ||
      strcmp(mlp1_info.entries[0].symbol, "mlp1_forward"))
    return puts("FAIL: descriptor names"), 1;
  for (int i = 0; i < 64 * 784; i++) x[i] = (float)((i * 7) % 23) / 22.0f - 0.5f;
  void *ws1 = workspace(MLP1_FORWARD_WORKSPACE_BYTES);
  void *ws64 = workspace(MLP64_FORWARD_WORKSPACE_BYTES);
  mlp64_forward(&p64, x, probs64, ws64);
  double max_err = 0;
  for (int r = 0; r < 64; r++) {
    mlp1_forward(&p1, x + r * 784, probs1, ws1);
    for (int k = 0; k < 10; k++) {
      double e = fabs((double)probs1[k] - (double)probs64[r * 10 + k]);
      if (!(e <= max_err)) max_err = e; /* a NaN fails below */
    }
  }
  free(ws1);
  free(ws64);
  printf("mlp1 and mlp64 in one program: 64 rows, max |difference| %.3g\n", max_err);
  return max_err < 1e-5 ? 0 : 1;
}
C
# every exported (global, defined) symbol of an object starts with its prefix
check_exports() { # object prefix
  local bad
  bad=$(nm -g --defined-only "$1" | awk '{print $3}' | grep -v "^$2_" || true)
  [[ -z $bad ]] || { echo "FAIL: $1 exports names without the prefix $2_: $bad"; exit 1; }
}
for cc in gcc clang; do
  for p in mlp1 mlp64; do
    $cc -std=c99 -O2 -Wall -Wextra -Werror -c gen/$p.c -o $p.$cc.o
    check_exports $p.$cc.o $p
  done
  $cc -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror -Igen main.c mlp1.$cc.o mlp64.$cc.o -lm \
    -o main.$cc
  ./main.$cc
  echo "ok: $cc links mlp1 and mlp64 into one program; both export only <prefix>_ names"
done

# every example model, and a baked one: nothing exported without the prefix
for model in "$ROOT"/examples/*.lathe; do
  name=$(basename "$model" .lathe)
  "$LATHE" compile "$model" --prefix p_$name -o all 2>/dev/null
  cc -std=c99 -O0 -c all/p_$name.c -o p_$name.o
  check_exports p_$name.o p_$name
done
"$LATHE" compile "$MODEL" --weights "$FIX/weights.safetensors" --bake --prefix baked -o all
cc -std=c99 -O0 -c all/baked.c -o baked.o
check_exports baked.o baked
echo "ok: every example model (and a baked mlp) exports only <prefix>_ names"

# the same two builds without --prefix do not link: the test above would catch a lost prefix
"$LATHE" compile "$MODEL" -D N=1 -o plain1
"$LATHE" compile "$MODEL" -D N=64 -o plain64
printf 'int main(void) { return 0; }\n' > empty.c
cc -std=c99 -c plain1/mlp.c -o plain1.o
cc -std=c99 -c plain64/mlp.c -o plain64.o
if cc empty.c plain1.o plain64.o -lm -o clash 2>clash.txt; then
  echo "FAIL: two unprefixed builds linked"
  exit 1
fi
grep -q "multiple definition of .mlp_forward" clash.txt ||
  { echo "FAIL: unexpected link error:"; cat clash.txt; exit 1; }
echo "ok: without --prefix the two builds clash (multiple definition of mlp_forward)"

# lathe build --prefix: default output lib<prefix>.so, found by `lathe run` through lathe_model()
"$LATHE" build "$MODEL" -D N=64 --prefix mlp64
for sym in lathe_model mlp64_info mlp64_forward mlp64_train mlp64_init mlp64_cpu_supported; do
  grep -q " $sym\$" <<<"$(nm -D libmlp64.so)" || { echo "FAIL: libmlp64.so lacks $sym"; exit 1; }
done
"$LATHE" run libmlp64.so --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" --out so
/usr/bin/python3 "$ROOT/tests/compare_npy.py" so/probs.npy "$FIX/probs.npy" 1e-5
# a .so without lathe_model(): the loader takes the prefix from the file name
cc -std=c99 -O2 -shared -fPIC gen/mlp64.c -o libmlp64.so -lm
if grep -q " lathe_model\$" <<<"$(nm -D libmlp64.so)"; then
  echo "FAIL: the plain .so has lathe_model"
  exit 1
fi
"$LATHE" run libmlp64.so --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" --out byname
/usr/bin/python3 "$ROOT/tests/compare_npy.py" byname/probs.npy "$FIX/probs.npy" 1e-5
echo "ok: lathe run loads a --prefix .so through lathe_model() and through its file name"

# build --emit obj of two prefixes: one program (lathe_model is weak)
"$LATHE" build "$MODEL" -D N=1 --prefix mlp1 --emit obj
"$LATHE" build "$MODEL" -D N=64 --prefix mlp64 --emit obj
[[ -f mlp1.o && -f mlp64.o ]] || { echo "FAIL: build --emit obj did not write <prefix>.o"; exit 1; }
cat > objs.c <<'C'
#include <stdio.h>
#include "mlp1.h"
#include "mlp64.h"
const lathe_model_info *lathe_model(void);
int main(void) {
  const char *first = lathe_model()->name;
  printf("%s %s %s\n", mlp1_info.name, mlp64_info.name, first);
  return lathe_model() == &mlp1_info || lathe_model() == &mlp64_info ? 0 : 1;
}
C
cc -std=c11 -Wall -Wextra -Werror -Igen objs.c mlp1.o mlp64.o -lm -o objs
[[ $(./objs | cut -d' ' -f1,2) == "mlp1 mlp64" ]] ||
  { echo "FAIL: objs printed $(./objs)"; exit 1; }
echo "ok: build --emit obj objects of two prefixes link into one program"

# lathe run --prefix compiles and finds <prefix>_info under the JIT and cc
for backend in jit cc; do
  "$LATHE" run --backend $backend --prefix served_$backend "$MODEL" \
    --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" --out run_$backend
  /usr/bin/python3 "$ROOT/tests/compare_npy.py" run_$backend/probs.npy "$FIX/probs.npy" 1e-5
done
echo "ok: lathe run --prefix loads through the JIT and cc"

# a bad prefix: usage error (exit 2) naming the rule, and no output
expect_usage() { # pattern args...
  local pattern=$1
  shift
  set +e
  "$LATHE" "$@" >out.txt 2>err.txt
  local rc=$?
  set -e
  if [[ $rc -ne 2 ]] || ! grep -q -- "$pattern" err.txt; then
    echo "FAIL: 'lathe $*' gave status $rc, expected 2 and '$pattern':"
    cat err.txt
    exit 1
  fi
}
long=$(printf 'a%.0s' {1..101})
for cmd in compile build; do
  expect_usage "'1abc': it is not a C identifier" $cmd "$MODEL" --prefix 1abc -o bad
  expect_usage "'a-b': it is not a C identifier" $cmd "$MODEL" --prefix a-b -o bad
  expect_usage "invalid --prefix 'int': it is a C keyword" $cmd "$MODEL" --prefix int -o bad
  expect_usage "invalid --prefix '__x': it starts with '_'" $cmd "$MODEL" --prefix __x -o bad
  expect_usage "invalid --prefix '_X': it starts with '_'" $cmd "$MODEL" --prefix _X -o bad
  expect_usage "invalid --prefix '': it is empty" $cmd "$MODEL" --prefix= -o bad
  expect_usage "longer than 100 characters" $cmd "$MODEL" --prefix "$long" -o bad
  expect_usage "option '--prefix' needs a value" $cmd "$MODEL" --prefix
done
expect_usage "invalid --prefix 'while'" run "$MODEL" --prefix while --input x="$FIX/x.npy"
[[ ! -e bad ]] || { echo "FAIL: a bad --prefix left output behind"; exit 1; }
echo "ok: bad prefixes are usage errors (exit 2) that write nothing"
