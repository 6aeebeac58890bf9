/*
 * fuzz_ws_handshake.c: libFuzzer target for the I/O-free WebSocket pieces:
 * ws_handshake_parse_response, ws_handshake_parse_request and ws_url_parse
 * on arbitrary bytes. Not built by make; by hand from the repo root:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     t/fuzz/fuzz_ws_handshake.c src/net/ws_proto.c src/core/buf.c \
 *     src/core/err.c -luv -lmbedcrypto -o build-fuzz/fuzz_ws_handshake
 *   build-fuzz/fuzz_ws_handshake -max_total_time=60 -max_len=20000
 *
 * `make fuzz` (t/fuzz/run) builds, seeds and runs it from the fuzz-*
 * lines below; the command above is the same build by hand.
 */
/* fuzz-build: -D_GNU_SOURCE src/net/ws_proto.c src/core/buf.c */
/* fuzz-build: src/core/err.c -luv -lmbedcrypto */
/* fuzz-run: -max_len=20000 */
/* fuzz-seed: handshake t/data/parse/BINANCE.ws.1.0 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "net/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An exact-size heap copy so ASan sees any read past the end. */
  char *buf = malloc(size ? size : 1);
  char *str = malloc(size + 1);
  struct ws_http_request req;
  struct ws_url url;
  int status;
  long n;

  if (buf == NULL || str == NULL)
    abort();
  memcpy(buf, data, size);
  n = ws_handshake_parse_response(buf, size,
                                  "dGhlIHNhbXBsZSBub25jZQ==", &status);
  if (n > 0 && ((size_t)n > size || status != 101))
    abort();
  if (n < 0 && n != BL_EHANDSHAKE && n != BL_EPARSE && n != BL_ETOOBIG)
    abort();
  n = ws_handshake_parse_request(buf, size, &req);
  if (n > 0) {
    if ((size_t)n > size || memchr(req.method, 0, sizeof req.method) == NULL ||
        memchr(req.path, 0, sizeof req.path) == NULL ||
        memchr(req.key, 0, sizeof req.key) == NULL)
      abort();
    if (req.is_upgrade && strlen(req.key) != 24)
      abort();
  }
  memcpy(str, data, size);
  str[size] = '\0';
  if (ws_url_parse(str, &url) == 0) {
    if (url.port < 1 || url.port > 65535 || url.host[0] == '\0' ||
        url.path[0] != '/')
      abort();
  }
  free(buf);
  free(str);
  return 0;
}
