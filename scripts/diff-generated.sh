#!/usr/bin/env bash
# scripts/diff-generated.sh — compile every examples/*.lathe with two lathe binaries and diff
# the generated C, to show a refactoring changed nothing it should not.
#
#   scripts/diff-generated.sh OLD_LATHE NEW_LATHE OUTDIR
#
# Per example and per --target (generic, x86-64-v3, x86-64-v4, aarch64): the forward, train and
# evaluate entries (one `lathe compile`), then the same with --threads 4; and the baked
# inference entries of the examples with a checkpoint under tests/fixtures (mlp, lstm, cnn, as
# tests/bake.sh compiles them). Writes OUTDIR/{old,new}/<case>/ and OUTDIR/diff.txt (diff -r
# of the two trees); prints one line per case that differs. Exit status 0 when every case was
# compiled by both binaries, 1 when one failed (the diff itself is for a reader to judge).
set -u
if [ $# -ne 3 ]; then
  echo "usage: $0 OLD_LATHE NEW_LATHE OUTDIR" >&2
  exit 2
fi
OLD=$(realpath "$1")
NEW=$(realpath "$2")
OUT=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=$ROOT/tests/fixtures
rm -rf "$OUT"
mkdir -p "$OUT/old" "$OUT/new" "$OUT/log"
status=0

# compile CASE ARGS...: both binaries, from the source root, into OUTDIR/{old,new}/CASE
compile() {
  local case=$1
  shift
  for which in old new; do
    local bin=$OLD
    [ "$which" = new ] && bin=$NEW
    if ! (cd "$ROOT" && "$bin" compile "$@" -o "$OUT/$which/$case") 2>"$OUT/log/$which-$case.err"; then
      echo "FAIL: $which lathe: compile $case: $(head -c 300 "$OUT/log/$which-$case.err")" >&2
      status=1
    fi
  done
}

for model in "$ROOT"/examples/*.lathe; do
  name=$(basename "$model" .lathe)
  for target in generic x86-64-v3 x86-64-v4 aarch64; do
    compile "$name-$target" "examples/$name.lathe" --target "$target"
    compile "$name-$target-threads" "examples/$name.lathe" --target "$target" --threads 4
  done
done
for target in generic x86-64-v3 x86-64-v4; do
  compile "baked-mlp-$target" examples/mlp.lathe --weights "$FIX/mlp/weights.safetensors" \
    --bake --target "$target"
  compile "baked-lstm-$target" examples/lstm.lathe -D N=8 -D T=6 -D H=16 \
    --weights "$FIX/lstm/last_weights.safetensors" --bake --target "$target"
  compile "baked-cnn-$target" examples/cnn.lathe -D N=16 \
    --weights "$FIX/cnn/weights.safetensors" --bake --target "$target"
done

(cd "$OUT" && diff -r old new >diff.txt)
cases=$(ls "$OUT/old" | grep -v '\.err$' | wc -l)
differ=0
for d in "$OUT"/old/*/; do
  case=$(basename "$d")
  if ! diff -rq "$OUT/old/$case" "$OUT/new/$case" >/dev/null; then
    echo "differs: $case"
    differ=$((differ + 1))
  fi
done
echo "$cases cases, $differ differ; diff in $OUT/diff.txt"
exit $status
