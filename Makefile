# lathe — the two commands: `make run` and `make test`. Each installs what it needs first.
BUILD    ?= build
TESTBUILD ?= build-test
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test bench fuzz clean format

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Compile the MLP example to C, build it, and run it on an input.
run: build
	@bash scripts/run-example.sh $(BUILD)/lathe

# Strict build (-Werror) with AddressSanitizer + UBSan, then every test.
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
	rm -rf $(BUILD) $(TESTBUILD) build-fuzz
