/*
 * spool.h: an append-only on-disk journal of packed rows, kept while
 * PostgreSQL is unreachable and replayed in order when it returns.
 *
 * Files: <dir>/spool-NNNNNNNN.log (8 decimal digits), rolled near
 * segment_bytes. Each holds records:
 *
 *   [magic u32 = SPOOL_MAGIC][len u32][crc32c u32][body: len bytes]
 *   body = [table u8] then rows, each [row_len u32][row bytes]
 *
 * (integers little-endian as the host writes them: x86/arm64.) The CRC
 * (Castagnoli) covers the body. Rows of one table appended one after the
 * other share a record until it reaches SPOOL_RECORD_TARGET bytes, so a
 * burst costs one write, not one per row.
 *
 * Reading checks magic, length and CRC. A bad record is skipped by
 * scanning for the next magic at which a valid record starts; the bytes
 * skipped are logged and counted (corrupt_bytes). A record cut short at
 * the end of a segment (power loss, kill -9 mid-write) is a torn tail:
 * skipped with a log line, everything before it is replayed. After a
 * start the writer never appends to an old segment: it opens a new one.
 *
 * I/O: all file work after spool_open() goes through uv_fs_* with
 * callbacks (libuv's threadpool): one writer request and one reader
 * request at most in flight, so writes stay in order. spool_open() itself
 * creates the directory and scans it with synchronous uv_fs calls
 * (loop NULL, no callback): call it before uv_run(), like config loading.
 *
 * Fsync policy: fdatasync on the segment being written at most once per
 * sync_ms (default 1 s) while unsynced bytes exist, before a segment is
 * rolled (closed), and at spool_close(). A crash of the process (kill -9)
 * loses only the rows still in the in-memory buffer (not yet written);
 * a power loss may lose up to sync_ms of written rows as well. The
 * directory itself is not fsynced after a segment is created.
 *
 * Bounds: the bytes on disk plus the bytes buffered never exceed
 * max_bytes; past it spool_append() refuses the row (BL_EFULL), counts it
 * and logs (rate-limited): the oldest data is kept. The write buffer is
 * bounded by buffer_bytes (refusal the same way while a slow disk
 * catches up). Fully consumed segments are deleted (with manual_release,
 * only once the consumer released them: see spool_release()).
 */
#ifndef BL_SINK_SPOOL_H
#define BL_SINK_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

#define SPOOL_MAGIC 0x4c4f5053u /* "SPOL" read as bytes on little-endian */
#define SPOOL_HEADER 12u
#define SPOOL_RECORD_TARGET (64u << 10) /* a record is sealed past this */
#define SPOOL_RECORD_MAX (16u << 20)    /* longest valid body */

struct spool_opts {
  const char *dir;        /* created if missing (with its parents) */
  uint64_t max_bytes;     /* 0: 1 GiB */
  uint64_t segment_bytes; /* 0: 64 MiB */
  size_t buffer_bytes;    /* in-memory write buffer; 0: 4 MiB */
  unsigned sync_ms;       /* 0: 1000 */
  int manual_release;     /* segments read to their end are deleted only once
                             spool_release() covers them */
};

struct spool_seg {
  uint32_t id;
  uint64_t size; /* bytes known to be in the file */
  int sealed;    /* no more writes: a short record at its end is torn */
  int read_done; /* read to its end and closed; deleted once released */
};

struct spool_stats {
  uint64_t rows_in;         /* rows accepted by spool_append */
  uint64_t rows_refused;    /* past max_bytes or the buffer */
  uint64_t records_written; /* sealed records handed to the disk */
  uint64_t bytes_written;
  uint64_t records_replayed; /* valid records read back */
  uint64_t rows_replayed;    /* rows popped by the consumer */
  uint64_t corrupt_bytes;    /* skipped while reading (incl. torn tails) */
  uint64_t torn_tails;
  uint64_t syncs;
  uint64_t io_errors;
};

struct spool;
typedef void (*spool_cb)(struct spool *sp);

struct spool {
  void *data; /* the owner's */
  uv_loop_t *loop;
  struct spool_opts opts;
  char dir[512];
  struct spool_seg *segs; /* oldest first; the last one may be open */
  int nsegs, capsegs;
  uint32_t next_id;
  uint64_t disk_bytes; /* sum of segs[].size */
  uv_timer_t timer;    /* fsync pacing, retry after an I/O error */
  int timer_open;

  /* writer */
  uv_fs_t wreq;
  int wbusy;
  uv_file wfd;       /* the last segment's fd when >= 0 */
  struct buf pend;   /* sealed and open records, not yet handed over */
  struct buf fly;    /* being written */
  size_t fly_off;    /* bytes of |fly| already written */
  size_t open_rec;   /* offset in |pend| of the open record, or -1 */
  int open_table;    /* its table */
  uint64_t unsynced; /* bytes written since the last fdatasync */
  uint64_t last_sync_ms;
  uint64_t hold_until_ms; /* after an I/O error: no retry before */
  uv_buf_t wbuf;

  /* reader */
  uv_fs_t rreq;
  int rbusy;
  uv_file rfd;
  uint32_t rseg;      /* id of the segment rfd reads */
  uint64_t roff;      /* bytes of it read into rbuf so far */
  struct buf rbuf;    /* read, not yet consumed */
  size_t rpos;        /* first unconsumed byte */
  int have_rec;       /* a valid record starts at rpos */
  size_t rec_end;     /* its end in rbuf */
  size_t row_pos;     /* next row in it */
  uint64_t skipping;  /* corrupt bytes skipped in the current run */
  uint64_t skip_from; /* segment offset where the run began */
  uv_buf_t rbufv;

  /* deletion */
  uv_fs_t dreq;
  int dbusy;
  uint32_t release_upto; /* segments up to this id may be deleted */

  spool_cb on_ready; /* rows readable again, or the spool became empty */
  spool_cb close_cb;
  int closing;
  int closed;
  struct spool_stats stats;
};

/* Creates |opts->dir| if needed and scans it (synchronously, before
 * uv_run): every segment found is replayed first. |on_ready| (may be NULL)
 * is called from a callback when rows become readable or the spool
 * becomes empty. Returns 0, BL_EINVAL (no dir, too long) or a UV_E* code
 * of mkdir/scandir. */
int spool_open(uv_loop_t *loop, struct spool *sp, const struct spool_opts *opts,
               spool_cb on_ready);

/* Appends one packed row of |table| (0..255). Returns 0, BL_EFULL (past
 * max_bytes or the write buffer: the row was NOT taken; counted and
 * logged), BL_ETOOBIG (a row over SPOOL_RECORD_MAX), BL_ESTATE (closing)
 * or BL_ENOMEM. */
int spool_append(struct spool *sp, int table, const void *row, size_t len);

/* The oldest row not yet popped. Returns 0 with *table, *row (valid until
 * the next spool call) and *len, or BL_ENOTFOUND when none is readable
 * now (a read is started; on_ready follows). */
int spool_peek(struct spool *sp, int *table, const char **row, size_t *len);

/* Drops the row spool_peek() returned. */
void spool_pop(struct spool *sp);

/* The segment id of the row spool_peek() returned (0 if none). */
uint32_t spool_peek_seg(const struct spool *sp);

/* With opts.manual_release: segments with id <= |upto| that are read to
 * their end may be deleted (the consumer has committed their rows); each
 * call replaces the previous bound. UINT32_MAX: the segments read to their
 * end so far (not later ones). Until released, segments stay on disk,
 * count in spool_bytes() and are replayed again after a restart. */
void spool_release(struct spool *sp, uint32_t upto);

/* 1 when no row is left to read: nothing buffered, every segment read to
 * its end (consumed segments may still wait for their release). */
int spool_is_empty(const struct spool *sp);

/* Bytes on disk plus bytes buffered. */
uint64_t spool_bytes(const struct spool *sp);

/* Prometheus families (spool bytes, rows, records, refusals, corruption). */
void spool_collect(struct buf *out, void *arg);

/* Writes what is buffered, fdatasyncs, closes the files and the timer,
 * then calls |cb|. Segments stay on disk for the next start. */
void spool_close(struct spool *sp, spool_cb cb);

/* Pure helpers, exposed for tests. */
uint32_t spool_crc32c(uint32_t crc, const void *data, size_t len);
/* Checks the record at |p| with |avail| bytes. Returns its total length
 * (> 0), 0 when more bytes are needed to tell, or BL_ECORRUPT. */
long spool_record_check(const char *p, size_t avail);
/* The file name of segment |id| ("spool-00000001.log"); 0 or BL_EINVAL. */
int spool_seg_name(uint32_t id, char *out, size_t cap);

#endif
