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

# libraft: the system's when it is new enough, else the static build in build/deps (scripts/deps.sh)
RAFT_CFLAGS := $(shell bash scripts/deps.sh --raft-cflags)
RAFT_LIBS := $(shell bash scripts/deps.sh --raft-libs)

CFLAGS := -std=c11 $(OPT) -g -Wall -Wextra -D_GNU_SOURCE -I. -I$(B)/gen $(RAFT_CFLAGS) -MMD -MP \
	$(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS)

# Modules: a folder is a layer. Each becomes a static library.
COMMON_SRC := $(wildcard common/*.c)
STORE_SRC := $(wildcard store/*.c)
RAFT_SRC := $(wildcard raft/*.c)
API_SRC := $(wildcard api/*.c)
CLIENT_SRC := $(wildcard client/*.c)
CTL_SRC := $(wildcard client/ctl/*.c)
BENCHTOOL_SRC := $(wildcard client/bench/*.c)

# proto/**/*.proto → $(B)/gen/<same path>.pb-c.{c,h} (protoc-c at build time; never committed)
PROTO_FILES := $(shell find proto -name '*.proto' 2>/dev/null)
PROTO_C := $(patsubst %.proto,$(B)/gen/%.pb-c.c,$(patsubst proto/%,%,$(PROTO_FILES)))
PROTO_H := $(PROTO_C:.c=.h)

COMMON_LIB := $(B)/lib/libcairn_common.a
STORE_LIB := $(B)/lib/libcairn_store.a
PROTO_LIB := $(B)/lib/libcairn_proto.a
RAFT_LIB := $(B)/lib/libcairn_raft.a
API_LIB := $(B)/lib/libcairn_api.a
CLIENT_LIB := $(B)/lib/libcairn_client.a
STORE_LIBS := $(STORE_LIB) $(COMMON_LIB) -llmdb
SERVER_LIBS := $(API_LIB) $(CLIENT_LIB) $(RAFT_LIB) $(PROTO_LIB) $(STORE_LIB) $(COMMON_LIB) $(RAFT_LIBS) -llmdb \
	-luv -lnghttp2 -lprotobuf-c -lmd
CLIENT_LIBS := $(CLIENT_LIB) $(PROTO_LIB) $(COMMON_LIB) -luv -lnghttp2 -lprotobuf-c
CAIRND := $(B)/cairnd
CAIRNCTL := $(B)/cairnctl
CAIRN_BENCH := $(B)/cairn-bench
CLIENT_TOOLS := $(CAIRNCTL) $(CAIRN_BENCH)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
BENCH_BIN := $(B)/bench/store_bench
# Test tools: programs the integration tests drive (tests/tools/<name>.c → build/tests/tools/<name>)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(TOOL_SRC))
# Fuzz targets: tests/fuzz/fuzz_<name>.c. `make test` replays each corpus (tests/fuzz/corpus/<name>)
# through a gcc build and runs libFuzzer (clang) on each for a fixed number of inputs
# (FUZZ_TEST_RUNS, fixed seed); `make fuzz` runs libFuzzer on each for FUZZ_SECONDS.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BIN := $(patsubst tests/fuzz/fuzz_%.c,$(B)/tests/fuzz/replay_%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 60
FUZZ_TEST_RUNS ?= 50000

.PHONY: all deps test test-long bench bench-vs-etcd bench-vs-etcd-cluster bench-vs-etcd-watch bench-vs-etcd-lease clean format format-check fuzz run
# Keep object files: make would otherwise delete the chained ones after the test summary line.
.SECONDARY:
all: $(COMMON_LIB) $(STORE_LIB) $(CAIRND) $(CLIENT_TOOLS) $(UNIT_BIN) $(TOOL_BIN) $(REPLAY_BIN) $(BENCH_BIN)

deps:
	@bash scripts/deps.sh

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

$(B)/obj/%.o: %.c | deps $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto | deps
	@mkdir -p $(B)/gen
	protoc-c --proto_path=proto --c_out=$(B)/gen $<

$(B)/obj/gen/%.o: $(B)/gen/%.c | deps $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

$(COMMON_LIB): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(STORE_LIB): $(call obj,$(STORE_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(PROTO_LIB): $(patsubst $(B)/gen/%.c,$(B)/obj/gen/%.o,$(PROTO_C))
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(RAFT_LIB): $(call obj,$(RAFT_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(API_LIB): $(call obj,$(API_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(CLIENT_LIB): $(call obj,$(CLIENT_SRC))
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

# cmd/<name>/*.c: a thin main() per binary
$(CAIRND): $(call obj,$(wildcard cmd/cairnd/*.c)) $(API_LIB) $(CLIENT_LIB) $(RAFT_LIB) $(PROTO_LIB) \
		$(STORE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(SERVER_LIBS) -o $@

# cairnctl and cairn-bench: their code in client/ctl/ and client/bench/, their main() in cmd/
$(CAIRNCTL): $(call obj,$(wildcard cmd/cairnctl/*.c) $(CTL_SRC)) $(CLIENT_LIB) $(PROTO_LIB) \
		$(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(CLIENT_LIBS) -o $@

$(CAIRN_BENCH): $(call obj,$(wildcard cmd/cairn-bench/*.c) $(BENCHTOOL_SRC)) $(CLIENT_LIB) \
		$(PROTO_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(CLIENT_LIBS) -lm -o $@

# make run: a single-member cairnd on 127.0.0.1:2379 with its data in ./default.cairn
run: $(CAIRND) | deps
	$(CAIRND) --name default --data-dir default.cairn \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379

# Unit tests: one binary per tests/unit/test_<name>.c, linked with cmocka and the store; shared
# helpers live in tests/unit/helpers/.
UNIT_HELPERS := $(call obj,$(wildcard tests/unit/helpers/*.c))
$(B)/tests/unit/%: $(B)/obj/tests/unit/%.o $(UNIT_HELPERS) $(CLIENT_LIB) $(API_LIB) $(RAFT_LIB) \
		$(PROTO_LIB) $(STORE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(UNIT_HELPERS) $(CLIENT_LIB) $(SERVER_LIBS) -lcmocka -o $@

$(B)/tests/tools/%: $(B)/obj/tests/tools/%.o $(CLIENT_LIB) $(API_LIB) $(RAFT_LIB) $(PROTO_LIB) \
		$(STORE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(CLIENT_LIB) $(SERVER_LIBS) -o $@

$(B)/tests/fuzz/replay_%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/replay.o $(CLIENT_LIB) \
		$(API_LIB) $(RAFT_LIB) $(PROTO_LIB) $(STORE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(CLIENT_LIB) $(SERVER_LIBS) -o $@

# libFuzzer builds (clang, ASan + UBSan) of the same sources, in build/fuzz/ whatever SANITIZE is.
FZ := build/fuzz
FUZZ_CFLAGS := -std=c11 -g -O1 -D_GNU_SOURCE -I. -I$(B)/gen $(RAFT_CFLAGS) -MMD -MP \
	-fsanitize=fuzzer-no-link,address,undefined
FUZZ_LIB := $(FZ)/libcairn_fuzz.a
FUZZ_BIN := $(patsubst tests/fuzz/fuzz_%.c,$(FZ)/fuzz_%,$(FUZZ_SRC))
fuzz_obj = $(patsubst %.c,$(FZ)/obj/%.o,$(1))

$(FZ)/obj/%.o: %.c | deps $(PROTO_H)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@

$(FZ)/obj/gen/%.o: $(B)/gen/%.c | deps $(PROTO_H)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -Wno-unused-parameter -c $< -o $@

$(FUZZ_LIB): $(call fuzz_obj,$(CLIENT_SRC) $(API_SRC) $(RAFT_SRC) $(STORE_SRC) $(COMMON_SRC)) \
		$(patsubst $(B)/gen/%.c,$(FZ)/obj/gen/%.o,$(PROTO_C))
	@rm -f $@ && ar rcs $@ $^

$(FZ)/fuzz_%: $(FZ)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	clang -fsanitize=fuzzer,address,undefined $< $(FUZZ_LIB) $(RAFT_LIBS) -llmdb -luv -lnghttp2 \
		-lprotobuf-c -lmd -o $@

# make fuzz: each target for FUZZ_SECONDS, growing build/fuzz/corpus-<name> from the seeds
fuzz: $(FUZZ_BIN) | deps
	@for bin in $(FUZZ_BIN); do \
		name=$${bin##*/fuzz_}; \
		mkdir -p $(FZ)/corpus-$$name; \
		echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
		$$bin -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FZ)/ $(FZ)/corpus-$$name \
			tests/fuzz/corpus/$$name 2>&1 | tail -3; \
		[ $${PIPESTATUS[0]} -eq 0 ] || exit 1; \
	done

$(BENCH_BIN): $(B)/obj/bench/store_bench.o $(STORE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(STORE_LIBS) -o $@

# TEST_SEEDS: the fixed seed set of the randomized tests in `make test`; test-long runs many more.
test: $(CAIRND) $(CLIENT_TOOLS) $(UNIT_BIN) $(TOOL_BIN) $(REPLAY_BIN) $(FUZZ_BIN) | deps
	@FUZZ_TEST_RUNS=$(FUZZ_TEST_RUNS) bash tests/run.sh $(B)

test-long: $(CAIRND) $(CLIENT_TOOLS) $(UNIT_BIN) $(TOOL_BIN) $(REPLAY_BIN) $(FUZZ_BIN) | deps
	@CAIRN_TEST_LONG=1 FUZZ_TEST_RUNS=$$(($(FUZZ_TEST_RUNS) * 20)) bash tests/run.sh $(B)

bench: $(BENCH_BIN) | deps
	@$(BENCH_BIN) $(BENCH_ARGS)

# make bench-vs-etcd: cairnd and etcd 3.4 side by side under cairn-bench; writes its table into
# docs/BENCHMARKS.md (bench/vs_etcd.sh)
bench-vs-etcd: $(CAIRND) $(CAIRN_BENCH) | deps
	@bash bench/vs_etcd.sh $(B)

# make bench-vs-etcd-watch: memory per watch stream and per watching, cairnd against etcd 3.4.
bench-vs-etcd-watch: $(CAIRND) $(CAIRN_BENCH) | deps
	VS_ETCD_WATCH=1 bash bench/vs_etcd.sh $(B)

# make bench-vs-etcd-lease: lease keepalive throughput with 10,000 leases, cairnd against etcd 3.4.
bench-vs-etcd-lease: $(CAIRND) $(CAIRN_BENCH) | deps
	VS_ETCD_LEASE=1 bash bench/vs_etcd.sh $(B)

# make bench-vs-etcd-cluster: the same with three-member clusters, leader failover and the disk's
# bound per replicated write; its own tables in docs/BENCHMARKS.md (bench/vs_etcd_cluster.sh)
bench-vs-etcd-cluster: $(CAIRND) $(CAIRN_BENCH) | deps
	@VS_ETCD_CLUSTER=1 bash bench/vs_etcd.sh $(B)

clean:
	rm -rf build

FORMAT_FILES = $(shell git ls-files '*.c' '*.h')
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format-check: clean"

-include $(shell find $(B)/obj $(FZ)/obj -name '*.d' 2>/dev/null)
