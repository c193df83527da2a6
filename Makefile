# blockd top-level Makefile.  Out-of-tree objects go to $(BUILD) (default
# build/); `make BUILD=build-foo` keeps a separate tree (configure runs
# automatically with --builddir when $(BUILD)/config.mak is missing).
#
# Sources are found by wildcard, so new files need no Makefile edit:
#   util/ block/ nbd/ monitor/ qapi/*.c and top-level *.c (job.c, blockdev.c...)
#   tools/*.c storage-daemon/*.c (except the program mains)  -> libblockd.a
#   storage-daemon/blockd.c tools/blockd-img.c tools/blockd-io.c -> programs
#   tests/unit/test-*.c -> one Check binary each
#   qapi/*.json -> $(BUILD)/qapi/*.{c,h} via scripts/qapi-gen.py

BUILD ?= build
SRC := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

.DEFAULT_GOAL := all

ifeq ($(filter clean distclean help,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(BUILD)/config.mak),)
$(shell ./configure --builddir=$(BUILD) $(CONFIGURE_FLAGS) >&2)
endif
include $(BUILD)/config.mak
endif

WARN_CFLAGS := -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare -Wundef \
	-Wstrict-prototypes -Wold-style-definition -Wtype-limits \
	-Wformat-security -Wvla
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -fno-common \
	$(OPT_CFLAGS) $(SAN_CFLAGS) $(WARN_CFLAGS) \
	-I$(BUILD) -I$(BUILD)/qapi -Iinclude -I. $(DEP_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(SAN_LDFLAGS) $(LDFLAGS)

PROGRAM_MAINS := storage-daemon/blockd.c tools/blockd-img.c tools/blockd-io.c
PROGRAMS := $(patsubst %.c,$(BUILD)/%,$(notdir $(wildcard $(PROGRAM_MAINS))))

# ---- QAPI code generation -------------------------------------------------
# The main schema also emits the builtin-type lists (qapi-builtin-*, -b);
# the test schema (prefix "test-") reuses them.
QAPI_SCHEMA := $(wildcard qapi/*.json)
QAPI_MAIN := qapi/blockd.json
QAPI_PY := $(wildcard scripts/qapi/*.py) scripts/qapi-gen.py
# One qapi-commands-MOD.c per schema module (qapi/MOD.json): programs
# register the modules they implement with qmp_init_marshal_MOD().
QAPI_MODULES := $(basename $(notdir $(QAPI_SCHEMA)))
QAPI_GEN_C := $(if $(wildcard $(QAPI_MAIN)),$(addprefix $(BUILD)/qapi/,\
	qapi-types.c qapi-visit.c qapi-commands.c qapi-events.c qapi-introspect.c \
	qapi-builtin-types.c qapi-builtin-visit.c \
	$(foreach m,$(QAPI_MODULES),qapi-commands-$(m).c)))
QAPI_GEN_H := $(QAPI_GEN_C:.c=.h)

$(BUILD)/qapi/.stamp: $(QAPI_SCHEMA) $(QAPI_PY)
	@mkdir -p $(BUILD)/qapi
	python3 scripts/qapi-gen.py -b -o $(BUILD)/qapi --doc docs/qmp-reference.md $(QAPI_MAIN)
	@touch $@
$(QAPI_GEN_C) $(QAPI_GEN_H): $(BUILD)/qapi/.stamp ;

# Test schema -> $(BUILD)/tests/qapi/test-qapi-*; linked only into the
# tests/unit/test-qapi-* binaries (as an archive, so a test that does not
# use the commands need not define their handlers); they include
# "tests/qapi/test-qapi-*.h".
TEST_QAPI_SCHEMA := $(wildcard tests/qapi-schema/*.json tests/qapi-schema/*/*.json)
TEST_QAPI_GEN_C := $(if $(QAPI_GEN_C),$(if $(TEST_QAPI_SCHEMA),\
	$(addprefix $(BUILD)/tests/qapi/test-qapi-,\
	types.c visit.c commands.c events.c introspect.c \
	$(foreach m,$(basename $(notdir $(TEST_QAPI_SCHEMA))),commands-$(m).c))))
TEST_QAPI_GEN_H := $(TEST_QAPI_GEN_C:.c=.h)
TEST_QAPI_OBJS := $(TEST_QAPI_GEN_C:.c=.o)
TEST_QAPI_UNIT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/unit/test-qapi-*.c))

$(BUILD)/tests/qapi/.stamp: $(TEST_QAPI_SCHEMA) $(QAPI_PY)
	@mkdir -p $(BUILD)/tests/qapi
	python3 scripts/qapi-gen.py -p test- -o $(BUILD)/tests/qapi tests/qapi-schema/qapi-schema-test.json
	@touch $@
$(TEST_QAPI_GEN_C) $(TEST_QAPI_GEN_H): $(BUILD)/tests/qapi/.stamp ;
$(BUILD)/tests/qapi/%.o: $(BUILD)/tests/qapi/%.c $(BUILD)/config.mak | $(QAPI_GEN_H) $(TEST_QAPI_GEN_H)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<
$(TEST_QAPI_UNIT_OBJS): | $(TEST_QAPI_GEN_H)
TEST_QAPI_LIB := $(BUILD)/tests/qapi/libtestqapi.a
$(TEST_QAPI_LIB): $(TEST_QAPI_OBJS)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/tests/unit/test-qapi-%: $(BUILD)/tests/unit/test-qapi-%.o $(TEST_QAPI_LIB) $(BUILD)/libblockd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_QAPI_LIB) $(LIB) $(DEP_LIBS) $(CHECK_LIBS)

# ---- library ---------------------------------------------------------------
LIB_SRCS := $(wildcard util/*.c block/*.c nbd/*.c monitor/*.c qapi/*.c \
	$(wildcard *.c) tools/*.c storage-daemon/*.c)
LIB_SRCS := $(filter-out $(PROGRAM_MAINS),$(LIB_SRCS))
LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS)) \
	$(patsubst %.c,%.o,$(QAPI_GEN_C))
LIB := $(BUILD)/libblockd.a

$(BUILD)/%.o: %.c $(BUILD)/config.mak | $(QAPI_GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/qapi/%.o: $(BUILD)/qapi/%.c $(BUILD)/config.mak | $(QAPI_GEN_H)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%: $(BUILD)/storage-daemon/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)
$(BUILD)/%: $(BUILD)/tools/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

# ---- unit tests ------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_TESTS := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRCS))

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(DEP_LIBS) $(CHECK_LIBS)

.PRECIOUS: $(BUILD)/%.o $(BUILD)/tests/unit/%.o $(BUILD)/bench/%.o

# ---- targets ---------------------------------------------------------------
.PHONY: all check check-unit check-iotests check-sanitize check-stress \
	check-conformance demo bench deps install clean distclean help

all: $(PROGRAMS) $(UNIT_TESTS) $(LIB)

deps:
	scripts/install-deps.sh

check: deps all
	@scripts/run-checks.sh $(BUILD)

check-unit: all
	@scripts/run-checks.sh --unit $(BUILD)

check-iotests: all
	@scripts/run-checks.sh --iotests $(BUILD)

check-sanitize:
	@[ -f build-sanitize/config.mak ] || ./configure --builddir=build-sanitize --enable-sanitizers
	$(MAKE) BUILD=build-sanitize check

check-stress: deps all
	@scripts/run-checks.sh --stress $(BUILD)

# QEMU 7.2.0's own iotests against blockd-img/blockd-io (needs QEMU_GIT_DIR)
check-conformance: all
	@scripts/check-conformance.sh $(BUILD)

demo: deps all
	@scripts/demo.sh $(BUILD)

# bench/*.c are benchmark programs (not part of `all`); bench/*.sh drive
# them and the daemons side by side.
BENCH_PROGS := $(patsubst %.c,$(BUILD)/%,$(wildcard bench/*.c))
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

bench: deps all $(BENCH_PROGS)
	@scripts/bench.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf $(BUILD)

distclean:
	rm -rf build build-*

help:
	@echo "make [BUILD=dir]       build programs, library and unit tests"
	@echo "make check             install deps, build, run unit tests + quick iotests"
	@echo "make check-unit        unit tests only"
	@echo "make check-iotests     quick iotests only"
	@echo "make check-sanitize    ASan+UBSan build in build-sanitize/, run check"
	@echo "make check-stress      long randomized stress tests"
	@echo "make check-conformance QEMU 7.2.0's iotests vs blockd-img/-io (QEMU_GIT_DIR=...)"
	@echo "make demo              run the main job on a generated disk"
	@echo "make bench             side-by-side benchmarks (bench/)"

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
