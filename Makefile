# cltrain: an OpenCL neural-network trainer in C.
#   make demo    install what is missing, fetch MNIST, build, list devices, train on device 0
#   make test    the same set-up, then the whole Check suite on PoCL
#   make         build build/cltrain
# Switches: DEVELOPER=1 (strict warnings as errors), SANITIZE=address,undefined, CC=clang.

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
PKGS    := OpenCL clblast zlib stb

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Iinclude -I$(BUILD) \
           -DCL_TARGET_OPENCL_VERSION=300
ifeq ($(DEVELOPER),1)
# -Wconversion is left out: it flags every size_t/int mix of the dimension arithmetic, which is
# range-checked where the sizes are read. -Wshadow and -Werror catch what matters here.
CFLAGS  += -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
endif
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
BUILD   := build-sanitize
# Leaks inside the OpenCL driver are not ours (tests/lsan.supp); without this every run that
# compiles a kernel would fail the leak check.
export LSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lOpenCL -lclblast -lz -lstb)
LIBS       = $(PKG_LIBS) -lm -pthread

# Open MPI (libopenmpi-dev) where installed: src/dist.c alone includes mpi.h. Without it the
# same interface runs one process (MPI=0 forces that). -isystem: warnings are ours, not mpi.h's.
ifeq ($(origin MPI),undefined)
MPI := $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
endif
ifeq ($(MPI),1)
MPI_CFLAGS = -DCLTRAIN_MPI $(patsubst -I%,-isystem %,$(shell pkg-config --cflags ompi-c))
LIBS      += $(shell pkg-config --libs ompi-c)
endif

LIB_SRC   := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ   := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/kernels_embedded.o
KERNELS   := $(sort $(wildcard kernels/*.cl))
TEST_SRC  := $(sort $(wildcard tests/*.c))
SUITE_SRC := $(sort $(wildcard tests/test_*.c))
TEST_OBJ  := $(patsubst tests/%.c,$(BUILD)/tobj/%.o,$(TEST_SRC))
BENCH_SRC := $(sort $(wildcard bench/*.c))

# Debian packages the build and the tests need; `make deps` installs whichever are missing.
DEPS_PKGS := ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo libclblast-dev check \
             pkg-config zlib1g-dev libstb-dev gnuplot-nox libopenmpi-dev openmpi-bin oclgrind
# `make bench` only (not CI): python3-torch is the PyTorch peer (Debian's 1.13, about 140 MB to
# download and 600 MB installed with its dependencies); threadpoolctl names the BLAS kernels.
BENCH_PKGS := python3-numpy libopenblas0-pthread python3-torch python3-threadpoolctl
# The ONNX export's consumers: Debian's python3-onnx (1.12: IR version 8, opsets to 17) and
# npm's onnxruntime-node, pinned in tests/onnx/package-lock.json, installed into ORT_DIR.
ONNX_PKGS  := python3-onnx python3-numpy
ORT_DIR    := build/onnx-node
PYTHON     ?= /usr/bin/python3

.PHONY: all deps data data-fashion demo test check-run test-onnx install clean bench reproduce records
all: $(BUILD)/cltrain

$(BUILD)/obj $(BUILD)/tobj:
	@mkdir -p $@

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/kernels_embedded.c: $(KERNELS) scripts/embed_kernels.sh | $(BUILD)/obj
	sh scripts/embed_kernels.sh $@ $(KERNELS)

# The stamp rebuilds dist.o when Open MPI appears (make deps) or MPI=0 is asked for.
$(BUILD)/obj/dist.o: src/dist.c $(wildcard include/*.h) $(BUILD)/obj/.mpi-$(MPI) | $(BUILD)/obj
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -c $< -o $@

$(BUILD)/obj/.mpi-$(MPI): | $(BUILD)/obj
	rm -f $(BUILD)/obj/.mpi-* && touch $@

$(BUILD)/obj/kernels_embedded.o: $(BUILD)/kernels_embedded.c include/kernels_embedded.h
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcltrain.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/cltrain: $(BUILD)/obj/main.o $(BUILD)/libcltrain.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/test_suites.h: $(SUITE_SRC) scripts/suites.sh | $(BUILD)/tobj
	sh scripts/suites.sh $@ $(SUITE_SRC)

$(BUILD)/tobj/%.o: tests/%.c $(wildcard include/*.h) $(wildcard tests/*.h) $(BUILD)/test_suites.h | $(BUILD)/tobj
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(shell pkg-config --cflags check 2>/dev/null) -Itests -include $(BUILD)/test_suites.h -c $< -o $@

$(BUILD)/cltrain-tests: $(TEST_OBJ) $(BUILD)/libcltrain.a
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check 2>/dev/null || echo -lcheck) $(LIBS)

$(BUILD)/cltrain-bench: $(BENCH_SRC) $(wildcard bench/*.h) $(BUILD)/libcltrain.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -pthread $(LDFLAGS) -o $@ $(BENCH_SRC) $(BUILD)/libcltrain.a $(LIBS)

# --- set-up: packages and data -------------------------------------------------------------
deps:
	@sh scripts/install_deps.sh $(DEPS_PKGS)

data: deps
	@sh scripts/fetch_mnist.sh data/mnist

data-fashion: deps
	@sh scripts/fetch_fashion.sh data/fashion

# --- the two README commands ---------------------------------------------------------------
demo: deps data
	$(MAKE) --no-print-directory all
	$(BUILD)/cltrain --list-devices
	$(BUILD)/cltrain --device 0

test: deps data
	$(MAKE) --no-print-directory $(BUILD)/cltrain $(BUILD)/cltrain-tests
	$(MAKE) --no-print-directory check-run
	$(MAKE) --no-print-directory test-onnx

# The ONNX export checked by python3-onnx's checker and run by ONNX Runtime (scripts/test_onnx.sh).
test-onnx: deps data
	@sh scripts/install_deps.sh $(ONNX_PKGS)
	@sh scripts/install_onnxruntime.sh $(ORT_DIR)
	$(MAKE) --no-print-directory $(BUILD)/cltrain
	CLTRAIN=$(CURDIR)/$(BUILD)/cltrain DATA=$(CURDIR)/data/mnist ORT=$(CURDIR)/$(ORT_DIR) \
	    PYTHON=$(PYTHON) WORK=$(CURDIR)/$(BUILD)/onnx-test sh scripts/test_onnx.sh

# Runs the suite; CLTRAIN_BIN lets the tests drive the real binary.
check-run:
	CLTRAIN_BIN=$(CURDIR)/$(BUILD)/cltrain CLTRAIN_DATA=$(CURDIR)/data/mnist \
	    CLTRAIN_KERNEL_DIR= $(BUILD)/cltrain-tests

# test-oclgrind: the layer kernels, every plan family and a short training through the binary
# on Oclgrind's simulated GPU under --data-races, failing on any report Oclgrind makes (it does
# not change the exit status: scripts/test_oclgrind.sh reads its output) or any disagreement
# with the host back-end beyond the suites' tolerances. Measured on a busy 2-core machine:
# 126 s of CPU time for cl_layers alone, 163 s for layers and most of cl_layers; about 4
# minutes of CPU in all (the wall time grows with the machine's load).
.PHONY: test-oclgrind
test-oclgrind: deps data
	$(MAKE) --no-print-directory $(BUILD)/cltrain $(BUILD)/cltrain-tests
	sh scripts/test_oclgrind.sh $(BUILD) $(CURDIR)/data/mnist

# --- sanitizers and fuzzing ------------------------------------------------------------------
# test-sanitize: the suites built with AddressSanitizer and UndefinedBehaviorSanitizer in
# build-sanitize/, one CK_RUN_SUITE at a time. A chosen subset: every suite but trainer, whose
# convergence runs take 3 of the 6 minutes the whole suite needs sanitized on 2 cores, which
# CI's 15 minutes cannot spare (`make test SANITIZE=address,undefined` runs all of it). Leaks
# inside the OpenCL driver (PoCL, LLVM) are suppressed by tests/lsan.supp; none of our own code.
SANITIZE_SUITES := dataset checkpoint cli malformed cl_runtime layers backend predict resume classes \
                   plot optim onnx_export rng model options session train_loop augment softmax \
                   kernel_select nonzero
# intercept_tls_get_addr=0: on some machines (a 2-core Xeon VM, 2026-12-02) GCC 12's LeakSanitizer
# records a bogus dynamic-TLS range for a thread (DTLS at 0x7a5) and its tracer crashes at exit
# ("Tracer caught signal 11") in every test that started PoCL's threads, at commits that passed
# elsewhere; without the interception dynamic TLS is not scanned, which could only add reports.
SANITIZE_ENV = ASAN_OPTIONS=detect_leaks=1:intercept_tls_get_addr=0 \
               LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: test-sanitize fuzz
test-sanitize: deps data
	$(MAKE) --no-print-directory SANITIZE=address,undefined BUILD=build-sanitize \
	    build-sanitize/cltrain build-sanitize/cltrain-tests
	@rc=0; for s in $(SANITIZE_SUITES); do \
	    $(SANITIZE_ENV) CK_RUN_SUITE=$$s CLTRAIN_BIN=$(CURDIR)/build-sanitize/cltrain \
	    CLTRAIN_DATA=$(CURDIR)/data/mnist CLTRAIN_KERNEL_DIR= build-sanitize/cltrain-tests || rc=1; \
	done; exit $$rc

# fuzz: libFuzzer targets (clang) for the IDX reader, the CSV reader and the model loader
# (tests/fuzz/README.md), each run for FUZZ_SECONDS from its seed corpus in tests/fuzz/corpus_*;
# what they find goes to build/fuzz/. A crash stops with the input in build/fuzz/crash-*.
FUZZ_SECONDS ?= 60
FUZZ_PKGS    := clang libclang-rt-14-dev
FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_SRC     := src/dataset.c src/util.c src/checkpoint.c src/model.c src/rng.c src/augment.c
FUZZ_CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -Iinclude -Itests/fuzz \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
ifeq ($(DEVELOPER),1)
FUZZ_CFLAGS  += -Werror
endif

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_SRC) $(wildcard include/*.h)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC) -lz -lm

fuzz:
	@sh scripts/install_deps.sh $(FUZZ_PKGS)
	$(MAKE) --no-print-directory $(FUZZ_DIR)/fuzz_idx $(FUZZ_DIR)/fuzz_csv $(FUZZ_DIR)/fuzz_model
	@for t in idx csv model; do \
	    mkdir -p $(FUZZ_DIR)/corpus_$$t; \
	    if ! $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/crash-$$t- $(FUZZ_DIR)/corpus_$$t tests/fuzz/corpus_$$t \
	        >$(FUZZ_DIR)/fuzz_$$t.log 2>&1; then \
	        tail -n 40 $(FUZZ_DIR)/fuzz_$$t.log; \
	        echo "fuzz_$$t: FAILED; the input is $(FUZZ_DIR)/crash-$$t-* (copy it to tests/fuzz/regress/$$t-WHAT)"; \
	        exit 1; \
	    fi; \
	    echo "fuzz_$$t: $$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/fuzz_$$t.log) executions in $(FUZZ_SECONDS) s, $$(ls $(FUZZ_DIR)/corpus_$$t | wc -l) inputs in its corpus"; \
	done

# BENCH_ARGS passes flags through, e.g. make bench BENCH_ARGS=--quick (see bench/README.md).
bench: deps data
	@sh scripts/install_deps.sh $(BENCH_PKGS)
	$(MAKE) --no-print-directory $(BUILD)/cltrain $(BUILD)/cltrain-bench
	$(BUILD)/cltrain-bench $(BENCH_ARGS)

# Data-parallel scaling under mpirun: workloads 2 and 3 at 1 and 2 ranks (bench/mpi_scaling.sh).
.PHONY: bench-mpi
bench-mpi: deps data
	$(MAKE) --no-print-directory $(BUILD)/cltrain
	sh bench/mpi_scaling.sh $(BUILD)/cltrain

# The seed report's experiments (results/seed/SUMMARY.md).
reproduce: deps data
	$(MAKE) --no-print-directory all
	sh scripts/reproduce.sh

# The accuracy records (results/records/SUMMARY.md; docs/RECORDS.md holds the measured table).
records: deps data data-fashion
	$(MAKE) --no-print-directory $(BUILD)/cltrain
	CLTRAIN=$(BUILD)/cltrain sh scripts/records.sh

install: $(BUILD)/cltrain
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/cltrain $(DESTDIR)$(PREFIX)/bin/cltrain
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 cltrain.1 $(DESTDIR)$(PREFIX)/share/man/man1/cltrain.1

clean:
	rm -rf build build-sanitize
