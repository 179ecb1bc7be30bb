# vse - one non-recursive GNU Makefile (see docs/internals/build.md).
#
#   make            build/libvse.a, build/libvse.so, build/vsectl,
#                   build/vsed, build/vse-load (the load harness)
#   make run        vsed --all-in-one (api, scheduler, one volume host on
#                   ./var/pool, reaper) on sqlite:./var/vse.db, in the
#                   foreground, with etc/vsed-dev.yaml (loopback, noauth)
#   make example    the worked example, live, on sqlite:./var/vse.db
#   make check      install what is missing, check the layout (check-style),
#                   build with -Werror, run every test; then again under
#                   AddressSanitizer + UBSan
#   make format     apply .clang-format to the C sources (scripts/format.sh)
#   make bench      vse against raw SQLite, same SQL, same run
#
# Top-level targets first make sure the Debian packages are there
# (scripts/deps.sh, a no-op when they are), then re-enter make so that
# pkg-config sees them.

BUILD   ?= build
OPT     ?= -O2 -g
SAN     ?=
PKGS    := sqlite3 libfyaml jansson libpq
TESTPKGS := cmocka
# vsed (HTTP server, token hashes) and vsectl --url (HTTP client) only.
SVCPKGS := libmicrohttpd nettle libcurl

ifeq ($(VSE_DEPS_OK),)
# ---- entry points: install dependencies, then re-enter -----------------
.DEFAULT_GOAL := all
.PHONY: all run example check check-asan check-style bench bench-http deps \
        clean tests docs format
all run example check check-asan bench bench-http tests docs check-style:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory VSE_DEPS_OK=1 $@
deps:
	@scripts/deps.sh
clean:
	rm -rf build
# Needs only clang-format (scripts/deps.sh installs it with the rest).
format:
	scripts/format.sh
else
# ---- the real build ------------------------------------------------------
.DEFAULT_GOAL := all
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lm
TEST_LIBS  := $(shell pkg-config --libs $(TESTPKGS))
SVC_CFLAGS := $(shell pkg-config --cflags $(SVCPKGS))
SVC_LIBS   := $(shell pkg-config --libs $(SVCPKGS)) -lpthread

# Messages are cut to fixed buffers on purpose (struct vse_error), hence
# -Wno-format-truncation.
CFLAGS  := -std=c17 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Werror \
           -Wno-unused-parameter -Wno-format-truncation -fPIC -Iinclude -Isrc/lib -Isrc/store \
           -Isrc/common -Isrc/driver $(PKG_CFLAGS) $(SVC_CFLAGS) $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN) $(EXTRA_LDFLAGS)

LIB_SRC    := $(sort $(wildcard src/lib/*.c src/store/*.c))
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
VSECTL_SRC := $(sort $(wildcard src/vsectl/*.c))
VSECTL_OBJ := $(VSECTL_SRC:%.c=$(BUILD)/obj/%.o)
COMMON_SRC := $(sort $(wildcard src/common/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
VSED_SRC   := $(sort $(wildcard src/vsed/*.c src/driver/*.c))
VSED_OBJ   := $(VSED_SRC:%.c=$(BUILD)/obj/%.o)
LOAD_SRC   := $(sort $(wildcard src/load/*.c))
LOAD_OBJ   := $(LOAD_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC   := $(sort $(wildcard tests/unit/test-*.c tests/store/test-*.c))
UNIT_BIN   := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(UNIT_SRC)))
HELPER_SRC := $(sort $(wildcard tests/integration/*.c))
HELPER_BIN := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(HELPER_SRC)))
BENCH_SRC  := $(sort $(wildcard bench/*.c))
BENCH_BIN  := $(patsubst %.c,$(BUILD)/bench/%,$(notdir $(BENCH_SRC)))

.PHONY: all run check check-asan check-style bench tests docs
all: $(BUILD)/libvse.a $(BUILD)/libvse.so $(BUILD)/vsectl $(BUILD)/vsed \
     $(BUILD)/vse-load

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The built-in machines are compiled in from machines/*.yaml.
$(BUILD)/obj/src/lib/builtin.o: $(wildcard machines/*.yaml)
# vsed's own machine (heartbeats), compiled in the same way.

$(BUILD)/libvse.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libvse.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libvse.so.0 $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# vsectl check --pool reads pools with the driver's own naming.
$(BUILD)/vsectl: $(VSECTL_OBJ) $(COMMON_OBJ) $(BUILD)/obj/src/driver/driver.o \
                 $(BUILD)/libvse.a
	$(CC) $(LDFLAGS) -o $@ $(VSECTL_OBJ) $(COMMON_OBJ) \
	    $(BUILD)/obj/src/driver/driver.o $(BUILD)/libvse.a \
	    $(PKG_LIBS) $(SVC_LIBS)

$(BUILD)/vsed: $(VSED_OBJ) $(COMMON_OBJ) $(BUILD)/libvse.a
	$(CC) $(LDFLAGS) -o $@ $(VSED_OBJ) $(COMMON_OBJ) $(BUILD)/libvse.a \
	    $(PKG_LIBS) $(SVC_LIBS)

# The load harness speaks HTTP only: libcurl and jansson, no libvse.
$(BUILD)/vse-load: $(LOAD_OBJ)
	$(CC) $(LDFLAGS) -o $@ $(LOAD_OBJ) $(shell pkg-config --libs jansson) \
	    $(SVC_LIBS)

# The driver is vsed's, not libvse's: its test links it directly.
$(BUILD)/tests/test-driver: tests/unit/test-driver.c src/driver/driver.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $^ $(TEST_LIBS) $(LDFLAGS)
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libvse.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libvse.a $(PKG_LIBS) $(TEST_LIBS) $(LDFLAGS)
$(BUILD)/tests/%: tests/store/%.c $(BUILD)/libvse.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libvse.a $(PKG_LIBS) $(TEST_LIBS) $(LDFLAGS)
$(BUILD)/tests/%: tests/integration/%.c $(BUILD)/libvse.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libvse.a $(PKG_LIBS) $(LDFLAGS)
$(BUILD)/bench/%: bench/%.c $(BUILD)/libvse.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libvse.a $(PKG_LIBS) $(LDFLAGS)

# The libFuzzer target over vsed's request path needs clang; it is
# always built with ASan+UBSan (tests/integration/t-vsed-fuzz.sh).
FUZZ_SRC := tests/fuzz/fuzz-api.c src/vsed/api-v1.c src/vsed/metrics.c \
            src/vsed/auth.c src/vsed/config.c $(COMMON_SRC) $(LIB_SRC)
$(BUILD)/tests/fuzz-api: $(FUZZ_SRC) $(wildcard machines/*.yaml)
	@mkdir -p $(dir $@)
	clang -std=c17 -D_GNU_SOURCE -g -O1 -Iinclude -Isrc/lib -Isrc/store \
	    -Isrc/common -Isrc/vsed $(PKG_CFLAGS) $(SVC_CFLAGS) \
	    -fsanitize=fuzzer,address,undefined -o $@ $(FUZZ_SRC) \
	    $(PKG_LIBS) $(SVC_LIBS)

tests: all $(UNIT_BIN) $(HELPER_BIN) $(BENCH_BIN) $(BUILD)/tests/fuzz-api

ASAN := SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" OPT="-O1 -g"

# The layout is checked first, before anything is built, so that it fails
# fast; then the build and the tests.
check: check-style
	$(MAKE) --no-print-directory tests
	tests/run.sh $(BUILD)
	$(MAKE) --no-print-directory BUILD=build/asan $(ASAN) check-asan

check-asan: tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh $(BUILD)

check-style:
	scripts/format.sh --check

run: all
	@mkdir -p var
	exec $(BUILD)/vsed --all-in-one --config etc/vsed-dev.yaml

example: all
	scripts/example.sh $(BUILD)

bench-http: all
	bench/http.sh $(BUILD)

bench: all $(BENCH_BIN)
	bench/compare-sqlite.sh $(BUILD)

docs: all
	scripts/render-docs.sh $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
endif
