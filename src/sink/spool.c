/*
 * spool.c: the on-disk row journal (format, fsync policy and bounds are in
 * spool.h).
 *
 * State: the list of segments on disk (oldest first; the writer appends to
 * the last one while it is open), a writer and a reader, each with at most
 * one uv_fs request in flight. The writer turns the pending buffer into one
 * write at a time (rows appended meanwhile gather in the next buffer), syncs
 * at most once per sync_ms, rolls a segment past segment_bytes and closes
 * (seals) the open segment once the reader has caught up with it, so that
 * the consumed file can be deleted. The reader reads the oldest segment in
 * chunks, but only bytes whose write has completed, decodes one record at a
 * time and hands its rows out through spool_peek()/spool_pop(); when a
 * sealed segment is read to its end it is closed and marked read_done. A
 * third request deletes read_done segments from the front once released
 * (at once, unless opts.manual_release).
 */
#include "sink/spool.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

#define READ_CHUNK ((size_t)256 << 10)
#define RBUF_MAX ((size_t)SPOOL_RECORD_MAX + SPOOL_HEADER + READ_CHUNK)
#define RETRY_MS 1000

/* --- pure helpers ------------------------------------------------------ */

static uint32_t crc_table[256];
static int crc_ready;

uint32_t spool_crc32c(uint32_t crc, const void *data, size_t len) {
  const unsigned char *p = data;
  if (!crc_ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      crc_table[i] = c;
    }
    crc_ready = 1;
  }
  crc = ~crc;
  while (len--)
    crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static uint32_t get_u32(const char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

long spool_record_check(const char *p, size_t avail) {
  uint32_t magic = SPOOL_MAGIC, len, crc;
  const char *body, *at, *end;
  /* A prefix that already differs from the magic is corrupt at once. */
  if (memcmp(p, &magic, avail < 4 ? avail : 4))
    return BL_ECORRUPT;
  if (avail < SPOOL_HEADER)
    return 0;
  len = get_u32(p + 4);
  crc = get_u32(p + 8);
  if (len < 1 + 4 || len > SPOOL_RECORD_MAX)
    return BL_ECORRUPT;
  if (avail < SPOOL_HEADER + (size_t)len)
    return 0;
  body = p + SPOOL_HEADER;
  if (spool_crc32c(0, body, len) != crc)
    return BL_ECORRUPT;
  /* The rows must tile the body exactly. */
  at = body + 1;
  end = body + len;
  while (at < end) {
    uint32_t rl;
    if (end - at < 4)
      return BL_ECORRUPT;
    rl = get_u32(at);
    if (rl > (size_t)(end - at) - 4)
      return BL_ECORRUPT;
    at += 4 + rl;
  }
  return (long)(SPOOL_HEADER + len);
}

int spool_seg_name(uint32_t id, char *out, size_t cap) {
  int n = snprintf(out, cap, "spool-%08" PRIu32 ".log", id);
  return n < 0 || (size_t)n >= cap ? BL_EINVAL : 0;
}

/* Parses "spool-NNNNNNNN.log"; 0 if it is not one. */
static uint32_t seg_parse(const char *name) {
  char *end;
  unsigned long v;
  if (strncmp(name, "spool-", 6) || strlen(name) != 6 + 8 + 4 ||
      strcmp(name + 14, ".log"))
    return 0;
  for (int i = 6; i < 14; i++)
    if (name[i] < '0' || name[i] > '9')
      return 0;
  v = strtoul(name + 6, &end, 10);
  if (end != name + 14 || v == 0 || v > UINT32_MAX)
    return 0;
  return (uint32_t)v;
}

static int seg_path(const struct spool *sp, uint32_t id, char *out,
                    size_t cap) {
  char name[32];
  int n;
  if (spool_seg_name(id, name, sizeof name))
    return BL_EINVAL;
  n = snprintf(out, cap, "%s/%s", sp->dir, name);
  return n < 0 || (size_t)n >= cap ? BL_EINVAL : 0;
}

/* --- segments ---------------------------------------------------------- */

static int seg_push(struct spool *sp, uint32_t id, uint64_t size, int sealed) {
  if (sp->nsegs == sp->capsegs) {
    int cap = sp->capsegs ? sp->capsegs * 2 : 16;
    struct spool_seg *n = realloc(sp->segs, (size_t)cap * sizeof *n);
    if (!n)
      return BL_ENOMEM;
    sp->segs = n;
    sp->capsegs = cap;
  }
  sp->segs[sp->nsegs].id = id;
  sp->segs[sp->nsegs].size = size;
  sp->segs[sp->nsegs].sealed = sealed;
  sp->segs[sp->nsegs].read_done = 0;
  sp->nsegs++;
  sp->disk_bytes += size;
  return 0;
}

/* The segment the reader works on: the oldest not read to its end. */
static struct spool_seg *r_seg(struct spool *sp) {
  for (int i = 0; i < sp->nsegs; i++)
    if (!sp->segs[i].read_done)
      return &sp->segs[i];
  return NULL;
}

static struct spool_seg *seg_find(struct spool *sp, uint32_t id) {
  for (int i = 0; i < sp->nsegs; i++)
    if (sp->segs[i].id == id)
      return &sp->segs[i];
  return NULL;
}

static void seg_pop_front(struct spool *sp) {
  sp->disk_bytes -= sp->segs[0].size;
  memmove(sp->segs, sp->segs + 1, (size_t)(sp->nsegs - 1) * sizeof *sp->segs);
  sp->nsegs--;
}

static int seg_cmp(const void *a, const void *b) {
  uint32_t x = ((const struct spool_seg *)a)->id;
  uint32_t y = ((const struct spool_seg *)b)->id;
  return x < y ? -1 : x > y;
}

/* --- state ------------------------------------------------------------- */

static void w_kick(struct spool *sp);
static void r_kick(struct spool *sp);
static void maybe_closed(struct spool *sp);

int spool_is_empty(const struct spool *sp) {
  for (int i = 0; i < sp->nsegs; i++)
    if (!sp->segs[i].read_done)
      return 0;
  return !sp->pend.len && sp->fly_off == sp->fly.len && !sp->have_rec;
}

static void d_done(uv_fs_t *req);

/* Deletes the oldest segment once it is read to its end and released. */
static void gc(struct spool *sp) {
  char path[600];
  if (sp->dbusy || sp->closed || !sp->nsegs || !sp->segs[0].read_done ||
      sp->segs[0].id > sp->release_upto ||
      seg_path(sp, sp->segs[0].id, path, sizeof path))
    return;
  sp->dbusy = 1;
  sp->dreq.data = sp;
  uv_fs_unlink(sp->loop, &sp->dreq, path, d_done);
}

void spool_release(struct spool *sp, uint32_t upto) {
  if (upto == UINT32_MAX) { /* every segment read so far */
    upto = 0;
    for (int i = 0; i < sp->nsegs; i++)
      if (sp->segs[i].read_done)
        upto = sp->segs[i].id;
  }
  sp->release_upto = upto;
  gc(sp);
}

uint32_t spool_peek_seg(const struct spool *sp) {
  return sp->have_rec ? sp->rseg : 0;
}

uint64_t spool_bytes(const struct spool *sp) {
  return sp->disk_bytes + sp->pend.len + (sp->fly.len - sp->fly_off);
}

/* After every completed request: move on, and tell the consumer when it
 * has something to do. */
static void after_io(struct spool *sp) {
  if (sp->closing) {
    w_kick(sp);
    gc(sp);
    maybe_closed(sp);
    return;
  }
  w_kick(sp);
  r_kick(sp);
  gc(sp);
  if (sp->on_ready && (sp->have_rec || spool_is_empty(sp)))
    sp->on_ready(sp);
}

static void io_error(struct spool *sp, const char *what, ssize_t rv) {
  sp->stats.io_errors++;
  log_limited(BL_LOG_ERROR, "spool", "%s in %s: %s", what, sp->dir,
              bl_strerror((int)rv));
}

/* --- writer ------------------------------------------------------------ */

static void seal_open_record(struct spool *sp) {
  char *h;
  uint32_t len, crc;
  if (sp->open_rec == (size_t)-1)
    return;
  h = sp->pend.data + sp->open_rec;
  len = (uint32_t)(sp->pend.len - sp->open_rec - SPOOL_HEADER);
  crc = spool_crc32c(0, h + SPOOL_HEADER, len);
  memcpy(h + 4, &len, 4);
  memcpy(h + 8, &crc, 4);
  sp->open_rec = (size_t)-1;
  sp->stats.records_written++;
}

static int reader_caught_up(const struct spool *sp) {
  const struct spool_seg *s = sp->nsegs ? &sp->segs[sp->nsegs - 1] : NULL;
  return s && !s->sealed && sp->rfd >= 0 && sp->rseg == s->id && !sp->rbusy &&
         sp->roff == s->size && !sp->have_rec && sp->rpos == sp->rbuf.len;
}

static void w_done(uv_fs_t *req);

static void w_write(struct spool *sp) {
  sp->wbuf = uv_buf_init(sp->fly.data + sp->fly_off,
                         (unsigned)(sp->fly.len - sp->fly_off));
  sp->wbusy = 1;
  sp->wreq.data = sp;
  uv_fs_write(sp->loop, &sp->wreq, sp->wfd, &sp->wbuf, 1,
              (int64_t)sp->segs[sp->nsegs - 1].size, w_done);
}

static int rolling(const struct spool *sp) {
  const struct spool_seg *s = sp->nsegs ? &sp->segs[sp->nsegs - 1] : NULL;
  return sp->wfd >= 0 && s && s->size > 0 &&
         s->size + sp->pend.len > sp->opts.segment_bytes;
}

static void w_kick(struct spool *sp) {
  uint64_t now;
  int roll;
  if (sp->wbusy || sp->closed)
    return;
  now = uv_now(sp->loop);
  if (now < sp->hold_until_ms && !sp->closing)
    return;
  sp->wreq.data = sp;
  if (sp->fly_off < sp->fly.len) { /* the rest of a short write */
    w_write(sp);
    return;
  }
  buf_reset(&sp->fly);
  sp->fly_off = 0;
  roll = rolling(sp);
  if (sp->pend.len && !roll) {
    if (sp->wfd < 0) {
      char path[600];
      uint32_t id = sp->next_id;
      if (seg_path(sp, id, path, sizeof path))
        return;
      sp->wbusy = 1;
      uv_fs_open(sp->loop, &sp->wreq, path,
                 O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, w_done);
      return;
    }
    seal_open_record(sp);
    {
      struct buf t = sp->fly;
      sp->fly = sp->pend;
      sp->pend = t;
    }
    w_write(sp);
    return;
  }
  if (sp->wfd >= 0 && sp->unsynced &&
      (sp->closing || roll || now - sp->last_sync_ms >= sp->opts.sync_ms)) {
    sp->wbusy = 1;
    uv_fs_fdatasync(sp->loop, &sp->wreq, sp->wfd, w_done);
    return;
  }
  if (sp->wfd >= 0 && (sp->closing || roll || reader_caught_up(sp))) {
    sp->wbusy = 1;
    uv_fs_close(sp->loop, &sp->wreq, sp->wfd, w_done);
    return;
  }
}

static void w_done(uv_fs_t *req) {
  struct spool *sp = req->data;
  ssize_t rv = req->result;
  uv_fs_type type = req->fs_type;
  uv_fs_req_cleanup(req);
  sp->wbusy = 0;
  switch (type) {
  case UV_FS_OPEN:
    if (rv < 0) {
      io_error(sp, "cannot create a segment", rv);
      sp->hold_until_ms = uv_now(sp->loop) + RETRY_MS;
      break;
    }
    if (seg_push(sp, sp->next_id, 0, 0)) {
      uv_fs_t c;
      uv_fs_close(NULL, &c, (uv_file)rv, NULL);
      uv_fs_req_cleanup(&c);
      break;
    }
    sp->next_id++;
    sp->wfd = (uv_file)rv;
    break;
  case UV_FS_WRITE:
    if (rv < 0) {
      io_error(sp, "write failed", rv);
      sp->hold_until_ms = uv_now(sp->loop) + RETRY_MS;
      break;
    }
    sp->fly_off += (size_t)rv;
    sp->segs[sp->nsegs - 1].size += (uint64_t)rv;
    sp->disk_bytes += (uint64_t)rv;
    sp->stats.bytes_written += (uint64_t)rv;
    if (!sp->unsynced)
      sp->last_sync_ms = uv_now(sp->loop); /* the clock starts now */
    sp->unsynced += (uint64_t)rv;
    break;
  case UV_FS_FDATASYNC:
    if (rv < 0)
      io_error(sp, "fdatasync failed", rv);
    sp->stats.syncs++;
    sp->unsynced = 0;
    sp->last_sync_ms = uv_now(sp->loop);
    break;
  case UV_FS_CLOSE:
    if (rv < 0)
      io_error(sp, "close failed", rv);
    sp->wfd = -1;
    sp->unsynced = 0;
    if (sp->nsegs)
      sp->segs[sp->nsegs - 1].sealed = 1;
    break;
  default:
    break;
  }
  if (sp->closing && sp->hold_until_ms > uv_now(sp->loop)) {
    /* An I/O error while closing: do not retry forever. */
    size_t lost = sp->pend.len + (sp->fly.len - sp->fly_off);
    if (lost)
      log_error("spool", "%zu buffered bytes not written at shutdown", lost);
    buf_reset(&sp->pend);
    buf_reset(&sp->fly);
    sp->fly_off = 0;
    sp->open_rec = (size_t)-1;
    sp->hold_until_ms = 0;
  }
  after_io(sp);
}

int spool_append(struct spool *sp, int table, const void *row, size_t len) {
  uint32_t rl = (uint32_t)len;
  size_t need = 4 + len;
  int fresh;
  if (sp->closing)
    return BL_ESTATE;
  if (len > SPOOL_RECORD_MAX - 1 - 4)
    return BL_ETOOBIG;
  fresh = sp->open_rec == (size_t)-1 || sp->open_table != table ||
          sp->pend.len - sp->open_rec + need > SPOOL_RECORD_TARGET;
  if (fresh)
    need += SPOOL_HEADER + 1;
  if (spool_bytes(sp) + need > sp->opts.max_bytes ||
      sp->pend.len + need > sp->opts.buffer_bytes) {
    sp->stats.rows_refused++;
    log_limited(BL_LOG_ERROR, "spool",
                "spool full (%" PRIu64 " of %" PRIu64
                " bytes, %zu buffered): row refused, %" PRIu64
                " refused so far",
                spool_bytes(sp), sp->opts.max_bytes, sp->pend.len,
                sp->stats.rows_refused);
    return BL_EFULL;
  }
  if (buf_reserve(&sp->pend, need))
    return BL_ENOMEM;
  if (fresh) {
    char h[SPOOL_HEADER + 1];
    uint32_t magic = SPOOL_MAGIC;
    seal_open_record(sp);
    memset(h, 0, sizeof h);
    memcpy(h, &magic, 4);
    h[SPOOL_HEADER] = (char)(unsigned char)table;
    sp->open_rec = sp->pend.len;
    sp->open_table = table;
    buf_append(&sp->pend, h, sizeof h);
  }
  buf_append(&sp->pend, &rl, 4);
  buf_append(&sp->pend, row, len);
  sp->stats.rows_in++;
  w_kick(sp);
  return 0;
}

/* --- reader ------------------------------------------------------------ */

static void skip_end(struct spool *sp, int at_tail) {
  char name[32];
  if (!sp->skipping)
    return;
  spool_seg_name(sp->rseg, name, sizeof name);
  sp->stats.corrupt_bytes += sp->skipping;
  if (at_tail) {
    sp->stats.torn_tails++;
    log_warn("spool",
             "torn or corrupt tail of %" PRIu64 " bytes skipped at offset "
             "%" PRIu64 " of %s",
             sp->skipping, sp->skip_from, name);
  } else {
    log_warn("spool",
             "%" PRIu64 " corrupt bytes skipped at offset %" PRIu64
             " of %s; replay goes on at the next valid record",
             sp->skipping, sp->skip_from, name);
  }
  sp->skipping = 0;
}

/* Finds the next record in rbuf, skipping corrupt bytes. |eof|: no more
 * bytes will come for this segment. */
static void r_decode(struct spool *sp, int eof) {
  uint32_t magic = SPOOL_MAGIC;
  while (!sp->have_rec && sp->rpos < sp->rbuf.len) {
    size_t avail = sp->rbuf.len - sp->rpos;
    long r = spool_record_check(sp->rbuf.data + sp->rpos, avail);
    const char *from, *next;
    if (r > 0) {
      skip_end(sp, 0);
      sp->have_rec = 1;
      sp->rec_end = sp->rpos + (size_t)r;
      sp->row_pos = sp->rpos + SPOOL_HEADER + 1;
      sp->stats.records_replayed++;
      return;
    }
    if (r == 0 && !eof)
      return;
    /* Corrupt here: go on at the next byte that could start a magic. */
    if (!sp->skipping)
      sp->skip_from = sp->roff - avail;
    from = sp->rbuf.data + sp->rpos + 1;
    next = memchr(from, ((const char *)&magic)[0], sp->rbuf.len - sp->rpos - 1);
    if (!next)
      next = sp->rbuf.data + sp->rbuf.len;
    sp->skipping += (uint64_t)(next - (sp->rbuf.data + sp->rpos));
    sp->rpos = (size_t)(next - sp->rbuf.data);
  }
  if (eof && sp->rpos == sp->rbuf.len)
    skip_end(sp, 1);
}

static int seg_eof(struct spool *sp) {
  const struct spool_seg *s = r_seg(sp);
  return s && sp->rfd >= 0 && sp->rseg == s->id && s->sealed &&
         sp->roff == s->size;
}

static void r_done(uv_fs_t *req);

static void r_kick(struct spool *sp) {
  struct spool_seg *s;
  char path[600];
  if (sp->rbusy || sp->closing || sp->have_rec)
    return;
  r_decode(sp, seg_eof(sp));
  s = r_seg(sp);
  if (sp->have_rec || !s)
    return;
  sp->rreq.data = sp;
  if (sp->rfd < 0 || sp->rseg != s->id) {
    if (sp->rfd >= 0) { /* cannot happen: a segment is dropped closed */
      sp->rbusy = 1;
      uv_fs_close(sp->loop, &sp->rreq, sp->rfd, r_done);
      return;
    }
    if (seg_path(sp, s->id, path, sizeof path))
      return;
    sp->rseg = s->id;
    sp->roff = 0;
    buf_reset(&sp->rbuf);
    sp->rpos = 0;
    sp->skipping = 0;
    sp->rbusy = 1;
    uv_fs_open(sp->loop, &sp->rreq, path, O_RDONLY | O_CLOEXEC, 0, r_done);
    return;
  }
  if (sp->roff < s->size) {
    size_t want = READ_CHUNK;
    if (s->size - sp->roff < want)
      want = (size_t)(s->size - sp->roff);
    buf_consume(&sp->rbuf, sp->rpos);
    sp->rpos = 0;
    if (buf_reserve(&sp->rbuf, want)) {
      /* A record longer than the buffer cannot be valid: skip it. */
      sp->skip_from = sp->roff - sp->rbuf.len;
      sp->skipping += sp->rbuf.len;
      buf_reset(&sp->rbuf);
      if (buf_reserve(&sp->rbuf, want))
        return;
    }
    sp->rbufv = uv_buf_init(sp->rbuf.data + sp->rbuf.len, (unsigned)want);
    sp->rbusy = 1;
    uv_fs_read(sp->loop, &sp->rreq, sp->rfd, &sp->rbufv, 1, (int64_t)sp->roff,
               r_done);
    return;
  }
  if (!s->sealed) {
    w_kick(sp); /* seals it if the writer has nothing more */
    return;
  }
  /* Sealed and read to its end, every record consumed: close it; it is
   * deleted once released. */
  sp->rbusy = 1;
  uv_fs_close(sp->loop, &sp->rreq, sp->rfd, r_done);
}

static void r_done(uv_fs_t *req) {
  struct spool *sp = req->data;
  ssize_t rv = req->result;
  uv_fs_type type = req->fs_type;
  struct spool_seg *cur = seg_find(sp, sp->rseg);
  uv_fs_req_cleanup(req);
  sp->rbusy = 0;
  switch (type) {
  case UV_FS_OPEN:
    if (rv < 0) {
      io_error(sp, "cannot open a segment for replay", rv);
      if (rv == UV_ENOENT && cur && cur->sealed)
        cur->read_done = 1; /* gone: gc drops it */
      else
        sp->hold_until_ms = uv_now(sp->loop) + RETRY_MS;
      break;
    }
    sp->rfd = (uv_file)rv;
    break;
  case UV_FS_READ:
    if (rv == 0 && cur && cur->sealed) {
      /* Shorter than when it was scanned: it ends here. */
      sp->disk_bytes -= cur->size - sp->roff;
      cur->size = sp->roff;
      break;
    }
    if (rv <= 0) {
      io_error(sp, "read failed", rv ? rv : UV_EIO);
      break;
    }
    sp->rbuf.len += (size_t)rv;
    sp->rbuf.data[sp->rbuf.len] = '\0';
    sp->roff += (uint64_t)rv;
    break;
  case UV_FS_CLOSE: {
    struct spool_seg *s = seg_find(sp, sp->rseg);
    sp->rfd = -1;
    if (!sp->closing && s && s->sealed && sp->roff == s->size &&
        !sp->have_rec && sp->rpos == sp->rbuf.len) {
      s->read_done = 1;
      buf_reset(&sp->rbuf);
      sp->rpos = 0;
      sp->roff = 0;
    }
    break;
  }
  default:
    break;
  }
  after_io(sp);
}

static void d_done(uv_fs_t *req) {
  struct spool *sp = req->data;
  ssize_t rv = req->result;
  uv_fs_req_cleanup(req);
  sp->dbusy = 0;
  if (rv < 0 && rv != UV_ENOENT)
    io_error(sp, "cannot delete a consumed segment", rv);
  if (sp->nsegs && sp->segs[0].read_done)
    seg_pop_front(sp);
  after_io(sp);
}

int spool_peek(struct spool *sp, int *table, const char **row, size_t *len) {
  const char *at;
  if (!sp->have_rec) {
    r_kick(sp);
    if (!sp->have_rec)
      return BL_ENOTFOUND;
  }
  at = sp->rbuf.data + sp->row_pos;
  *table = (unsigned char)sp->rbuf.data[sp->rpos + SPOOL_HEADER];
  *len = get_u32(at);
  *row = at + 4;
  return 0;
}

void spool_pop(struct spool *sp) {
  if (!sp->have_rec)
    return;
  sp->row_pos += 4 + get_u32(sp->rbuf.data + sp->row_pos);
  sp->stats.rows_replayed++;
  if (sp->row_pos >= sp->rec_end) {
    sp->rpos = sp->rec_end;
    sp->have_rec = 0;
    r_kick(sp);
  }
}

/* --- lifecycle --------------------------------------------------------- */

static void sp_tick(uv_timer_t *t) {
  after_io(t->data);
}

static int mkdir_one(const char *path) {
  uv_fs_t req;
  int rv = uv_fs_mkdir(NULL, &req, path, 0755, NULL);
  uv_fs_req_cleanup(&req);
  return rv == UV_EEXIST ? 0 : rv;
}

static int make_dir(const char *dir) {
  char parent[512];
  const char *slash;
  int rv = mkdir_one(dir);
  if (rv != UV_ENOENT)
    return rv;
  slash = strrchr(dir, '/');
  if (!slash || slash == dir || (size_t)(slash - dir) >= sizeof parent)
    return rv;
  memcpy(parent, dir, (size_t)(slash - dir));
  parent[slash - dir] = '\0';
  rv = make_dir(parent);
  return rv ? rv : mkdir_one(dir);
}

static int scan(struct spool *sp) {
  uv_fs_t req;
  uv_dirent_t ent;
  uint32_t max_id = 0;
  int rv = uv_fs_scandir(NULL, &req, sp->dir, 0, NULL);
  if (rv < 0) {
    uv_fs_req_cleanup(&req);
    return rv;
  }
  while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
    uint32_t id = seg_parse(ent.name);
    char path[600];
    uv_fs_t st;
    if (!id || seg_path(sp, id, path, sizeof path))
      continue;
    if (uv_fs_stat(NULL, &st, path, NULL) == 0) {
      if (seg_push(sp, id, (uint64_t)st.statbuf.st_size, 1)) {
        uv_fs_req_cleanup(&st);
        uv_fs_req_cleanup(&req);
        return BL_ENOMEM;
      }
      if (id > max_id)
        max_id = id;
    }
    uv_fs_req_cleanup(&st);
  }
  uv_fs_req_cleanup(&req);
  if (sp->nsegs > 1)
    qsort(sp->segs, (size_t)sp->nsegs, sizeof *sp->segs, seg_cmp);
  sp->next_id = max_id + 1;
  return 0;
}

int spool_open(uv_loop_t *loop, struct spool *sp, const struct spool_opts *opts,
               spool_cb on_ready) {
  uv_fs_t req;
  int rv, n;
  memset(sp, 0, sizeof *sp);
  sp->loop = loop;
  sp->wfd = -1;
  sp->rfd = -1;
  sp->open_rec = (size_t)-1;
  sp->on_ready = on_ready;
  sp->release_upto = UINT32_MAX;
  if (!opts || !opts->dir || !opts->dir[0])
    return BL_EINVAL;
  sp->opts = *opts;
  n = snprintf(sp->dir, sizeof sp->dir, "%s", opts->dir);
  if (n < 0 || (size_t)n >= sizeof sp->dir - 32)
    return BL_EINVAL;
  sp->opts.dir = sp->dir;
  if (sp->opts.manual_release)
    sp->release_upto = 0;
  if (!sp->opts.max_bytes)
    sp->opts.max_bytes = (uint64_t)1 << 30;
  if (!sp->opts.segment_bytes)
    sp->opts.segment_bytes = (uint64_t)64 << 20;
  if (!sp->opts.buffer_bytes)
    sp->opts.buffer_bytes = (size_t)4 << 20;
  if (!sp->opts.sync_ms)
    sp->opts.sync_ms = 1000;
  buf_init(&sp->pend, sp->opts.buffer_bytes + SPOOL_HEADER + 8);
  buf_init(&sp->fly, sp->opts.buffer_bytes + SPOOL_HEADER + 8);
  buf_init(&sp->rbuf, RBUF_MAX);
  rv = make_dir(sp->dir);
  if (!rv) {
    rv = uv_fs_access(NULL, &req, sp->dir, W_OK | R_OK | X_OK, NULL);
    uv_fs_req_cleanup(&req);
  }
  if (!rv)
    rv = scan(sp);
  if (!rv)
    rv = uv_timer_init(loop, &sp->timer);
  if (rv) {
    free(sp->segs);
    sp->segs = NULL;
    sp->nsegs = 0;
    return rv;
  }
  sp->timer.data = sp;
  sp->timer_open = 1;
  {
    uint64_t every = sp->opts.sync_ms < 250 ? sp->opts.sync_ms : 250;
    uv_timer_start(&sp->timer, sp_tick, every, every);
  }
  if (sp->nsegs)
    log_warn("spool",
             "%d segments with %" PRIu64 " bytes found in %s: replaying "
             "them before new rows",
             sp->nsegs, sp->disk_bytes, sp->dir);
  return 0;
}

static void timer_closed(uv_handle_t *h) {
  struct spool *sp = h->data;
  sp->timer_open = 0;
  maybe_closed(sp);
}

static void maybe_closed(struct spool *sp) {
  spool_cb cb;
  if (!sp->closing || sp->closed || sp->wbusy || sp->rbusy || sp->dbusy)
    return;
  if (sp->wfd >= 0 || sp->pend.len || sp->fly_off < sp->fly.len)
    return; /* the writer is still at work */
  if (sp->rfd >= 0) {
    sp->rbusy = 1;
    sp->rreq.data = sp;
    uv_fs_close(sp->loop, &sp->rreq, sp->rfd, r_done);
    return;
  }
  if (sp->timer_open) {
    if (!uv_is_closing((uv_handle_t *)&sp->timer))
      uv_close((uv_handle_t *)&sp->timer, timer_closed);
    return;
  }
  sp->closed = 1;
  buf_free(&sp->pend);
  buf_free(&sp->fly);
  buf_free(&sp->rbuf);
  free(sp->segs);
  sp->segs = NULL;
  sp->nsegs = 0;
  cb = sp->close_cb;
  sp->close_cb = NULL;
  if (cb)
    cb(sp);
}

void spool_close(struct spool *sp, spool_cb cb) {
  if (sp->closing)
    return;
  sp->closing = 1;
  sp->close_cb = cb;
  sp->hold_until_ms = 0;
  w_kick(sp);
  maybe_closed(sp);
}

void spool_collect(struct buf *out, void *arg) {
  const struct spool *sp = arg;
  const struct spool_stats *s = &sp->stats;
  metrics_family(out, "binance_live_spool_bytes", "gauge",
                 "Bytes in the spool (on disk and buffered).");
  metrics_sample_u64(out, "binance_live_spool_bytes", NULL, spool_bytes(sp));
  metrics_family(out, "binance_live_spool_rows_total", "counter",
                 "Rows through the spool: written (accepted), replayed, "
                 "refused because it was full.");
  metrics_sample_u64(out, "binance_live_spool_rows_total", "op=\"written\"",
                     s->rows_in);
  metrics_sample_u64(out, "binance_live_spool_rows_total", "op=\"replayed\"",
                     s->rows_replayed);
  metrics_sample_u64(out, "binance_live_spool_rows_total", "op=\"refused\"",
                     s->rows_refused);
  metrics_family(out, "binance_live_spool_records_total", "counter",
                 "Spool records written and replayed.");
  metrics_sample_u64(out, "binance_live_spool_records_total", "op=\"written\"",
                     s->records_written);
  metrics_sample_u64(out, "binance_live_spool_records_total", "op=\"replayed\"",
                     s->records_replayed);
  metrics_family(out, "binance_live_spool_corrupt_bytes_total", "counter",
                 "Bytes skipped while replaying (corrupt records, torn "
                 "tails).");
  metrics_sample_u64(out, "binance_live_spool_corrupt_bytes_total", NULL,
                     s->corrupt_bytes);
  metrics_family(out, "binance_live_spool_io_errors_total", "counter",
                 "Spool file operations that failed.");
  metrics_sample_u64(out, "binance_live_spool_io_errors_total", NULL,
                     s->io_errors);
}
