#!/usr/bin/env bash
# A short libFuzzer run of the frontend, of the file readers (npy, safetensors, IDX) and of the
# dataset readers for CSV and .npz, with ASan + UBSan, seeded with the examples and the malformed models. `make fuzz` runs longer
# (docs/fuzzing.md). Fails on any crash, leak, sanitizer report or silent rejection.
set -euo pipefail
ROOT=$2
SECONDS_EACH=${FUZZ_SHORT_SECONDS:-15}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
command -v clang >/dev/null || { echo "clang is required (scripts/install-deps.sh)"; exit 1; }
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c11
  -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DLATHE_LIB_DIR=\"$ROOT/lib\" -I$ROOT -I$ROOT/include
  $(pkg-config --cflags libcjson libzip)"
RT_SRCS=$(ls "$ROOT"/runtime/*.c | grep -v -e api.c -e ffi.c -e model_load.c)
RT_LIBS="$(pkg-config --libs libcjson libzip) -lcsv -lpng -ljpeg -lz -ldl -lm"
clang $FLAGS "$ROOT"/tests/fuzz/fuzz_frontend.c "$ROOT"/frontend/*.c "$ROOT"/ir/*.c \
  -o "$TMP/fuzz_frontend" -lm
for t in readers csv npz; do
  # shellcheck disable=SC2086
  clang $FLAGS "$ROOT/tests/fuzz/fuzz_$t.c" $RT_SRCS "$ROOT"/ir/*.c -o "$TMP/fuzz_$t" $RT_LIBS
done
mkdir -p "$TMP/corpus_frontend" "$TMP/corpus_readers" "$TMP/corpus_csv" "$TMP/corpus_npz"
printf '\001a,b,y\n1,2,3\n"4",5.5,"x, ""y"""\n' > "$TMP/corpus_csv/quoted"
printf '\000f0,f1,label\r\n0.5,1e3,cat\r\n-2,3,dog\r\n' > "$TMP/corpus_csv/labels"
/usr/bin/python3 -c "
import numpy as np, sys
np.savez(sys.argv[1] + '/plain.npz', x=np.arange(6, dtype=np.float32).reshape(3, 2),
         label=np.arange(3, dtype=np.int32))
np.savez_compressed(sys.argv[1] + '/zipped.npz', x=np.ones((4, 2)))" "$TMP/corpus_npz"
cp "$ROOT"/examples/*.lathe "$ROOT"/tests/diagnostics/*.lathe "$TMP/corpus_frontend/"
cp "$ROOT"/tests/fixtures/mlp/*.npy "$TMP/corpus_readers/"
head -c 4096 "$ROOT"/tests/fixtures/mlp/weights.safetensors > "$TMP/corpus_readers/w.safetensors"
cd "$TMP"
./fuzz_frontend -max_total_time="$SECONDS_EACH" -max_len=2048 -print_final_stats=1 \
  corpus_frontend 2>&1 | tail -3
./fuzz_readers -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 \
  corpus_readers 2>&1 | tail -3
./fuzz_csv -max_total_time="$SECONDS_EACH" -max_len=1024 -print_final_stats=1 \
  corpus_csv 2>&1 | tail -3
./fuzz_npz -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 \
  corpus_npz 2>&1 | tail -3
echo "ok: no crash, leak or sanitizer report in ${SECONDS_EACH}s of each fuzzer"
