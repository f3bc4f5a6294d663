# The two commands a fresh Debian 12 machine needs (as root):
#   make demo   install what is missing, build, install, run the demo
#   make test   install what is missing, build, run every test tier (and under ASan/UBSan)
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build install demo test test-fast asan lint format bench clean

all: build

deps:
	scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPLUMB_SANITIZE=ON -DPLUMB_BENCH=OFF

asan: $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

install: build
	cmake --install $(BUILD) --strip

demo: deps install
	scripts/demo.sh /opt/cni/bin/plumb

test: deps build asan
	scripts/test.sh $(BUILD) $(ASAN_BUILD)

# Without the sanitizer build, for quick iterations.
test-fast: build
	scripts/test.sh $(BUILD)

lint: $(BUILD)/CMakeCache.txt
	scripts/lint.sh $(BUILD)

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
