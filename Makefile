# The two commands a fresh Debian 12 machine needs (as root):
#   make demo   install what is missing, build, install, run the demo
#   make test   install what is missing, build, run every test tier (and under ASan/UBSan),
#               then every fuzzer for a minute
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

FUZZ_SECONDS ?= 60

.PHONY: all deps build install demo test test-fast asan fuzz lint format bench clean

all: build

deps:
	scripts/install-deps.sh

# Line tables only (-g1), not full debug info: backtraces and perf keep file, line and function,
# and the build takes about 40% less time (full -g doubles the compile time of a JSON-heavy
# file at -O2; measured in docs/architecture.md). `make install` strips the binaries anyway.
# CMAKE_FLAGS='-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g -DNDEBUG' for a build to debug in gdb.
RELEASE_FLAGS := -O2 -g1 -DNDEBUG
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  '-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$(RELEASE_FLAGS)' '-DCMAKE_C_FLAGS_RELWITHDEBINFO=$(RELEASE_FLAGS)' \
	  $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The sanitizer build is clang's: the same tree carries the libFuzzer targets (fuzz/) and the
# failpoints (plugin/core/failpoint.h) the Failpoint tests walk, so one build serves the tests
# under ASan/UBSan, those tests and the fuzzers. Line tables only: what the sanitizers' reports
# need to name file and line, for about a fifth less build time than -g.
$(ASAN_BUILD)/CMakeCache.txt:
	CXX=clang++ cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-gline-tables-only \
	  -DPLUMB_SANITIZE=ON \
	  -DPLUMB_FUZZ=ON -DPLUMB_FAILPOINTS=ON -DPLUMB_BENCH=OFF

asan: $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

install: build
	cmake --install $(BUILD) --strip

demo: deps install
	scripts/demo.sh /opt/cni/bin/plumb

test: deps build asan
	scripts/test.sh $(BUILD) $(ASAN_BUILD)
	scripts/fuzz.sh $(ASAN_BUILD) $(FUZZ_SECONDS)

# Every parser's fuzzer for FUZZ_SECONDS each (make fuzz FUZZ_SECONDS=600 for a longer hunt).
fuzz: deps asan
	scripts/fuzz.sh $(ASAN_BUILD) $(FUZZ_SECONDS)

# Without the sanitizer build, for quick iterations.
test-fast: build
	scripts/test.sh $(BUILD)

# The fuzzers are in the clang build's compile database only: clang-tidy reads them there.
lint: $(BUILD)/CMakeCache.txt $(ASAN_BUILD)/CMakeCache.txt
	scripts/lint.sh $(BUILD) $(ASAN_BUILD)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

bench: build
	bench/cni_bench.sh $(BUILD)/plugin/plumb
	bench/docker_bench.sh $(BUILD)/plugin/plumb
	bench/cli_bench.sh $(BUILD)/plugin/plumb
	bench/ovs_bench.sh $(BUILD)/plugin/plumb
	bench/sriov_bench.sh $(BUILD)/plugin/plumb
	bench/proxy_bench.sh $(BUILD)/plugin/plumb
	bench/cluster_bench.sh $(BUILD)/plugin/plumb

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
