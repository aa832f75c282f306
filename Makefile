# iroute - top-level build.  Plain make: `make` builds everything,
# `make test` runs the test suites, `make run` the local demo.
# SAN=address,undefined (or thread) builds an instrumented tree under
# build/san-<name>/ so that it never mixes with the normal one.

CC      ?= cc
comma   := ,
SAN     ?=
ifeq ($(SAN),)
BUILD   ?= build
OPT     ?= -O2
SANFLAGS :=
else
BUILD   ?= build/san-$(subst $(comma),-,$(SAN))
OPT     ?= -O1
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
MHD_CFLAGS   := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS     := $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
CJSON_CFLAGS := $(shell pkg-config --cflags libcjson 2>/dev/null)
CJSON_LIBS   := $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson)
ZK_LIBS      := -lzookeeper_mt
# Every binary links libiroute.a against these.
EXT_LIBS     := $(MHD_LIBS) $(CJSON_LIBS) $(ZK_LIBS)

CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	   -D_GNU_SOURCE -pthread -MMD -MP -Iruntime/include -Iruntime/src $(SANFLAGS)
LDFLAGS += -pthread $(SANFLAGS)
LDLIBS  += -lm -lrt

LIB_SRCS   := $(wildcard runtime/src/*.c)
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB        := $(BUILD)/lib/libiroute.a
TEST_SRCS  := $(wildcard runtime/tests/*.c)
TEST_OBJS  := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BIN   := $(BUILD)/tests/iroute-tests
CMD_SRCS   := $(wildcard runtime/cmd/*.c)
CMD_BINS   := $(CMD_SRCS:runtime/cmd/%.c=$(BUILD)/bin/iroute-%)
BENCH_SRCS := $(wildcard runtime/bench/*.c)
BENCH_BINS := $(BENCH_SRCS:runtime/bench/%.c=$(BUILD)/bin/iroute-bench-%)
REPLAY_BIN := $(BUILD)/tests/fuzz-frame-replay
# The main() of a workflow function (c-func) and of an entry (c-entry), each
# in its own archive: a user's handler.c links against one of them plus
# libiroute.a (template/c-func/build.sh, template/c-entry/build.sh).
MAIN_LIBS  := $(BUILD)/lib/libiroute_func.a $(BUILD)/lib/libiroute_entry.a
# iroute-entry: an entry without generate_data() (entry_main.c alone).
CMD_BINS   += $(BUILD)/bin/iroute-entry
# The function the workflow tests run (runtime/tests/fns/tfn.c).
TFN_BIN    := $(BUILD)/tests/iroute-tfn
FUZZ_TIME  ?= 60

# Keep the objects of pattern-built binaries (make would delete them as intermediates).
.SECONDARY:

.PHONY: all deps test test-unit fuzz-replay bench bench-transport bench-watchdog bench-control bench-finra fuzz valgrind clean format run

all: $(LIB) $(MAIN_LIBS) $(CMD_BINS) $(TFN_BIN) $(TEST_BIN) $(BENCH_BINS) $(REPLAY_BIN)

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) $(MHD_CFLAGS) $(CJSON_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/libiroute_%.a: $(BUILD)/obj/runtime/main/%_main.o
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/iroute-entry: $(BUILD)/lib/libiroute_entry.a $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EXT_LIBS) $(LDLIBS)

$(TFN_BIN): $(BUILD)/obj/runtime/tests/fns/tfn.o $(BUILD)/lib/libiroute_func.a $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EXT_LIBS) $(LDLIBS)

$(TEST_BIN): $(TEST_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJS) $(LIB) $(EXT_LIBS) $(CHECK_LIBS) $(LDLIBS)

# One binary per role: runtime/cmd/<name>.c -> iroute-<name>.
$(BUILD)/bin/iroute-%: $(BUILD)/obj/runtime/cmd/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(EXT_LIBS) $(LDLIBS)

$(BUILD)/bin/iroute-bench-%: $(BUILD)/obj/runtime/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(EXT_LIBS) $(LDLIBS)

$(REPLAY_BIN): $(BUILD)/obj/runtime/fuzz/fuzz_frame.o $(BUILD)/obj/runtime/fuzz/replay.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(EXT_LIBS) $(LDLIBS)

# Unit + integration suites (Check, CK_FORK), then the fuzz corpus replay.
# Tests that run binaries find them in $(BUILD)/bin (IROUTE_BIN_DIR).
test: deps
	@$(MAKE) --no-print-directory test-unit

test-unit: $(TEST_BIN) $(REPLAY_BIN) $(CMD_BINS) $(BENCH_BINS) $(MAIN_LIBS) $(TFN_BIN)
	$(REPLAY_BIN) runtime/fuzz/corpus/frame
	IROUTE_BIN_DIR=$(BUILD)/bin IROUTE_TFN=$(TFN_BIN) CK_DEFAULT_TIMEOUT=120 $(TEST_BIN)

fuzz-replay: $(REPLAY_BIN)
	$(REPLAY_BIN) runtime/fuzz/corpus/frame

# libFuzzer (clang) for a bounded time (FUZZ_TIME seconds) over a scratch
# copy of the committed corpus, so a run never rewrites the seeds.
FUZZ_BIN := build/fuzz/fuzz-frame
fuzz: deps
	@mkdir -p build/fuzz/corpus-frame
	clang -std=c11 -g -O1 -D_GNU_SOURCE -Iruntime/include -Iruntime/src \
		-fsanitize=fuzzer,address,undefined -o $(FUZZ_BIN) runtime/fuzz/fuzz_frame.c \
		runtime/src/frame.c runtime/src/crc32c.c
	cp -n runtime/fuzz/corpus/frame/* build/fuzz/corpus-frame/ 2>/dev/null || true
	$(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -max_len=4096 build/fuzz/corpus-frame runtime/fuzz/corpus/frame

bench: deps
	@$(MAKE) --no-print-directory bench-transport
	@$(MAKE) --no-print-directory bench-watchdog
	@$(MAKE) --no-print-directory bench-control
	@$(MAKE) --no-print-directory bench-finra

bench-transport: $(BUILD)/bin/iroute-bench-transport
	@mkdir -p build/bench
	$(BUILD)/bin/iroute-bench-transport --json build/bench/transport.json

# iroute-watchdog (mode=http) vs. its upstream alone, wrk at 1/16/64
# connections; start-up time; RSS.  WD_BENCH_SECONDS per run (5).
bench-watchdog: $(BUILD)/bin/iroute-watchdog $(BUILD)/bin/iroute-bench-upstream
	@scripts/deps.sh
	scripts/bench-watchdog.sh $(BUILD) build/bench/watchdog.json

# The coordinator: registrations/s, one epoch change reaching 100 and 1000
# long-polling instances, the ZooKeeper mirror's lag (a real ZooKeeper,
# started here on a free loopback port).
bench-control: $(BUILD)/bin/iroute-cc $(BUILD)/bin/iroute-bench-control
	@scripts/deps.sh
	@mkdir -p build/bench
	$(BUILD)/bin/iroute-bench-control --cc $(BUILD)/bin/iroute-cc --zk-start --json build/bench/control.json

# FINRA-5 end to end over ipc and tcp, direct (iroute) vs. every hop
# relayed through a central HTTP orchestrator, same client, same run:
# build/bench/finra.json and a table (scripts/bench-finra.sh).
bench-finra: all
	@scripts/deps.sh
	scripts/bench-finra.sh $(BUILD) build/bench/finra.json

# The test suites under valgrind.  Check still forks a child per test, so
# tests stay isolated; valgrind follows the fork and checks every child (a
# finding fails that test through the exit code).  Programs the tests exec
# (the shell, the watchdog binary) run natively.
valgrind: $(TEST_BIN) $(CMD_BINS)
	IROUTE_BIN_DIR=$(BUILD)/bin CK_DEFAULT_TIMEOUT=600 IROUTE_TEST_LIGHT=1 valgrind \
		--error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite $(TEST_BIN)

# The local demo: the FINRA workflow as processes (iroute local up), one
# request with its result, a 2000-request bench (the `latency:` line),
# then iroute local down.
run: deps
	@$(MAKE) --no-print-directory all
	scripts/run-local.sh $(BUILD)

format:
	clang-format -i runtime/include/iroute/*.h runtime/src/*.[ch] runtime/tests/*.[ch] \
		runtime/bench/*.c runtime/fuzz/*.c

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(wildcard $(BUILD)/obj/runtime/cmd/*.d \
	$(BUILD)/obj/runtime/main/*.d $(BUILD)/obj/runtime/bench/*.d $(BUILD)/obj/runtime/tests/fns/*.d \
	$(BUILD)/obj/runtime/fuzz/*.d)

# Parts with their own targets (install, image, the finra bench...).
-include $(sort $(wildcard mk/*.mk))
