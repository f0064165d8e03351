#!/usr/bin/env bash
# scripts/compare-generated.sh — does a change leave lathe's output unchanged?
#
#   scripts/compare-generated.sh OLD_LATHE NEW_LATHE [WORKDIR]
#
# Compiles every examples/*.lathe with both binaries, under each target, f64, threads and
# optimization level below, and diffs the generated .c/.h, the kernel list and the memory
# plan (lathe dump --kernels / --memplan) byte for byte. Prints each difference and exits 1
# if there is any, 0 when every output is identical. Build OLD_LATHE from the base commit
# first (e.g. a copy of build/lathe saved before the change).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OLD_LATHE NEW_LATHE [WORKDIR]" >&2
  exit 2
fi
old=$(realpath "$1")
new=$(realpath "$2")
src=$(cd "$(dirname "$0")/.." && pwd)
work=${3:-$(mktemp -d)}
mkdir -p "$work"
variants=("" "--target generic" "--target x86-64-v3" "--target x86-64-v4" "--target aarch64"
          "--dtype f64" "--threads 2" "-O0" "-O1")
status=0
for model in "$src"/examples/*.lathe; do
  name=$(basename "$model" .lathe)
  for i in "${!variants[@]}"; do
    v=${variants[$i]}
    for side in old new; do
      bin=$old
      [ $side = new ] && bin=$new
      out="$work/$side/$name.$i"
      rm -rf "$out" && mkdir -p "$out"
      # shellcheck disable=SC2086  # the variant is a list of words
      (cd "$src" && "$bin" compile $v "examples/$name.lathe" -o "$out") 2>&1 |
        sed "s|$work/$side/|WORK/|g" >"$out.log" || true
    done
    if ! diff -r "$work/old/$name.$i" "$work/new/$name.$i" >"$work/diff" 2>&1 ||
      ! diff "$work/old/$name.$i.log" "$work/new/$name.$i.log" >>"$work/diff" 2>&1; then
      echo "DIFFERENT: $name ${v:-(default)}"
      head -20 "$work/diff"
      status=1
    fi
  done
  for what in --kernels --memplan; do
    for side in old new; do
      bin=$old
      [ $side = new ] && bin=$new
      (cd "$src" && "$bin" dump $what "examples/$name.lathe") >"$work/$side/$name$what" 2>&1 || true
    done
    if ! cmp -s "$work/old/$name$what" "$work/new/$name$what"; then
      echo "DIFFERENT: $name dump $what"
      # diff exits 1 on a difference: under pipefail that would end the script at the first one
      diff "$work/old/$name$what" "$work/new/$name$what" | head -20 || true
      status=1
    fi
  done
done
[ $status = 0 ] && echo "identical: every example under ${#variants[@]} variants, kernels and plans"
exit $status
