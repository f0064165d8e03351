#!/usr/bin/env bash
# bench/profile.sh — which kernels of a lathe-generated entry take the time: compiles FILE with
# `lathe compile`, builds bench/drive.c against it with debug info (the flags of bench/run.sh
# plus -g: -O3 -march=native -fno-math-errno -g), records the entry with `perf record` and
# prints each kernel's share of the samples (bench/kernel_profile.py). Measurement only; needs
# perf (linux-perf).
#
# usage: bench/profile.sh PATH/TO/lathe FILE.lathe ENTRY [lathe compile options, e.g. -D N=64]
# environment: PROFILE_SECONDS (how long to record, default 2), PROFILE_TOP (kernels shown,
#   default 15), PROFILE_KEEP=DIR (keep the generated C, driver and perf.data in DIR), CC,
#   PYTHON (default /usr/bin/python3).
set -euo pipefail

if [[ $# -lt 3 || ! -x "$1" ]]; then
  echo "usage: bench/profile.sh PATH/TO/lathe FILE.lathe ENTRY [lathe compile options]" >&2
  exit 2
fi
LATHE=$1 FILE=$2 ENTRY=$3
shift 3
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CC=${CC:-cc}
PYTHON=${PYTHON:-/usr/bin/python3}
command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 1; }

if [[ -n "${PROFILE_KEEP:-}" ]]; then
  WORK=$PROFILE_KEEP
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/lathe-profile.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

"$LATHE" compile "$FILE" -o "$WORK/c" "$@" >"$WORK/compile.log" 2>&1 ||
  { cat "$WORK/compile.log" >&2; exit 1; }
C_FILE=$(ls "$WORK"/c/*.c)
NAME=$(basename "$C_FILE" .c)
"$CC" -std=c11 -O3 -march=native -fno-math-errno -g -I"$WORK/c" -DMODEL_HEADER="\"$NAME.h\"" \
  -DMODEL_INFO="${NAME}_info" "$BENCH/drive.c" "$C_FILE" -o "$WORK/drive" -lm
perf record -q -o "$WORK/perf.data" -F 4000 "$WORK/drive" "$ENTRY" --reps 1 \
  --min-time "${PROFILE_SECONDS:-2}" --int-range 10 >"$WORK/drive.out" 2>"$WORK/perf.log" ||
  { cat "$WORK/perf.log" >&2; exit 1; }
echo "# $NAME $ENTRY: $(head -n 1 "$WORK/drive.out")"
"$PYTHON" "$BENCH/kernel_profile.py" "$C_FILE" "$WORK/perf.data" --top "${PROFILE_TOP:-15}"
