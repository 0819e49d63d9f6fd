# EHX — Early Help Exchange.
#
#   make            build the broker, the agent and the ehx command line
#   make test       build and run every test (unit, integration, fault,
#                   browser)
#   make check-asan the same tests built with AddressSanitizer + UBSan
#   make check-layout  the layout's rules (docs/ARCHITECTURE.md): no circles
#                   between modules, short functions in broker/, docs that
#                   name only paths that exist; and PROTOCOL.md against the
#                   code (tests/docs/check-protocol)
#   make test-browser  the web console end to end in chromium (tests/browser)
#   make demo       bring up a throw-away partnership and show the main job
#                   (KEEP=1 leaves it running, to try the web console)
#   make bench      the performance benchmark: ceilings, publish, queries at
#                   10k/100k/1M children, footprint (docs/PERFORMANCE.md)
#   make bench-notify  time from a publish to another agency's hook (p50, p99)
#   make bench-ceilings  Ed25519, durable LMDB and ZeroMQ CURVE ceilings here
#   make deps       install missing Debian packages (as root), or say how
#   make install    install into $(DESTDIR)$(PREFIX)
#   make clean
#
# ---- Configuration (override on the command line) -------------------------
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/ehx
CC         ?= cc
PKG_CONFIG ?= pkg-config
PROTOC_C   ?= protoc-c
# Where objects and binaries go; check-asan uses its own.
BUILD      ?= build
# Optimisation and debug info; warnings below are always errors.
CFLAGS     ?= -O2 -g
# Extra flags for a variant build (sanitizers).
SANFLAGS   ?=
# How long `make fuzz` runs each fuzzer, in seconds.
FUZZ_SECONDS ?= 30
# -----------------------------------------------------------------------------

PKGS     := libzmq libprotobuf-c lmdb libsodium openssl inih json-c
# The agent's web console only.
HTTPPKGS := libmicrohttpd
TESTPKGS := cmocka

DEB_PACKAGES := build-essential pkg-config openssl libssl-dev libzmq3-dev \
	libsodium-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev \
	lmdb-utils libinih-dev libjson-c-dev libcmocka-dev libcsv-dev clang \
	libclang-rt-14-dev procps python3 libmicrohttpd-dev curl
# make bench also draws its plot.
BENCH_PACKAGES := gnuplot-nox
# make test-browser drives the web console in Debian's chromium (and needs
# node and npm, for playwright-core from the npm registry).
BROWSER_PACKAGES := chromium
# libcsv (ehx import's CSV reader) has no pkg-config file.
CSV_LIBS := -lcsv

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wvla -Wnull-dereference \
	-Wno-format-truncation
WARN += $(if $(findstring clang,$(CC)),-Wno-unknown-warning-option)
GEN  := $(BUILD)/gen
ALL_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE $(WARN) $(CFLAGS) \
	$(SANFLAGS) -Iinclude -I$(GEN) -MMD -MP \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) $(HTTPPKGS) 2>/dev/null)
LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lpthread -lm
HTTPLIBS := $(shell $(PKG_CONFIG) --libs $(HTTPPKGS) 2>/dev/null)
TESTLIBS := $(shell $(PKG_CONFIG) --libs $(TESTPKGS) 2>/dev/null)

LIB_SRC    := $(wildcard lib/*.c)
BROKER_SRC := $(wildcard broker/*.c)
# The agent daemon, with its web console (agent/console/), which reuses
# the command line's CSV of the audit (agent/cli/render.c).
AGENT_SRC  := agent/agentd.c agent/config.c agent/users.c agent/watch.c \
	agent/queue.c agent/notice.c $(wildcard agent/console/*.c) \
	agent/cli/render.c
# The ehx command line; it prints the agent's notification document.
CLI_SRC    := $(wildcard agent/cli/*.c) agent/notice.c
VERIFY_SRC := $(wildcard agent/auditverify/*.c)
# The console's stylesheet and script, built into ehx-agent.
ASSETS     := agent/console/static/console.css agent/console/static/console.js
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS    := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

PB_OBJ     := $(BUILD)/obj/gen/ehx.pb-c.o
ASSETS_OBJ := $(BUILD)/obj/gen/console_assets.o
LIBEHX     := $(BUILD)/libehx.a
BROKER     := $(BUILD)/bin/ehx-broker
AGENT      := $(BUILD)/bin/ehx-agent
CLI        := $(BUILD)/bin/ehx
VERIFY     := $(BUILD)/bin/ehx-auditverify
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/bin/%,$(TOOL_SRC))

.PHONY: all test check-asan check-layout test-unit test-integration demo \
	deps install uninstall clean fuzz fuzz-bins fuzz-run fuzz-seeds \
	bench-notify bench-ceilings bench bench-deps test-browser browser-deps
.DELETE_ON_ERROR:

all: $(BROKER) $(AGENT) $(CLI) $(VERIFY) $(TOOL_BINS)

$(GEN)/ehx.pb-c.c $(GEN)/ehx.pb-c.h: proto/ehx.proto
	@mkdir -p $(GEN)
	$(PROTOC_C) --proto_path=proto --c_out=$(GEN) proto/ehx.proto

# Everything that includes the generated header waits for it.
$(call obj,$(LIB_SRC) $(BROKER_SRC) $(AGENT_SRC) $(CLI_SRC) $(VERIFY_SRC) $(UNIT_SRC) $(TOOL_SRC) $(FUZZ_SRC) tests/fuzz/seeds.c): $(GEN)/ehx.pb-c.h

$(PB_OBJ): $(GEN)/ehx.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Each asset as a NUL-ended array named console_<extension>
# (agent/console/assets.h).
$(GEN)/console_assets.c: $(ASSETS)
	@mkdir -p $(GEN)
	@{ echo '/* Made by make from agent/console/static/: do not edit. */'; \
	  for f in $(ASSETS); do \
	    echo "const char console_$${f##*.}[] = {"; \
	    od -An -v -tx1 $$f | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	    echo '0x00 };'; \
	  done; } > $@

$(ASSETS_OBJ): $(GEN)/console_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBEHX): $(call obj,$(LIB_SRC)) $(PB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BROKER): $(call obj,$(BROKER_SRC)) $(LIBEHX)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS)

$(AGENT): $(call obj,$(AGENT_SRC)) $(ASSETS_OBJ) $(LIBEHX)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS) $(HTTPLIBS)

$(CLI): $(call obj,$(CLI_SRC)) $(LIBEHX)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS) $(CSV_LIBS)

$(VERIFY): $(call obj,$(VERIFY_SRC)) $(LIBEHX)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/%: $(BUILD)/obj/tests/tools/%.o $(LIBEHX)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS)

# A dishonest broker, for the tests of the agents' watch over the audit
# log (broker/broker.h, FAULT): the broker's own sources built again with
# -DEHX_FAULTS. Only the tests use it; it is never installed.
FAULTY := $(BUILD)/tests/ehx-broker-faulty
FAULTY_OBJ := $(patsubst %.c,$(BUILD)/obj-faults/%.o,$(BROKER_SRC))
$(FAULTY_OBJ): $(GEN)/ehx.pb-c.h
$(BUILD)/obj-faults/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DEHX_FAULTS -c -o $@ $<
$(FAULTY): $(FAULTY_OBJ) $(LIBEHX)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS)

# Unit tests may link broker and agent modules (not their main files).
UNIT_LINK := $(filter-out $(BUILD)/obj/broker/main.o,$(call obj,$(BROKER_SRC))) \
	$(call obj,agent/users.c agent/watch.c agent/notice.c agent/queue.c \
	    agent/cli/render.c agent/cli/import.c)
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(UNIT_LINK) $(LIBEHX)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS) $(CSV_LIBS) $(TESTLIBS)

# ehx-gen writes a broker's store with the broker's own handlers.
$(BUILD)/bin/ehx-gen: $(BUILD)/obj/tests/tools/ehx-gen.o \
	    $(filter-out $(BUILD)/obj/broker/main.o,$(call obj,$(BROKER_SRC))) \
	    $(LIBEHX)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS)

# ehx-matchbench matches through the broker's identity code.
$(BUILD)/bin/ehx-matchbench: $(BUILD)/obj/tests/tools/ehx-matchbench.o \
	    $(filter-out $(BUILD)/obj/broker/main.o,$(call obj,$(BROKER_SRC))) \
	    $(LIBEHX)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS)

test-unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; \
	    EHX_TEST_TMP=$${TMPDIR:-/tmp} $$t; done

test-integration: all $(FAULTY)
	@EHX_BIN=$(abspath $(BUILD)/bin) \
	    EHX_FAULTY_BROKER=$(abspath $(FAULTY)) tests/integration/run

# Reads the sources, the objects make built (nm) and the docs.
check-layout: all
	@tests/layout/check $(BUILD)
	@tests/docs/check-protocol

# The web console in a real browser: tests/browser/run brings up a sandbox
# and drives Debian's chromium with playwright-core (npm ci, pinned).
test-browser: all browser-deps
	@EHX_BIN=$(abspath $(BUILD)/bin) tests/browser/run

browser-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BROWSER_PACKAGES)"
	@if command -v node >/dev/null && command -v npm >/dev/null; then \
	    exit 0; \
	elif [ "$$(id -u)" = 0 ]; then \
	    echo "make browser-deps: installing nodejs npm"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends nodejs npm; \
	else \
	    echo "make browser-deps: node and npm are missing"; \
	    echo "  install them with: sudo apt-get install -y nodejs npm"; \
	    exit 1; \
	fi

# The README's test command: everything, then the sanitizer build.
test: deps browser-deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@$(MAKE) --no-print-directory check-layout test-unit test-integration \
	    test-browser
	@$(MAKE) --no-print-directory check-asan

check-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g" \
	    SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	    EHX_FAULT_PUBLISHES=2000 EHX_MODEL_CASES=20000 all test-unit test-integration

demo: deps
	@$(MAKE) --no-print-directory all
	@EHX_BIN=$(abspath $(BUILD)/bin) EHX_DEMO_KEEP=$(KEEP) tests/demo

# The benchmark (issue 6; a measurement, never a test): optimised
# binaries, the machine's ceilings, publish throughput, whole-picture
# queries at BENCH_SCALES children, notification latency and footprint; a
# table on standard output, tests/bench/latest.json and latest.svg. About
# 15 minutes with the default scales (10k, 100k, 1M children).
bench: deps bench-deps
	@$(MAKE) --no-print-directory all
	@EHX_BIN=$(abspath $(BUILD)/bin) tests/bench/bench.sh

bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BENCH_PACKAGES)"

# Timeliness (a measurement, never a test): ehx publish at the police to
# the school's hook running, p50 and p99 (EHX_BENCH_SAMPLES, default 200).
# What this machine can do (Ed25519, durable LMDB puts, ZeroMQ CURVE), for
# the benchmark's figures to be set beside (issue 6; make bench to come).
bench-ceilings: all
	@$(BUILD)/bin/ehx-ceilings --seconds $${CEILING_SECONDS:-2}

bench-notify: all
	@EHX_BIN=$(abspath $(BUILD)/bin) tests/bench/notify_latency.sh

# libFuzzer harnesses for every decoder that sees outside bytes, built
# with clang, ASan and UBSan; each runs FUZZ_SECONDS from the seed corpus
# in tests/fuzz/corpus/NAME (new inputs go to build-fuzz/fuzz/corpus-NAME).
fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang CFLAGS="-O1 -g" \
	    SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fsanitize=fuzzer-no-link" \
	    fuzz-run

FUZZ_LINK := $(call obj,agent/users.c agent/notice.c agent/queue.c agent/watch.c \
	    agent/config.c agent/cli/render.c agent/cli/import.c) \
	$(filter-out $(BUILD)/obj/broker/main.o,$(call obj,$(BROKER_SRC))) \
	$(LIBEHX)
$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS) $(CSV_LIBS)

fuzz-bins: $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZERS))

fuzz-run: fuzz-bins
	@set -e; for f in $(FUZZERS); do \
	    mkdir -p $(BUILD)/fuzz/corpus-$$f; rm -f $(BUILD)/fuzz/crash-$$f-*; \
	    echo "== fuzz_$$f for $(FUZZ_SECONDS)s"; \
	    $(BUILD)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) \
	        -max_len=70000 -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/crash-$$f- \
	        $(BUILD)/fuzz/corpus-$$f tests/fuzz/corpus/$$f 2>&1 | \
	        grep -E '^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY)' || true; \
	    if ls $(BUILD)/fuzz/crash-$$f-* >/dev/null 2>&1; then \
	        echo "fuzz_$$f found a crash: $$(ls $(BUILD)/fuzz/crash-$$f-*)"; exit 1; fi; \
	done

# Regenerate the committed seed corpora from the schema.
fuzz-seeds: $(BUILD)/bin/seeds
	$(BUILD)/bin/seeds tests/fuzz/corpus

$(BUILD)/bin/seeds: $(BUILD)/obj/tests/fuzz/seeds.o $(PB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LIBS)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	        grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	    echo "make deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	    echo "make deps: missing Debian packages:$$missing"; \
	    echo "  install them with: sudo apt-get install -y$$missing"; \
	    exit 1; \
	fi

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BROKER) $(AGENT) $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(CLI) $(VERIFY) $(DESTDIR)$(BINDIR)/
	install -m 0755 certs/ehx-pki $(DESTDIR)$(SBINDIR)/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ehx-broker $(DESTDIR)$(SBINDIR)/ehx-agent \
	    $(DESTDIR)$(SBINDIR)/ehx-pki $(DESTDIR)$(BINDIR)/ehx \
	    $(DESTDIR)$(BINDIR)/ehx-auditverify
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
