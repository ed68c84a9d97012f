# ringlb build. `make` builds build/ringlb; see README.md for the rest.
#
# Variants build into their own folders with libc malloc (jemalloc and the
# sanitizers both want to own the heap):
#   make asan | ubsan | tsan      -> build-asan/ build-ubsan/ build-tsan/
#   make test-asan ...            -> that variant's unit + integration tests

CC       ?= gcc
BUILD    ?= build
SAN      ?=
PKG_CONFIG ?= pkg-config

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wundef -Wnull-dereference
# gcc only (clang has no such warning); make's default CC is "cc".
ifneq ($(findstring Free Software,$(shell $(CC) --version 2>/dev/null)),)
WARN     += -Wduplicated-cond
endif
ifeq ($(WERROR),1)
WARN     += -Werror
endif

OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=gnu11 -D_GNU_SOURCE -pthread -fno-strict-aliasing $(WARN) -MMD -MP
LDFLAGS  += -pthread

# libcrypto: the database checks' hashes, HMAC, PBKDF2 and RSA (health/).
PKGS     := liburing inih jansson libcrypto
ifeq ($(SAN),)
PKGS     += jemalloc
else
# SAN names the build (asan, ubsan, tsan) or gives -fsanitize= as is.
SAN_asan  := address,undefined
SAN_ubsan := undefined
SAN_tsan  := thread
CFLAGS   += -fno-omit-frame-pointer -fno-sanitize-recover=all
CFLAGS   += -fsanitize=$(or $(SAN_$(SAN)),$(SAN))
LDFLAGS  += -fsanitize=$(or $(SAN_$(SAN)),$(SAN))
endif

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)
CFLAGS   += $(PKG_CFLAGS)

# Everything but main() goes into one archive; unit tests link against it,
# so each test binary pulls in only the objects its module references, and a
# fake given as an object file overrides the archive member.
LIB_SRCS := $(filter-out core/main.c,$(wildcard core/*.c balancers/*.c health/*.c config/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libringlb.a

BENCH_SRCS := $(wildcard bench/*.c)
UNIT_SRCS  := $(wildcard test/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:test/unit/%.c=$(BUILD)/test/%)

.PHONY: all deps run test unit integration bench asan ubsan tsan test-asan test-ubsan \
        test-tsan format format-check fuzz clean

all: $(BUILD)/ringlb $(BENCH_SRCS:bench/%.c=$(BUILD)/%)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ringlb: $(BUILD)/obj/core/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/%: $(BUILD)/obj/bench/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/test/%: $(BUILD)/obj/test/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS) -lm

$(BUILD)/obj/test/unit/%.o: test/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CMOCKA_CFLAGS) -c -o $@ $<

deps:
	@.ci/deps build

run: deps all
	bench/demo.sh $(BUILD)/ringlb lb.ini

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do \
	    echo "== $$t"; $$t || fail=1; \
	done; exit $$fail

# TESTS="test_a test_b" runs only those (MODES= picks modes, see run.sh).
integration: all
	RINGLB=$(BUILD)/ringlb test/integration/run.sh $(TESTS)

test: deps
	$(MAKE) unit
	$(MAKE) integration

bench: all
	@.ci/deps bench
	bench/compare.sh

asan ubsan tsan:
	$(MAKE) BUILD=build-$@ SAN=$@ all $(UNIT_BINS:$(BUILD)/%=build-$@/%)

# The high-availability topologies (test/ha/: keepalived VRRP, BIRD BGP
# ECMP) in network namespaces: needs root (skips with exit 77 otherwise);
# as root, .ci/deps ha installs keepalived, bird2 and curl when missing.
.PHONY: test-ha
test-ha: all
	@[ "$$(id -u)" -ne 0 ] || .ci/deps ha
	RINGLB=$(BUILD)/ringlb test/ha/run.sh

test-asan test-ubsan test-tsan:
	$(MAKE) BUILD=build-$(@:test-%=%) SAN=$(@:test-%=%) OPT=-O1 unit integration

# libFuzzer drivers (clang): make fuzz runs each, make fuzz-NAME one.
# FUZZ_TIME=seconds per driver; new inputs go to build-fuzz/corpus-NAME so
# the committed seed corpus (test/fuzz/corpus/NAME) stays small. A crash, a
# sanitizer report, a leak or one input running past FUZZ_INPUT_TIMEOUT
# seconds (a parser that loops) makes the driver exit non-zero, so make fuzz
# fails; the input that did it is written to build-fuzz/ (crash-*, leak-*,
# timeout-*) and replays with build-fuzz/fuzz_NAME FILE.
FUZZ_TIME ?= 60
FUZZ_INPUT_TIMEOUT ?= 10
FUZZ_NAMES := $(patsubst test/fuzz/fuzz_%.c,%,$(wildcard test/fuzz/fuzz_*.c))
# What each driver links besides itself.
FUZZ_SRCS_config := $(wildcard config/*.c) core/log.c core/log_syslog.c -linih
FUZZ_SRCS_admin := core/admin_parse.c config/values.c
FUZZ_SRCS_redis := health/redis.c
FUZZ_SRCS_fault := core/fault_json.c config/values.c -ljansson
FUZZ_SRCS_upgrade := core/upgrade_msg.c
FUZZ_SRCS_pgsql := health/pgsql.c health/dbwire.c -lcrypto
FUZZ_SRCS_mysql := health/mysql.c health/dbwire.c -lcrypto
FUZZ_SRCS_sni := core/sni.c
FUZZ_SRCS_proxy := core/proxy_proto.c
FUZZ_SRCS_scenario := bench/ringbench/scenario.c bench/ringbench/args.c bench/ringbench/hist.c \
                      config/values.c -lm
.PHONY: $(FUZZ_NAMES:%=fuzz-%)
fuzz: $(FUZZ_NAMES:%=fuzz-%)
$(FUZZ_NAMES:%=fuzz-%): fuzz-%: test/fuzz/fuzz_%.c
	@mkdir -p build-fuzz/corpus-$*
	clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fno-omit-frame-pointer \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    $(filter-out -Wduplicated-cond,$(WARN)) \
	    -o build-fuzz/fuzz_$* $< $(FUZZ_SRCS_$*)
	build-fuzz/fuzz_$* -max_total_time=$(FUZZ_TIME) -max_len=20000 \
	    -timeout=$(FUZZ_INPUT_TIMEOUT) -artifact_prefix=build-fuzz/ \
	    build-fuzz/corpus-$* test/fuzz/corpus/$*

FMT_SRCS = $(wildcard core/*.[ch] balancers/*.[ch] health/*.[ch] config/*.[ch] bench/*.[ch] \
                      test/unit/*.[ch] test/fuzz/*.[ch])
format:
	clang-format -i $(FMT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FMT_SRCS)

clean:
	rm -rf build build-asan build-ubsan build-tsan build-fuzz

# ---- ringbench (issue 5): build/ringbench from bench/ringbench/*.c ----------
# Everything but main.c goes into build/libringbench.a, so the unit tests of
# its pure parts (test/unit/test_hist.c, test_ringbench_*.c) link it before
# libringlb.a.
RB_SRCS  := $(wildcard bench/ringbench/*.c)
RB_LIB   := $(BUILD)/libringbench.a
RB_TESTS := $(filter $(BUILD)/test/test_hist $(BUILD)/test/test_ringbench_%,$(UNIT_BINS))
FMT_SRCS += $(wildcard bench/ringbench/*.[ch])

all: $(BUILD)/ringbench

$(RB_LIB): $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out %/main.c,$(RB_SRCS)))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ringbench: $(BUILD)/obj/bench/ringbench/main.o $(RB_LIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(RB_TESTS): $(BUILD)/test/%: $(BUILD)/obj/test/unit/%.o $(RB_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS) -lm

# make chaos: every bench/chaos/*.scn (SCENARIOS="a b" for some), one after
# the other (a minute or two each), into bench/results/chaos.md and its
# plots in bench/results/chaos/.
.PHONY: chaos
chaos: all
	bench/chaos/run-all.sh $(BUILD)/ringbench $(BUILD)/ringlb bench/results/chaos \
	    $(foreach s,$(SCENARIOS),bench/chaos/$(s).scn)

.PHONY: bench-ringbench
bench-ringbench: all
	@.ci/deps bench
	bench/compare-ringbench.sh
# ---- end ringbench ----------------------------------------------------------

# ---- bench-libs (issue 18): libraries vs hand-written code ------------------
# make bench-libs builds bench/libs/*.c into $(BUILD)/bench-libs and runs
# bench/libs/run.sh (see bench/libs/README.md). The programs link the
# libraries they compare (liburcu-qsbr, libmicrohttpd, libsystemd: .ci/deps
# bench-libs installs them) and never jemalloc: json_bench counts malloc.
BL       := $(BUILD)/bench-libs
BL_CC     = $(CC) $(OPT) -g -std=gnu11 -D_GNU_SOURCE -pthread $(WARN)
BL_BINS  := $(addprefix $(BL)/,qsbr_bench json_bench mhd_admin http_probe sdnotify_hand \
                                sdnotify_lib)
FMT_SRCS += $(wildcard bench/libs/*.c)

.PHONY: bench-libs
bench-libs:
	@.ci/deps bench-libs
	$(MAKE) $(BUILD)/ringlb $(BL_BINS)
	bench/libs/run.sh $(BUILD)

$(BL)/qsbr_bench: bench/libs/qsbr_bench.c core/qsbr.c core/qsbr.h
	@mkdir -p $(dir $@)
	$(BL_CC) -o $@ $(filter %.c,$^) $(shell $(PKG_CONFIG) --cflags --libs liburcu-qsbr)

$(BL)/json_bench: bench/libs/json_bench.c $(LIB)
	@mkdir -p $(dir $@)
	$(BL_CC) -o $@ $^ $(shell $(PKG_CONFIG) --libs liburing inih jansson) -lm

$(BL)/mhd_admin: bench/libs/mhd_admin.c
	@mkdir -p $(dir $@)
	$(BL_CC) -o $@ $< $(shell $(PKG_CONFIG) --cflags --libs libmicrohttpd)

$(BL)/http_probe: bench/libs/http_probe.c
	@mkdir -p $(dir $@)
	$(BL_CC) -o $@ $<

$(BL)/sdnotify_hand: bench/libs/sdnotify_bench.c core/sdnotify.c core/sdnotify.h
	@mkdir -p $(dir $@)
	$(BL_CC) -o $@ $(filter %.c,$^)

$(BL)/sdnotify_lib: bench/libs/sdnotify_bench.c core/sdnotify.c core/sdnotify.h
	@mkdir -p $(dir $@)
	$(BL_CC) -DWITH_LIBSYSTEMD -o $@ $(filter %.c,$^) \
	    $(shell $(PKG_CONFIG) --cflags --libs libsystemd)
# ---- end bench-libs ---------------------------------------------------------

# ---- install (issue 6) -------------------------------------------------------
# make install PREFIX=/usr/local DESTDIR=  installs the binaries, the systemd
# unit (paths filled in), the man pages and the sample config. An existing
# $(SYSCONFDIR)/ringlb/lb.ini is never overwritten: the sample always goes
# next to it as lb.ini.sample. It installs what $(BUILD) holds (run make
# first, or let it build).
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system

.PHONY: install uninstall
install: $(BUILD)/ringlb $(BUILD)/ringbench
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/ringlb
	install -m 755 $(BUILD)/ringlb $(DESTDIR)$(SBINDIR)/ringlb
	install -m 755 $(BUILD)/ringbench $(DESTDIR)$(BINDIR)/ringbench
	install -m 644 man/ringlb.8 $(DESTDIR)$(MANDIR)/man8/ringlb.8
	install -m 644 man/ringlb.ini.5 $(DESTDIR)$(MANDIR)/man5/ringlb.ini.5
	install -m 644 man/ringbench.1 $(DESTDIR)$(MANDIR)/man1/ringbench.1
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' ringlb.service \
	    > $(DESTDIR)$(UNITDIR)/ringlb.service
	chmod 644 $(DESTDIR)$(UNITDIR)/ringlb.service
	install -m 644 lb.ini $(DESTDIR)$(SYSCONFDIR)/ringlb/lb.ini.sample
	[ -e $(DESTDIR)$(SYSCONFDIR)/ringlb/lb.ini ] || \
	    install -m 644 lb.ini $(DESTDIR)$(SYSCONFDIR)/ringlb/lb.ini

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ringlb $(DESTDIR)$(BINDIR)/ringbench \
	    $(DESTDIR)$(MANDIR)/man8/ringlb.8 $(DESTDIR)$(MANDIR)/man5/ringlb.ini.5 \
	    $(DESTDIR)$(MANDIR)/man1/ringbench.1 $(DESTDIR)$(UNITDIR)/ringlb.service $(DESTDIR)$(SYSCONFDIR)/ringlb/lb.ini.sample

# Every man page formats without a groff warning (what test_cli_install.py
# checks on the installed copies).
.PHONY: man-check
man-check:
	@for p in man/*.[0-9]; do \
	    out=$$(groff -ww -man -Tutf8 -z $$p 2>&1); \
	    if [ -n "$$out" ]; then echo "$$p: $$out"; exit 1; fi; \
	done; echo "man pages format without warnings"
# ---- end install -------------------------------------------------------------

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
