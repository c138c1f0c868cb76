# The README's two commands: `make demo` and `make test`. Both install what
# is missing first (scripts/setup is idempotent and quick when all is there).
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all setup build demo test unit-test bench format clean

all: build

setup:
	@scripts/setup

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# evolive's main job on embedded defaults: evaluate the example jobset.
demo: build
	@scripts/demo

test: build
	@cd $(BUILD) && ctest --output-on-failure -j 2

unit-test: build
	@cd $(BUILD) && ctest --output-on-failure -LE integration

bench: build
	@bench/eval.sh

format:
	@clang-format -i $$(git ls-files '*.cc' '*.hh')

clean:
	rm -rf $(BUILD)
