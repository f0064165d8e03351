# lathe — the two commands: `make run` and `make test`. Each installs what it needs first.
# `make check` is the inner loop: a plain (non-sanitizer) build and the tests labelled fast.
BUILD    ?= build
TESTBUILD ?= build-test
CHECKBUILD ?= build-check
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)

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

# Longer fuzzing run of the frontend and the file readers (see docs/fuzzing.md).
fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DLATHE_FUZZ=ON \
	  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@mkdir -p build-fuzz/corpus && cp -n examples/*.lathe tests/diagnostics/*.lathe build-fuzz/corpus/ 2>/dev/null || true
	@build-fuzz/fuzz_frontend -max_len=4096 -max_total_time=$${FUZZ_SECONDS:-600} build-fuzz/corpus
	@mkdir -p build-fuzz/corpus-readers && cp -n tests/fixtures/mlp/*.npy build-fuzz/corpus-readers/
	@build-fuzz/fuzz_readers -max_len=65536 -max_total_time=$${FUZZ_SECONDS:-600} build-fuzz/corpus-readers

bench: build
	@bash scripts/install-deps.sh --bench
	@bash bench/run.sh $(BUILD)/lathe

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(TESTBUILD) $(CHECKBUILD) build-fuzz
