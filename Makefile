# e2h — build, test, sanitize.
#   make            build/e2h, build/libe2h.a, build/libe2h.so, tests, benches
#   make test       build and run every test program (C), then the Python oracle tests
#   make asan       the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make model      fetch the default model (SmolLM2-135M-Instruct GGUF) into weights/
#   make check      install dependencies if missing, build, fetch the model, run all tests
#   make demo       install, build, fetch, and run the default job on the default model
#   make job        the same job with its training stages (labels from easy problems, head)
#   make bench      build the benchmarks (run them from bench/, see bench/README.md)
CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
# clang (fuzzing, its sanitizers) does not know gcc's -Wformat-truncation. -ffp-contract=off:
# the kernels' bit-exactness (ref vs SIMD, batched vs alone) assumes no a*b+c is fused behind
# our back; gcc in ISO C mode already does not fuse, clang does by default.
IS_CLANG := $(findstring clang,$(shell $(CC) --version 2>/dev/null | head -n 1))
# -fvisibility=hidden: libe2h.so exports only what include/e2h.h declares (its pragma)
CFLAGS  := -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wno-format-truncation $(if $(IS_CLANG),-Wno-unknown-warning-option) -ffp-contract=off -fPIC \
           -fvisibility=hidden -D_GNU_SOURCE -pthread \
           -I. -Iinclude -I/usr/include/openblas $(SAN) $(EXTRA_CFLAGS)
LDLIBS  := -lopenblas -lxxhash -lcjson -lpcre2-8 -lm -lpthread
LDFLAGS := $(SAN) -pthread
# the CLI only: `e2h serve` runs on GNU libmicrohttpd (Debian libmicrohttpd-dev: packaged, C,
# mature, thread-per-connection + streaming callbacks, so no hand-written HTTP parsing)
CLI_LDLIBS := -lmicrohttpd

# version from include/e2h.h; the shared library is libe2h.so.MAJOR.MINOR.PATCH with SONAME
# libe2h.so.MAJOR and the links libe2h.so.MAJOR, libe2h.so
E2H_VERSION_PART = $(shell sed -n 's/^\#define E2H_VERSION_$(1) \([0-9]*\).*/\1/p' include/e2h.h)
VERSION_MAJOR := $(call E2H_VERSION_PART,MAJOR)
VERSION       := $(VERSION_MAJOR).$(call E2H_VERSION_PART,MINOR).$(call E2H_VERSION_PART,PATCH)
SONAME        := libe2h.so.$(VERSION_MAJOR)
PREFIX  ?= /usr/local
DESTDIR ?=

# per-file ISA flags: the runtime dispatcher only calls these when the CPU has the ISA
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq \
                -mavx512vnni -mavx512bf16
# AMX tile kernels (kernels/x86/*_amx.c): called only where kernels/amx.c detects AMX and the
# OS permission; the same source built against the tile emulator is *_amx_emu_avx512.c
AMX_FLAGS    := $(AVX512_FLAGS) -mamx-tile -mamx-int8 -mamx-bf16

LIB_SRC   := $(sort $(wildcard engine/*.c engine/prm/*.c engine/search/*.c kernels/*.c \
                                kernels/ref/*.c kernels/x86/*.c tokenizer/*.c \
                                formats/*.c))
CLI_SRC   := $(sort $(wildcard engine/cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

HAVE_NVCC := $(shell command -v nvcc >/dev/null 2>&1 && echo yes || echo no)
CPU_FLAGS := $(shell grep -o -w -E 'avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_int8|amx_bf16' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ')

.PHONY: all lib cli tests benches test asan model bench clean info deps check demo job install
all: info lib cli tests benches

info:
	@echo "e2h: cpu features: $(if $(CPU_FLAGS),$(CPU_FLAGS),none detected) (kernels are chosen at run time)"
	@echo "e2h: amx: $(if $(findstring amx_int8,$(CPU_FLAGS)),amx_int8 in /proc/cpuinfo: the AMX kernels are used where the OS grants the tile state (e2h info says),no amx_int8 in /proc/cpuinfo: AMX kernels built but not used (AVX-512/AVX2 instead))"
	@echo "e2h: nvcc: $(HAVE_NVCC) (CUDA backend not built by default)"

lib: $(BUILD)/libe2h.a $(BUILD)/libe2h.so
cli: $(BUILD)/e2h
tests: $(TEST_BIN)
benches: $(BENCH_BIN)

$(BUILD)/obj/kernels/x86/%_avx2.o: kernels/x86/%_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/kernels/x86/%_avx512.o: kernels/x86/%_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/kernels/x86/%_amx.o: kernels/x86/%_amx.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AMX_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# the flags live here: objects built with other flags (visibility, ISA) are stale
$(LIB_OBJ) $(CLI_OBJ): Makefile

$(BUILD)/libe2h.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libe2h.so.$(VERSION): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -o $@ $^ $(LDLIBS)
$(BUILD)/libe2h.so: $(BUILD)/libe2h.so.$(VERSION)
	ln -sf libe2h.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@
$(BUILD)/e2h: $(CLI_OBJ) $(BUILD)/libe2h.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libe2h.a $(LDLIBS) $(CLI_LDLIBS)
$(BUILD)/tests/%: tests/%.c $(BUILD)/libe2h.a tests/harness.h tests/r16_case.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libe2h.a $(LDLIBS)
# serve's request parsers without a model or a socket (the rest of the CLI is not linked)
SERVE_PARSE_OBJ = $(BUILD)/obj/engine/cli/serve_api.o $(BUILD)/obj/engine/cli/serve_prm.o
$(BUILD)/tests/test_serve_api: tests/test_serve_api.c tests/serve_text_stub.h $(SERVE_PARSE_OBJ) $(BUILD)/libe2h.a tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(SERVE_PARSE_OBJ) $(BUILD)/libe2h.a $(LDLIBS)
$(BUILD)/bench/%: bench/%.c $(BUILD)/libe2h.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libe2h.a $(LDLIBS)

# Every test binary prints "N passed, N failed" last; tests/run_tests.sh sums them and fails
# if any failed or if none ran.
test: all
	@BUILD=$(BUILD) bash tests/run_tests.sh

# ASan + UBSan with clang where present (its UBSan checks float-to-int conversions that
# overflow, gcc's does not), no recovery: the first report fails the test.
SAN_CC ?= $(if $(shell command -v clang 2>/dev/null),clang,$(CC))
asan:
	$(MAKE) CC=$(SAN_CC) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined $(if $(findstring clang,$(SAN_CC)),-fsanitize=float-cast-overflow) -fno-omit-frame-pointer -fno-sanitize-recover=all" tests cli
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 BUILD=build-asan E2H_SKIP_PY=1 bash tests/run_tests.sh

# ThreadSanitizer over the tests that run threads (thread pool, two engines on two threads,
# thread-count invariance), and the search batch's threads taking turns (one test of
# test_search: the rest of it is single-threaded and slow under TSan).
TSAN_TESTS ?= test_pool test_embed test_sched test_tree test_model test_kernels test_soak
tsan:
	$(MAKE) BUILD=build-tsan OPT=-O1 SAN="-fsanitize=thread -fno-omit-frame-pointer" tests
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" BUILD=build-tsan E2H_SKIP_PY=1 \
	    TESTS="$(addprefix build-tsan/tests/,$(TSAN_TESTS))" bash tests/run_tests.sh
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" BUILD=build-tsan E2H_SKIP_PY=1 \
	    E2H_TEST_ONLY=search_batch_threads TESTS=build-tsan/tests/test_search bash tests/run_tests.sh

model:
	@bash weights/fetch_default_model.sh

deps:
	@bash tools/install_deps.sh

# The README's two commands: `make check` (CI runs it) and `make demo`.
check: deps
	$(MAKE) -j2 all
	$(MAKE) model
	$(MAKE) test
	$(MAKE) -j2 asan
	$(MAKE) -j2 tsan
	$(MAKE) fuzz-smoke

# The default job (issue #15): generated leveled problems (stage 1), then greedy, maj@16,
# BoN@16 and weighted@16 on the hard levels with the shipped easy-trained head (stage 4);
# per-level table with bootstrap CIs, runs/e2h-job/, and the closing weighted-vs-maj line.
# `make job` reruns the whole pipeline (labels and head too; see README).
DEMO_MODEL ?= weights/SmolLM2-135M-Instruct.Q4_1.gguf
DEMO_ARGS ?=
demo: deps
	$(MAKE) -j2 all
	$(MAKE) model
	@python3 tools/e2h_job.py --e2h $(BUILD)/e2h --policy $(DEMO_MODEL) --stages 1,4 $(DEMO_ARGS)

job: deps
	$(MAKE) -j2 all
	$(MAKE) model
	@python3 tools/e2h_job.py --e2h $(BUILD)/e2h --policy $(DEMO_MODEL) --stages 1,2,3,4 \
		--out runs/e2h-job-full $(DEMO_ARGS)

bench: benches

# make install PREFIX=/opt/e2h [DESTDIR=...]: the header, both libraries (the shared one with
# its SONAME links), the CLI, and e2h.pc for pkg-config (Libs.private: the static link line).
install: lib cli
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/e2h.h $(DESTDIR)$(PREFIX)/include/e2h.h
	install -m 644 $(BUILD)/libe2h.a $(DESTDIR)$(PREFIX)/lib/libe2h.a
	install -m 755 $(BUILD)/libe2h.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libe2h.so.$(VERSION)
	ln -sf libe2h.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libe2h.so
	install -m 755 $(BUILD)/e2h $(DESTDIR)$(PREFIX)/bin/e2h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(LDLIBS)|' \
	    e2h.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/e2h.pc

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d)

# ---- fuzzing (clang libFuzzer + ASan + UBSan, float-cast-overflow included) -------------------
#   make fuzz          build build-fuzz/fuzz/fuzz_* (one per parser; seeds in tests/fuzz/corpus)
#   make fuzz-smoke    run each for FUZZ_SECONDS (default 50: 7 targets, 6 minutes) on a copy
#                      of its seeds; fails on
#                      any crash, leak, hang (> 10 s per input) or UB report. Part of .ci/run.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 50
FUZZ_SAN     := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
                -fno-omit-frame-pointer
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/fuzz/%)
# the CLI's JSONL line parsers (fuzz_jsonl) and serve's request parsers (fuzz_serve_api); the
# rest of the CLI (HTTP, the scheduler loop) is not linked
FUZZ_CLI_OBJ := $(FUZZ_BUILD)/obj/engine/cli/jsonl.o $(FUZZ_BUILD)/obj/engine/cli/serve_api.o \
                $(FUZZ_BUILD)/obj/engine/cli/serve_prm.o
.PHONY: fuzz fuzz-smoke fuzz-bins
fuzz:
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) OPT=-O1 SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" \
	    $(FUZZ_BUILD)/libe2h.a $(FUZZ_CLI_OBJ)
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) OPT=-O1 SAN="$(FUZZ_SAN)" fuzz-bins
fuzz-bins: $(FUZZ_BIN)
$(FUZZ_BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_util.h tests/serve_text_stub.h $(FUZZ_BUILD)/libe2h.a $(FUZZ_CLI_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_CLI_OBJ) $(FUZZ_BUILD)/libe2h.a $(LDLIBS)
fuzz-smoke: fuzz
	@bash tests/fuzz/smoke.sh $(FUZZ_BUILD)/fuzz $(FUZZ_SECONDS)
