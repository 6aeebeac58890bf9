/*
 * fuzz_config.c: libFuzzer target for the configuration loader. Feeds
 * arbitrary bytes to config_load_string() and frees the result; the
 * sanitizers report crashes, leaks and undefined behaviour. Not built by
 * `make build`:
 *
 *   clang -fsanitize=fuzzer,address -Isrc $(pkg-config --cflags yaml-0.1) \
 *     t/fuzz/fuzz_config.c src/core/config.c src/core/log.c \
 *     src/core/err.c src/core/buf.c -lyaml -luv
 *
 * `make fuzz` (t/fuzz/run) builds, seeds and runs it from the fuzz-*
 * lines below; the command above is the same build by hand.
 */
/* fuzz-build: pkg:yaml-0.1 src/core/config.c src/core/log.c src/core/err.c */
/* fuzz-build: src/core/buf.c -lyaml -luv */
/* fuzz-run: -max_len=8192 */
/* fuzz-seed: files t/data/config/*.yaml conf/binance-live.yaml */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct config cfg;
  char err[512];
  int rv;

  rv = config_load_string(&cfg, (const char *)data, size, "fuzz.yaml", NULL,
                          err, sizeof err);
  if (rv == 0) {
    FILE *out = fopen("/dev/null", "w");
    if (out) {
      config_dump_yaml(&cfg, out);
      fclose(out);
    }
  } else if (memchr(err, '\n', strnlen(err, sizeof err))) {
    __builtin_trap(); /* an error is always exactly one line */
  }
  config_free(&cfg);
  log_clear_secrets();
  return 0;
}
