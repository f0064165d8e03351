#!/usr/bin/env bash
# A short libFuzzer run of the frontend and of the file readers (npy, safetensors, IDX), with
# ASan + UBSan, seeded with the examples and the malformed models. `make fuzz` runs longer
# (docs/fuzzing.md). Fails on any crash, leak, sanitizer report or silent rejection.
set -euo pipefail
ROOT=$2
SECONDS_EACH=${FUZZ_SHORT_SECONDS:-15}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
command -v clang >/dev/null || { echo "clang is required (scripts/install-deps.sh)"; exit 1; }
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c11
  -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DLATHE_LIB_DIR=\"$ROOT/lib\" -I$ROOT -I$ROOT/include
  $(pkg-config --cflags libcjson)"
cmake -DOUT="$TMP/builtin_lib.c" -DFILES="$(ls "$ROOT"/lib/*.lathe | tr '\n' ';')" \
  -P "$ROOT/scripts/embed_lib.cmake"
clang $FLAGS "$ROOT"/tests/fuzz/fuzz_frontend.c "$ROOT"/frontend/*.c "$TMP/builtin_lib.c" "$ROOT"/ir/*.c \
  -o "$TMP/fuzz_frontend" -lm
clang $FLAGS "$ROOT"/tests/fuzz/fuzz_readers.c $(ls "$ROOT"/runtime/*.c | grep -v -e api.c -e ffi.c -e model_load.c) \
  "$ROOT"/ir/*.c -o "$TMP/fuzz_readers" $(pkg-config --libs libcjson) -lz -ldl -lm
mkdir -p "$TMP/corpus_frontend" "$TMP/corpus_readers"
cp "$ROOT"/examples/*.lathe "$ROOT"/tests/diagnostics/*.lathe "$TMP/corpus_frontend/"
cp "$ROOT"/tests/fixtures/mlp/*.npy "$TMP/corpus_readers/"
head -c 4096 "$ROOT"/tests/fixtures/mlp/weights.safetensors > "$TMP/corpus_readers/w.safetensors"
cd "$TMP"
./fuzz_frontend -max_total_time="$SECONDS_EACH" -max_len=2048 -print_final_stats=1 \
  corpus_frontend 2>&1 | tail -3
./fuzz_readers -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 \
  corpus_readers 2>&1 | tail -3
echo "ok: no crash, leak or sanitizer report in ${SECONDS_EACH}s of each fuzzer"
