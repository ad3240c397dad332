# cairn — top-level build. `make` builds everything into build/; `make test` runs every test and ends
# with "N passed, N failed"; SANITIZE=1 builds with ASan+UBSan into build/san/.
#
# Every target that compiles or runs something depends (order-only) on `deps`, which installs what is
# missing (scripts/deps.sh) and is a fast no-op otherwise, so `make test` works on a fresh machine.

SHELL := /bin/bash
CC ?= gcc

ifeq ($(SANITIZE),1)
B := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
B := build
SANFLAGS :=
OPT := -O2
endif

CFLAGS := -std=c11 $(OPT) -g -Wall -Wextra -D_GNU_SOURCE -I. -MMD -MP $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS)

# Modules: a folder is a layer. Each becomes a static library.
COMMON_SRC := $(wildcard common/*.c)
STORE_SRC := $(wildcard store/*.c)

COMMON_LIB := $(B)/lib/libcairn_common.a
STORE_LIB := $(B)/lib/libcairn_store.a
STORE_LIBS := $(STORE_LIB) $(COMMON_LIB) -llmdb

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
BENCH_BIN := $(B)/bench/store_bench
# Test tools: programs the integration tests drive (tests/tools/<name>.c → build/tests/tools/<name>)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(TOOL_SRC))
# Fuzz targets: tests/fuzz/fuzz_<name>.c. `make test` replays each corpus (tests/fuzz/corpus/<name>)
# through a gcc build; `make fuzz` runs libFuzzer (clang) on each for FUZZ_SECONDS.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BIN := $(patsubst tests/fuzz/fuzz_%.c,$(B)/tests/fuzz/replay_%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 60

.PHONY: all deps test test-long bench clean format format-check fuzz
# Keep object files: make would otherwise delete the chained ones after the test summary line.
.SECONDARY:
all: $(COMMON_LIB) $(STORE_LIB) $(UNIT_BIN) $(TOOL_BIN) $(REPLAY_BIN) $(BENCH_BIN)

deps:
	@bash scripts/deps.sh

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

$(B)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(COMMON_LIB): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(STORE_LIB): $(call obj,$(STORE_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

# Unit tests: one binary per tests/unit/test_<name>.c, linked with cmocka and the store; shared
# helpers live in tests/unit/helpers/.
UNIT_HELPERS := $(call obj,$(wildcard tests/unit/helpers/*.c))
$(B)/tests/unit/%: $(B)/obj/tests/unit/%.o $(UNIT_HELPERS) $(STORE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(UNIT_HELPERS) $(STORE_LIBS) -lcmocka -o $@

$(B)/tests/tools/%: $(B)/obj/tests/tools/%.o $(STORE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(STORE_LIBS) -o $@

$(B)/tests/fuzz/replay_%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/replay.o $(STORE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(STORE_LIBS) -o $@

fuzz: | deps
	@dpkg-query -W -f='$${Status}\n' clang libclang-rt-14-dev 2>/dev/null | grep -c 'ok installed' | \
		grep -qx 2 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang libclang-rt-14-dev
	@mkdir -p build/fuzz
	@for src in $(FUZZ_SRC); do \
		name=$$(basename $$src .c | sed 's/^fuzz_//'); \
		clang -std=c11 -g -O1 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined $$src \
			$(STORE_SRC) $(COMMON_SRC) -llmdb -o build/fuzz/fuzz_$$name || exit 1; \
		mkdir -p build/fuzz/corpus-$$name; \
		echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
		build/fuzz/fuzz_$$name -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus-$$name \
			tests/fuzz/corpus/$$name 2>&1 | tail -3 || exit 1; \
	done

$(BENCH_BIN): $(B)/obj/bench/store_bench.o $(STORE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(STORE_LIBS) -o $@

# TEST_SEEDS: the fixed seed set of the randomized tests in `make test`; test-long runs many more.
test: $(UNIT_BIN) $(TOOL_BIN) $(REPLAY_BIN) | deps
	@bash tests/run.sh $(B)

test-long: $(UNIT_BIN) $(TOOL_BIN) $(REPLAY_BIN) | deps
	@CAIRN_TEST_LONG=1 bash tests/run.sh $(B)

bench: $(BENCH_BIN) | deps
	@$(BENCH_BIN) $(BENCH_ARGS)

clean:
	rm -rf build

FORMAT_FILES = $(shell git ls-files '*.c' '*.h')
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format-check: clean"

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
