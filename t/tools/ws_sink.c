/*
 * ws_sink.c: a fast loopback WebSocket reader for measuring the mock
 * exchange's throughput (t/mock/README.md). It opens one plain ws://
 * connection to /stream (combined) or /ws (raw), subscribes with one
 * SUBSCRIBE message to the given stream kinds of the mock's first N symbols
 * (btcusdt, ethusdt, sym000usdt, ...), then reads and counts text frames
 * for a while, answering pings. It parses frames itself on a blocking
 * socket so that it costs far less per frame than the mock does.
 *
 *   ws_sink --port P [--host 127.0.0.1] [--symbols N]
 *           [--streams aggTrade,ticker,kline_1m] [--raw] [--seconds S]
 *           [--frames N] [--out FILE]
 *
 * Prints "frames=N bytes=B seconds=S fps=R" (text frames, payload bytes)
 * when S seconds passed or N frames arrived; --out writes every text
 * payload followed by '\n'. Exit status: 0, 1 on errors (connect, bad
 * answer, server close).
 *
 * State: locals of main; the read buffer is one static array.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

#define RD_SIZE (1u << 20)

static unsigned char rd[2 * RD_SIZE];

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Sends one masked client frame. */
static int send_frame(int fd, int opcode, const char *data, size_t len) {
  unsigned char hdr[14];
  static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  size_t h = 0, i;
  char *m;
  int rc;
  hdr[h++] = (unsigned char)(0x80 | opcode);
  if (len < 126) {
    hdr[h++] = (unsigned char)(0x80 | len);
  } else if (len < 65536) {
    hdr[h++] = 0x80 | 126;
    hdr[h++] = (unsigned char)(len >> 8);
    hdr[h++] = (unsigned char)len;
  } else {
    hdr[h++] = 0x80 | 127;
    for (i = 0; i < 8; i++)
      hdr[h++] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
  }
  memcpy(hdr + h, mask, 4);
  h += 4;
  m = malloc(len ? len : 1);
  if (!m)
    return -1;
  for (i = 0; i < len; i++)
    m[i] = (char)(data[i] ^ mask[i & 3]);
  rc = write_all(fd, hdr, h) == 0 && write_all(fd, m, len) == 0 ? 0 : -1;
  free(m);
  return rc;
}

static void sym_lower(int i, char *out, size_t outlen) {
  if (i == 0)
    snprintf(out, outlen, "btcusdt");
  else if (i == 1)
    snprintf(out, outlen, "ethusdt");
  else
    snprintf(out, outlen, "sym%03dusdt", i - 2);
}

static void usage(void) {
  fprintf(stderr, "usage: ws_sink --port P [--host H] [--symbols N] "
                  "[--streams a,b] [--raw] [--seconds S] [--frames N] "
                  "[--out FILE]\n");
  exit(1);
}

static long num_arg(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 0)
    usage();
  return v;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *streams = "aggTrade,ticker,kline_1m";
  const char *out_path = NULL;
  long port = 0, nsym = 200, seconds = 10, max_frames = 0;
  int raw = 0, fd, i, one = 1;
  struct sockaddr_in sa;
  struct buf sub;
  char req[512], name[32];
  size_t have = 0, off = 0;
  uint64_t frames = 0, bytes = 0;
  double t0, t1;
  FILE *out = NULL;
  int done = 0, first = 1;

  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--raw"))
      raw = 1;
    else if (i + 1 >= argc)
      usage();
    else if (!strcmp(argv[i], "--port"))
      port = num_arg(argv[++i]);
    else if (!strcmp(argv[i], "--host"))
      host = argv[++i];
    else if (!strcmp(argv[i], "--symbols"))
      nsym = num_arg(argv[++i]);
    else if (!strcmp(argv[i], "--streams"))
      streams = argv[++i];
    else if (!strcmp(argv[i], "--seconds"))
      seconds = num_arg(argv[++i]);
    else if (!strcmp(argv[i], "--frames"))
      max_frames = num_arg(argv[++i]);
    else if (!strcmp(argv[i], "--out"))
      out_path = argv[++i];
    else
      usage();
  }
  if (port <= 0 || port > 65535)
    usage();
  if (out_path && !(out = fopen(out_path, "w"))) {
    perror(out_path);
    return 1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    usage();
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    perror("connect");
    return 1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: %s:%ld\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: "
           "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
           raw ? "/ws" : "/stream", host, port);
  if (write_all(fd, req, strlen(req)) != 0)
    return 1;
  /* the 101 answer */
  for (;;) {
    ssize_t n = read(fd, rd + have, RD_SIZE - have);
    unsigned char *e;
    if (n <= 0) {
      fprintf(stderr, "ws_sink: no upgrade answer\n");
      return 1;
    }
    have += (size_t)n;
    rd[have] = 0;
    e = (unsigned char *)strstr((char *)rd, "\r\n\r\n");
    if (e) {
      if (strncmp((char *)rd, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "ws_sink: %.*s\n", (int)(e - rd), rd);
        return 1;
      }
      off = (size_t)(e + 4 - rd);
      break;
    }
  }
  /* one SUBSCRIBE for every stream of every symbol */
  buf_init(&sub, 1u << 20);
  buf_append_str(&sub, "{\"method\":\"SUBSCRIBE\",\"params\":[");
  for (i = 0; i < nsym; i++) {
    const char *p = streams;
    sym_lower(i, name, sizeof name);
    while (*p) {
      const char *c = strchr(p, ',');
      size_t l = c ? (size_t)(c - p) : strlen(p);
      buf_printf(&sub, "%s\"%s@%.*s\"", first ? "" : ",", name, (int)l, p);
      first = 0;
      p += l + (c ? 1 : 0);
    }
  }
  buf_append_str(&sub, "],\"id\":1}");
  if (send_frame(fd, 1, sub.data, sub.len) != 0)
    return 1;
  buf_free(&sub);

  t0 = mono_s();
  t1 = t0;
  while (!done) {
    /* parse whole frames in rd[off..have) */
    for (;;) {
      size_t avail = have - off, h = 2;
      uint64_t plen;
      unsigned char *f = rd + off;
      int op;
      if (avail < 2)
        break;
      op = f[0] & 0x0f;
      plen = f[1] & 0x7f;
      if (plen == 126) {
        if (avail < 4)
          break;
        plen = ((uint64_t)f[2] << 8) | f[3];
        h = 4;
      } else if (plen == 127) {
        int j;
        if (avail < 10)
          break;
        plen = 0;
        for (j = 0; j < 8; j++)
          plen = (plen << 8) | f[2 + j];
        h = 10;
      }
      if (plen > RD_SIZE - 16) {
        fprintf(stderr, "ws_sink: frame of %llu bytes\n",
                (unsigned long long)plen);
        return 1;
      }
      if (avail < h + plen)
        break;
      if (op == 1) {
        frames++;
        bytes += plen;
        if (out) {
          fwrite(f + h, 1, plen, out);
          fputc('\n', out);
        }
      } else if (op == 9) {
        send_frame(fd, 10, (const char *)f + h, plen);
      } else if (op == 8) {
        fprintf(stderr, "ws_sink: server closed\n");
        return 1;
      }
      off += h + plen;
      if (max_frames && frames >= (uint64_t)max_frames) {
        done = 1;
        break;
      }
    }
    if (done)
      break;
    if (off > 0) {
      memmove(rd, rd + off, have - off);
      have -= off;
      off = 0;
    }
    {
      ssize_t n = read(fd, rd + have, 2 * RD_SIZE - have);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        fprintf(stderr, "ws_sink: connection ended\n");
        return 1;
      }
      have += (size_t)n;
    }
    t1 = mono_s();
    if (seconds && t1 - t0 >= (double)seconds)
      break;
  }
  t1 = mono_s();
  printf("frames=%llu bytes=%llu seconds=%.3f fps=%.0f\n",
         (unsigned long long)frames, (unsigned long long)bytes, t1 - t0,
         (double)frames / (t1 - t0));
  if (out)
    fclose(out);
  close(fd);
  return 0;
}
