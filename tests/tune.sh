#!/usr/bin/env bash
# `lathe tune` and the tune cache (docs/tuning.md), on a tiny model:
#   - tune with a 2-second budget writes one cache entry per distinct kernel under
#     $LATHE_CACHE_DIR/tune and says what it kept;
#   - a later `lathe compile` reads them: its C says "from the tune cache" for those kernels;
#     with --no-tune-cache, or LATHE_NO_TUNE_CACHE=1, every schedule is "from the cost model";
#   - `lathe run` of the tuned model gives the untuned model's outputs (within float rounding
#     of a re-ordered sum);
#   - a damaged entry is ignored (the cost model again), and bad options are usage errors.
set -euo pipefail
LATHE=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export LATHE_CACHE_DIR=$TMP/cache
unset LATHE_NO_TUNE_CACHE LATHE_NO_CACHE

cat >"$TMP/tiny.lathe" <<'LATHE'
model tiny(x: f32[16, 48], w: f32[48, 40], v: f32[40, 24]) {
  h = relu(x @ w)
  output y = h @ v
}
LATHE

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

"$LATHE" compile "$TMP/tiny.lathe" -o "$TMP/before" 2>/dev/null
grep -q "from the cost model" "$TMP/before/tiny.c" || fail "untuned C does not state its schedules"
grep -q "from the tune cache" "$TMP/before/tiny.c" && fail "untuned C claims tuned schedules"

"$LATHE" tune "$TMP/tiny.lathe" --budget 2 2>"$TMP/tune.log" || {
  cat "$TMP/tune.log" >&2
  fail "lathe tune failed"
}
grep -q "kept " "$TMP/tune.log" || fail "tune kept nothing: $(cat "$TMP/tune.log")"
entries=$(ls "$TMP/cache/tune"/*.tune 2>/dev/null | wc -l)
[ "$entries" -ge 1 ] || fail "no cache entries written"
head -1 "$TMP/cache/tune"/*.tune | grep -q "lathe tune entry 1" || fail "entry format"

"$LATHE" compile "$TMP/tiny.lathe" -o "$TMP/after" 2>/dev/null
grep -q "from the tune cache" "$TMP/after/tiny.c" || fail "the second compile ignored the cache"
"$LATHE" compile --no-tune-cache "$TMP/tiny.lathe" -o "$TMP/off" 2>/dev/null
grep -q "from the tune cache" "$TMP/off/tiny.c" && fail "--no-tune-cache read the cache"
LATHE_NO_TUNE_CACHE=1 "$LATHE" compile "$TMP/tiny.lathe" -o "$TMP/env" 2>/dev/null
grep -q "from the tune cache" "$TMP/env/tiny.c" && fail "LATHE_NO_TUNE_CACHE=1 read the cache"

# the tuned model computes what the untuned one does
/usr/bin/python3 - "$TMP" <<'PY'
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(3)
for name, shape in (("x", (16, 48)), ("w", (48, 40)), ("v", (40, 24))):
    np.save(f"{d}/{name}.npy", rng.uniform(-1, 1, shape).astype(np.float32))
PY
args=(--input x="$TMP/x.npy" --input w="$TMP/w.npy" --input v="$TMP/v.npy")
"$LATHE" run "$TMP/tiny.lathe" "${args[@]}" --out "$TMP/tuned" >/dev/null 2>&1
"$LATHE" run --no-tune-cache "$TMP/tiny.lathe" "${args[@]}" --out "$TMP/untuned" >/dev/null 2>&1
/usr/bin/python3 - "$TMP" <<'PY'
import sys, numpy as np
d = sys.argv[1]
a, b = np.load(f"{d}/tuned/y.npy"), np.load(f"{d}/untuned/y.npy")
x, w, v = (np.load(f"{d}/{n}.npy").astype(np.float64) for n in "xwv")
ref = np.maximum(x @ w, 0) @ v
assert np.allclose(a, b, rtol=1e-5, atol=1e-5), abs(a - b).max()
assert np.allclose(a, ref, rtol=1e-4, atol=1e-4), abs(a - ref).max()
PY

# damaged entries read as missing: the cost model again
for f in "$TMP/cache/tune"/*.tune; do printf 'lathe tune entry 1\nkey nonsense\n' >"$f"; done
"$LATHE" compile "$TMP/tiny.lathe" -o "$TMP/damaged" 2>/dev/null
grep -q "from the tune cache" "$TMP/damaged/tiny.c" && fail "a damaged entry was used"
cmp -s "$TMP/before/tiny.c" "$TMP/damaged/tiny.c" || fail "damaged cache changed the C"

# usage errors
set +e
"$LATHE" tune "$TMP/tiny.lathe" --budget 0 2>/dev/null
[ $? -eq 2 ] || fail "--budget 0 is not a usage error"
"$LATHE" tune 2>/dev/null
[ $? -eq 2 ] || fail "no FILE is not a usage error"
LATHE_NO_TUNE_CACHE=1 "$LATHE" tune "$TMP/tiny.lathe" --budget 1 2>/dev/null
[ $? -eq 1 ] || fail "tuning with the cache off is not an error"
"$LATHE" tune "$TMP/tiny.lathe" --entry nope 2>/dev/null
[ $? -eq 1 ] || fail "an unknown --entry is not an error"
echo "tune: ok"
