# lathe — the two commands: `make run` and `make test`. Each installs what it needs first.
# `make check` is the inner loop: a plain (non-sanitizer) build and the tests labelled fast.
BUILD    ?= build
TESTBUILD ?= build-test
CHECKBUILD ?= build-check
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
SHELL    := /bin/bash

.PHONY: all deps build run check test bench fuzz clean format

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Compile the MLP example to C, build it, and run it on an input.
run: build
	@bash scripts/run-example.sh $(BUILD)/lathe

# The quick loop while editing: a strict (-Werror) Debug build without sanitizers (ccache when
# installed), then the tests labelled `fast` (under a minute on 2 cores after the build).
# No dependency install: run `make deps` (or `make test`) once first.
check:
	@cmake -S . -B $(CHECKBUILD) -DCMAKE_BUILD_TYPE=Debug -DLATHE_WERROR=ON \
	  $$(command -v ccache >/dev/null && echo -DCMAKE_C_COMPILER_LAUNCHER=ccache \
	     -DCMAKE_CXX_COMPILER_LAUNCHER=ccache) >/dev/null
	@cmake --build $(CHECKBUILD) -j $(JOBS)
	@cd $(CHECKBUILD) && ctest -L fast --output-on-failure -j $(JOBS)

# Strict build (-Werror) with AddressSanitizer + UBSan, then every test (all labels).
test: deps
	@cmake -S . -B $(TESTBUILD) -DCMAKE_BUILD_TYPE=Debug -DLATHE_WERROR=ON \
	  -DLATHE_ASAN=ON -DLATHE_UBSAN=ON >/dev/null
	@cmake --build $(TESTBUILD) -j $(JOBS)
	@cd $(TESTBUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

# Longer fuzzing run of every target (docs/fuzzing.md): FUZZ_SECONDS each (default 300),
# FUZZ_TARGETS to choose (default: every tests/fuzz/fuzz_*.c), FUZZ_RUNS to stop each after
# that many executions (a campaign: FUZZ_RUNS=10000000 FUZZ_SECONDS=86400). clang is Debian's
# default clang, whose libFuzzer and sanitizer runtimes are libclang-rt-14-dev; the JIT (C++)
# is off in this build.
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DLATHE_FUZZ=ON -DLATHE_JIT=OFF \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
	  >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzzers
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t && cp -n tests/fuzz/corpus/$$t/* build-fuzz/corpus/$$t/; \
	  echo "== fuzz_$$t ($${FUZZ_SECONDS:-300}s)"; \
	  TMPDIR=$$([ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo $${TMPDIR:-/tmp}) \
	  build-fuzz/fuzz_$$t -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 \
	    $${FUZZ_RUNS:+-runs=$$FUZZ_RUNS} -max_total_time=$${FUZZ_SECONDS:-300} \
	    build-fuzz/corpus/$$t 2>&1 | \
	    grep -E "DONE|stat::number_of_executed_units|ERROR|SUMMARY|crash-|leak-|timeout-"; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

bench: build
	@bash scripts/install-deps.sh --bench
	@bash bench/run.sh $(BUILD)/lathe

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(TESTBUILD) $(CHECKBUILD) build-fuzz
