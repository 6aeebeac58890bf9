# binance-live build.
#
# Sources are found by wildcard: every src/*/*.c goes into build/libbl.a, which
# the binary, the unit tests (t/unit/test_*.c, one binary each), the mock
# exchange (t/mock/*.c) and the fuzz targets link against. Adding a module or a
# test needs no edit here.
#
#   make build     the collector and the mock exchange
#   make test      install missing packages, build, run every test (t/run)
#   make asan      the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make run       install, build, start local servers if needed, collect
#   make demo      collect from the bundled mock exchange, offline

PKGS     := libuv libcurl libpq hiredis yajl yaml-0.1
BUILD    ?= build
CC       ?= cc
OPT      ?= -O2
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wpointer-arith -Wwrite-strings -Wvla -Wundef \
        -Wold-style-definition -Wnull-dereference -Werror

CFLAGS  := -std=gnu11 -g $(OPT) $(WARN) -D_GNU_SOURCE -Isrc \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) \
           -lwslay -lmbedtls -lmbedx509 -lmbedcrypto -lm
LDFLAGS := $(EXTRA_LDFLAGS)

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRCS   := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS  := $(wildcard t/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:t/unit/%.c=$(BUILD)/t/%)
MOCK_SRCS  := $(wildcard t/mock/*.c)
MOCK_OBJS  := $(MOCK_SRCS:%.c=$(BUILD)/%.o)
TOOL_SRCS  := $(wildcard t/tools/*.c)
TOOL_BINS  := $(TOOL_SRCS:t/tools/%.c=$(BUILD)/t/%)
BENCH_SRCS := $(wildcard t/bench/*.c)
BENCH_BINS := $(BENCH_SRCS:t/bench/%.c=$(BUILD)/t/%)

BIN  := $(BUILD)/binance-live
MOCK := $(BUILD)/binance-mock
LIB  := $(BUILD)/libbl.a

.PHONY: all build test unit asan run demo deps bench fuzz soak fmt lint \
        init docker-up docker-down docker-logs-app dev clean

all: build
build: $(BIN) $(MOCK) $(UNIT_BINS) $(TOOL_BINS) $(BENCH_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ifneq ($(MOCK_OBJS),)
$(MOCK): $(MOCK_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
else
$(MOCK):
	@true
endif

# A unit test may #include the .c under test to reach its statics; it then
# links against the library objects other than that one.
$(BUILD)/t/test_%: $(BUILD)/t/unit/test_%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/t/%: $(BUILD)/t/tools/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/t/%: $(BUILD)/t/bench/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@deps/install.sh

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@BUILD=$(BUILD) t/run $(T)

unit: build
	@BUILD=$(BUILD) t/run --unit

asan: deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-asan SAN=1 OPT=-O1 build
	@BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 t/run $(T)

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@BUILD=$(BUILD) t/lib/run-local.sh run

demo: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@BUILD=$(BUILD) t/lib/run-local.sh demo

bench: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@BUILD=$(BUILD) t/bench/run

fuzz:
	@t/fuzz/run

soak: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@BUILD=$(BUILD) t/bench/soak

fmt:
	clang-format -i $(wildcard src/*.c src/*/*.c src/*/*.h t/*/*.c t/*/*.h)

lint:
	@t/lib/lint.sh

init:
	@test -f .env || cp .env.example .env
	@echo ".env is ready; edit it to taste"

docker-up:
	docker compose up -d

docker-down:
	docker compose down

docker-logs-app:
	docker compose logs -f collector

dev:
	docker compose --profile dev up -d

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
