# munim - plain GNU Makefile with pkg-config.
#
#   make            bin/munim (warnings are errors)
#   make check      install packages, build, unit tests, ASan+UBSan unit tests, end-to-end tests
#   make unit       unit tests            make asan   unit tests under ASan+UBSan
#   make unit-pg    the unit tests that open a store, against PostgreSQL
#                   (MUNIM_TEST_PG=postgresql://USER@HOST:PORT, a role that may create databases)
#   make e2e        end-to-end tests      make tsan   unit tests under ThreadSanitizer
#   make e2e-pg     end-to-end tests against PostgreSQL (MUNIM_E2E_PG=postgresql://USER@HOST:PORT)
#   make fmt / lint     make fuzz   libFuzzer targets (needs clang)
#   make run        the demo: serve + mock BSP on loopback with a demo shop

CC      ?= cc
PKGS    := libmicrohttpd jansson libcurl sqlite3 openssl libpq hiredis
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla -Wimplicit-fallthrough -Werror
OPT     ?= -O2 -g
CFLAGS  += -std=c17 -D_GNU_SOURCE $(OPT) $(WARN) -Isrc $(PKG_CFLAGS) -pthread
LDLIBS  += $(PKG_LIBS) -lm -pthread
BUILD   ?= build
BIN     ?= bin/munim

SRC      := $(sort $(shell find src -name '*.c' ! -name main.c))
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libmunim.a
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all clean check unit unit-pg asan tsan e2e e2e-pg e2e-asan fmt lint run deps fuzz
all: $(BIN)

$(BIN): $(BUILD)/src/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(LIB): $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB) $(LDLIBS) -lcmocka

unit: $(UNIT_BIN)
	@tests/unit/run $(UNIT_BIN)

# the unit tests that open a store (those using a store fixture), each test
# on a fresh database of the server MUNIM_TEST_PG names (tests/run-all
# starts one: scripts/pg-server)
UNIT_PG_SRC := $(shell grep -l -E '(store|erp|send|pg)_fixture\.h' $(UNIT_SRC))
UNIT_PG_BIN := $(UNIT_PG_SRC:tests/unit/%.c=$(BUILD)/tests/%)
unit-pg: $(UNIT_PG_BIN)
	@if [ -z "$$MUNIM_TEST_PG" ]; then \
		echo "make unit-pg: set MUNIM_TEST_PG=postgresql://USER@HOST:PORT (a role that may create databases, no database)" >&2; \
		exit 2; \
	fi
	@tests/unit/run $(UNIT_PG_BIN)

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDLIBS="$(PKG_LIBS) -lm -pthread -fsanitize=address,undefined" unit

tsan:
	$(MAKE) BUILD=build-tsan OPT="-O1 -g -fsanitize=thread" \
		LDLIBS="$(PKG_LIBS) -lm -pthread -fsanitize=thread" unit

# libFuzzer targets (clang): make fuzz FUZZ_SECONDS=60
FUZZ_SECONDS ?= 30
FUZZ_SRC := $(filter-out src/cli/% src/tools/%,$(SRC))
fuzz:
	@mkdir -p build-fuzz
	@for t in envelope command jsonr; do \
		clang -std=c17 -D_GNU_SOURCE -g -O1 -Isrc $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
			-o build-fuzz/fuzz_$$t tests/fuzz/fuzz_$$t.c $(FUZZ_SRC) $(PKG_LIBS) -lm -pthread || exit 1; \
		mkdir -p build-fuzz/corpus-$$t; \
		build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build-fuzz/corpus-$$t \
			$$( [ $$t != command ] && echo tests/unit/data/wa-payloads ) || exit 1; \
	done

e2e: $(BIN)
	@MUNIM_BIN=$(BIN) tests/e2e/run

# the same suite against PostgreSQL: MUNIM_E2E_PG names a superuser and a
# server, without a database (scripts/pg-server start DIR prints a port)
e2e-pg: $(BIN)
	@if [ -z "$$MUNIM_E2E_PG" ]; then \
		echo "make e2e-pg: set MUNIM_E2E_PG=postgresql://USER@HOST:PORT (a superuser, no database)" >&2; \
		exit 2; \
	fi
	@MUNIM_BIN=$(BIN) tests/e2e/run

# the end-to-end suite against a bin/munim built with ASan+UBSan, without
# the long timing drills (outage, surge, kill -9 loops): the plain pass runs
# them, and they take the sanitized pass past the test command's budget
E2E_ASAN_SKIP ?= test_outage_sms_fallback_then_recovery,test_surge_10x,test_kill9_,test_spike_level_pauses_marketing,test_two_bsps_fail_over_and_back,test_held_replies_expire,test_works_through_whatsapp_outage,test_redis_budget_shared
e2e-asan:
	E2E_SKIP="$(E2E_ASAN_SKIP)" $(MAKE) BUILD=build-asan BIN=build-asan/munim OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDLIBS="$(PKG_LIBS) -lm -pthread -fsanitize=address,undefined" e2e

deps:
	@scripts/deps.sh

check:
	@scripts/check

fmt:
	clang-format -i $$(find src tests -name '*.[ch]')

lint:
	clang-format --dry-run --Werror $$(find src tests -name '*.[ch]')
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr -Isrc src

run:
	@scripts/demo

clean:
	rm -rf build build-asan build-tsan bin

-include $(OBJ:.o=.d) $(BUILD)/src/main.d
