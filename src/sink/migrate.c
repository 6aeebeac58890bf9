/*
 * migrate.c: the schema migrator (see migrate.h).
 *
 * State: the list of files read at start, the step of the fixed script
 * (LOCK, TABLE, LIST, APPLY per pending file, UNLOCK) and the first error
 * result of the query in progress. One query is outstanding at a time, sent
 * with PQsendQuery on a nonblocking connection (simple protocol, because a
 * migration file holds many statements, which pipeline mode forbids);
 * its results are read from the socket's readiness until PQgetResult
 * returns NULL, and then the next step is sent.
 */
#include "sink/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/sha256.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

enum {
  M_INIT = 0,
  M_CONNECTING,
  M_LOCK,
  M_TABLE,
  M_LIST,
  M_APPLY,
  M_UNLOCK,
  M_DONE,
  M_CLOSING,
  M_CLOSED
};

static const char apply_head[] = "BEGIN;\n";

static void migrate_on_io(struct pgconn *pc, int status, int events);

/* ---- pure helpers ---- */

int migrate_name_ok(const char *name) {
  size_t n = strlen(name), i = 0;
  if (n < 6 || strcmp(name + n - 4, ".sql") != 0)
    return 0;
  while (i < n && name[i] >= '0' && name[i] <= '9')
    i++;
  if (i == 0 || name[i] != '_')
    return 0;
  for (; i < n - 4; i++) {
    char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
          (c >= 'A' && c <= 'Z') || c == '_' || c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

int migrate_line_of(const char *sql, size_t len, long pos) {
  long chars = 0;
  int line = 1;
  size_t i;
  if (pos < 1)
    return 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)sql[i];
    if ((c & 0xC0) == 0x80)
      continue; /* a UTF-8 continuation byte is not a character */
    if (++chars == pos)
      return line;
    if (c == '\n')
      line++;
  }
  return 0;
}

void migrate_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char d[32];
  static const char hex[] = "0123456789abcdef";
  int i;
  mbedtls_sha256_ret(data, len, d, 0);
  for (i = 0; i < 32; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[64] = '\0';
}

/* ---- files ---- */

static void free_files(struct migrate *m) {
  int i;
  for (i = 0; i < m->nfiles; i++) {
    free(m->files[i].name);
    free(m->files[i].version);
    free(m->files[i].sql);
  }
  free(m->files);
  m->files = NULL;
  m->nfiles = 0;
}

static int cmp_files(const void *a, const void *b) {
  const struct migrate_file *x = a, *y = b;
  return strcmp(x->name, y->name);
}

static int read_file(struct migrate *m, struct migrate_file *f) {
  char path[960];
  FILE *fp;
  struct stat st;
  size_t got;
  int w = snprintf(path, sizeof(path), "%s/%s", m->opts.dir, f->name);

  if (w < 0 || (size_t)w >= sizeof(path)) {
    snprintf(m->errstr, sizeof(m->errstr), "%s: path too long", f->name);
    return BL_ETOOBIG;
  }
  fp = fopen(path, "rb");
  if (!fp || fstat(fileno(fp), &st) != 0) {
    snprintf(m->errstr, sizeof(m->errstr), "%s: %s", path, strerror(errno));
    if (fp)
      fclose(fp);
    return BL_EIO;
  }
  if (st.st_size < 0 ||
      (unsigned long long)st.st_size > MIGRATE_MAX_FILE_BYTES) {
    snprintf(m->errstr, sizeof(m->errstr), "%s: larger than %u bytes", path,
             MIGRATE_MAX_FILE_BYTES);
    fclose(fp);
    return BL_ETOOBIG;
  }
  f->sql = malloc((size_t)st.st_size + 1);
  if (!f->sql) {
    fclose(fp);
    return BL_ENOMEM;
  }
  got = fread(f->sql, 1, (size_t)st.st_size, fp);
  if (ferror(fp) || got != (size_t)st.st_size) {
    snprintf(m->errstr, sizeof(m->errstr), "%s: read error", path);
    fclose(fp);
    return BL_EIO;
  }
  fclose(fp);
  f->sql[got] = '\0';
  f->len = got;
  if (memchr(f->sql, '\0', got)) {
    snprintf(m->errstr, sizeof(m->errstr), "%s: contains a NUL byte", path);
    return BL_EPARSE;
  }
  migrate_sha256_hex(f->sql, f->len, f->checksum);
  return 0;
}

static int read_dir(struct migrate *m) {
  DIR *d = opendir(m->opts.dir);
  struct dirent *e;
  int rv = 0, i, cap = 0;

  if (!d) {
    int err = errno;
    snprintf(m->errstr, sizeof(m->errstr),
             "cannot open the schema directory %s: %s", m->opts.dir,
             strerror(err));
    return err == ENOENT ? BL_ENOTFOUND : BL_EIO;
  }
  while ((e = readdir(d)) != NULL) {
    struct migrate_file *f;
    if (!migrate_name_ok(e->d_name)) {
      if (e->d_name[0] != '.' && strstr(e->d_name, ".sql"))
        log_warn("migrate", "%s/%s ignored: not named NNN_name.sql",
                 m->opts.dir, e->d_name);
      continue;
    }
    if (m->nfiles == MIGRATE_MAX_FILES) {
      snprintf(m->errstr, sizeof(m->errstr), "%s: more than %d migrations",
               m->opts.dir, MIGRATE_MAX_FILES);
      rv = BL_ETOOBIG;
      break;
    }
    if (m->nfiles == cap) {
      int ncap = cap ? cap * 2 : 16;
      void *p = realloc(m->files, (size_t)ncap * sizeof(*m->files));
      if (!p) {
        rv = BL_ENOMEM;
        break;
      }
      m->files = p;
      cap = ncap;
    }
    f = &m->files[m->nfiles];
    memset(f, 0, sizeof(*f));
    f->name = strdup(e->d_name);
    f->version = f->name ? strndup(e->d_name, strlen(e->d_name) - 4) : NULL;
    m->nfiles++;
    if (!f->name || !f->version) {
      rv = BL_ENOMEM;
      break;
    }
  }
  closedir(d);
  if (rv)
    return rv;
  if (m->nfiles > 1)
    qsort(m->files, (size_t)m->nfiles, sizeof(*m->files), cmp_files);
  for (i = 0; i < m->nfiles; i++) {
    rv = read_file(m, &m->files[i]);
    if (rv)
      return rv;
    m->files[i].pending = 1;
  }
  return 0;
}

/* ---- the script ---- */

static void migrate_finish(struct migrate *m, int status) {
  migrate_done_cb cb = m->done_cb;
  uv_timer_stop(&m->retry);
  if (m->err_res) {
    PQclear(m->err_res);
    m->err_res = NULL;
  }
  pgconn_drop(&m->pc); /* rolls back a failed file, releases the lock */
  m->step = M_DONE;
  m->done_cb = NULL;
  if (cb)
    cb(m, status);
}

static void fail_conn(struct migrate *m, const char *what) {
  snprintf(m->errstr, sizeof(m->errstr), "%s: %s", what,
           m->pc.conn ? PQerrorMessage(m->pc.conn) : "no connection");
  pgconn_oneline(m->errstr);
  migrate_finish(m, BL_EPG);
}

static void flush_and_watch(struct migrate *m) {
  int r = PQflush(m->pc.conn);
  if (r < 0) {
    fail_conn(m, "sending to PostgreSQL failed");
    return;
  }
  if (pgconn_watch(&m->pc, UV_READABLE | (r == 1 ? UV_WRITABLE : 0),
                   migrate_on_io)) {
    snprintf(m->errstr, sizeof(m->errstr), "cannot watch the socket");
    migrate_finish(m, BL_EPG);
  }
}

static void send_sql(struct migrate *m, int step, const char *sql) {
  m->step = step;
  if (!PQsendQuery(m->pc.conn, sql)) {
    fail_conn(m, "cannot send a query");
    return;
  }
  flush_and_watch(m);
}

/* Sends the next pending file, or the unlock when none is left. */
static void next_file(struct migrate *m) {
  struct buf q;
  struct migrate_file *f;
  int rv;

  while (m->cur < m->nfiles && !m->files[m->cur].pending)
    m->cur++;
  if (m->cur >= m->nfiles) {
    send_sql(m, M_UNLOCK, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")");
    return;
  }
  f = &m->files[m->cur];
  log_info("migrate", "applying %s/%s", m->opts.dir, f->name);
  /* The version and checksum are [0-9A-Za-z_.-] (migrate_name_ok, hex), so
   * they need no escaping inside the literals. */
  buf_init(&q, f->len + 512);
  rv = buf_append_str(&q, apply_head);
  if (!rv)
    rv = buf_append(&q, f->sql, f->len);
  if (!rv)
    rv = buf_printf(&q,
                    "\n;\nINSERT INTO schema_migrations(version, checksum) "
                    "VALUES ('%s', '%s');\nCOMMIT;\n",
                    f->version, f->checksum);
  if (rv) {
    buf_free(&q);
    snprintf(m->errstr, sizeof(m->errstr), "%s: %s", f->name, bl_strerror(rv));
    migrate_finish(m, rv);
    return;
  }
  send_sql(m, M_APPLY, q.data);
  buf_free(&q);
}

/* Builds "DIR/FILE:LINE: ERROR: message (SQLSTATE x)" for a failed file. */
static void file_error(struct migrate *m, const struct migrate_file *f,
                       const PGresult *r) {
  const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY);
  const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char *det = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
  const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
  const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
  const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  char where[64] = "";
  long p = pos ? strtol(pos, NULL, 10) : 0;
  long head = (long)(sizeof(apply_head) - 1);
  int line = p > head ? migrate_line_of(f->sql, f->len, p - head) : 0;

  if (line > 0)
    snprintf(where, sizeof(where), ":%d", line);
  snprintf(m->errstr, sizeof(m->errstr),
           "%s/%s%s: %s: %s%s%s%s%s (SQLSTATE %s)", m->opts.dir, f->name, where,
           sev ? sev : "ERROR", msg ? msg : PQresultErrorMessage(r),
           det ? "; " : "", det ? det : "", ctx ? "; context: " : "",
           ctx ? ctx : "", ss ? ss : "?");
  pgconn_oneline(m->errstr);
}

static void compare_recorded(struct migrate *m, const PGresult *r) {
  int i, j, n = PQntuples(r);
  for (i = 0; i < n; i++) {
    const char *v = PQgetvalue(r, i, 0), *c = PQgetvalue(r, i, 1);
    int found = 0;
    for (j = 0; j < m->nfiles; j++) {
      struct migrate_file *f = &m->files[j];
      if (strcmp(f->version, v) != 0)
        continue;
      found = 1;
      f->pending = 0;
      if (strcmp(f->checksum, c) != 0) {
        m->n_changed++;
        log_warn("migrate",
                 "%s/%s changed after it was applied (checksum %.12s..., "
                 "recorded %.12s...); it is not applied again: put changes "
                 "in a new file",
                 m->opts.dir, f->name, f->checksum, c);
      }
    }
    if (!found)
      log_warn("migrate", "migration %s is recorded but has no file in %s", v,
               m->opts.dir);
  }
}

/* The current query returned its last result. */
static void step_done(struct migrate *m) {
  if (m->err_res) {
    if (m->step == M_APPLY)
      file_error(m, &m->files[m->cur], m->err_res);
    else {
      snprintf(m->errstr, sizeof(m->errstr), "migration bookkeeping failed: %s",
               PQresultErrorMessage(m->err_res));
      pgconn_oneline(m->errstr);
    }
    migrate_finish(m, BL_EPG);
    return;
  }
  switch (m->step) {
  case M_LOCK:
    send_sql(m, M_TABLE,
             "CREATE TABLE IF NOT EXISTS schema_migrations ("
             "version text PRIMARY KEY, "
             "applied_at timestamptz NOT NULL DEFAULT now(), "
             "checksum text NOT NULL)");
    break;
  case M_TABLE:
    send_sql(m, M_LIST, "SELECT version, checksum FROM schema_migrations");
    break;
  case M_LIST:
    m->cur = 0;
    next_file(m);
    break;
  case M_APPLY:
    log_info("migrate", "applied %s/%s", m->opts.dir, m->files[m->cur].name);
    m->files[m->cur].pending = 0;
    m->n_applied++;
    m->cur++;
    next_file(m);
    break;
  case M_UNLOCK:
    migrate_finish(m, 0);
    break;
  default:
    break;
  }
}

static void migrate_on_io(struct pgconn *pc, int status, int events) {
  struct migrate *m = pc->data;
  if (status < 0 || (events & UV_READABLE)) {
    if (!PQconsumeInput(pc->conn)) {
      fail_conn(m, "connection to PostgreSQL lost");
      return;
    }
    while (!PQisBusy(pc->conn)) {
      PGresult *r = PQgetResult(pc->conn);
      if (!r) {
        step_done(m);
        return; /* the next query (if any) re-armed the poll */
      }
      if (PQresultStatus(r) == PGRES_FATAL_ERROR && !m->err_res) {
        m->err_res = r;
        continue;
      }
      if (m->step == M_LIST && PQresultStatus(r) == PGRES_TUPLES_OK)
        compare_recorded(m, r);
      PQclear(r);
    }
  }
  flush_and_watch(m);
}

static void migrate_on_connected(struct pgconn *pc, int status);

static void migrate_on_retry(uv_timer_t *t) {
  struct migrate *m = t->data;
  uint64_t spent = uv_now(m->loop) - m->started_ms;
  uint64_t left =
      m->opts.retry_for_ms > spent ? m->opts.retry_for_ms - spent : 0;
  int rv;
  /* This attempt may use what is left of the window (at least 1 s). */
  m->pc.opts.connect_timeout_ms = left > 1000 ? (unsigned)left : 1000;
  m->attempts++;
  rv = pgconn_connect(&m->pc, migrate_on_connected);
  if (rv) {
    snprintf(m->errstr, sizeof(m->errstr), "cannot start connecting: %s",
             bl_strerror(rv));
    migrate_finish(m, rv);
  }
}

static void migrate_on_connected(struct pgconn *pc, int status) {
  struct migrate *m = pc->data;
  if (status && status != BL_ETIMEDOUT &&
      uv_now(m->loop) - m->started_ms + 250 < m->opts.retry_for_ms) {
    log_limited(BL_LOG_WARN, "migrate",
                "cannot connect to PostgreSQL (attempt %d): %s; retrying",
                m->attempts, pc->errstr);
    uv_timer_start(&m->retry, migrate_on_retry, 250, 0);
    return;
  }
  if (status) {
    snprintf(m->errstr, sizeof(m->errstr), "cannot connect to PostgreSQL: %s",
             pc->errstr);
    migrate_finish(m, status);
    return;
  }
  if (PQsetnonblocking(pc->conn, 1) != 0) {
    fail_conn(m, "cannot make the connection nonblocking");
    return;
  }
  send_sql(m, M_LOCK, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")");
}

/* ---- public ---- */

int migrate_init(uv_loop_t *loop, struct migrate *m,
                 const struct migrate_opts *opts) {
  int rv;
  memset(m, 0, sizeof(*m));
  m->loop = loop;
  m->opts = *opts;
  if (!m->opts.dir || !*m->opts.dir)
    m->opts.dir = "schema";
  rv = pgconn_init(loop, &m->pc, &m->opts.conn);
  if (rv)
    return rv;
  m->pc.data = m;
  uv_timer_init(loop, &m->retry);
  m->retry.data = m;
  m->step = M_INIT;
  return 0;
}

int migrate_start(struct migrate *m, migrate_done_cb cb) {
  int rv;
  if (m->step != M_INIT)
    return BL_ESTATE;
  rv = read_dir(m);
  if (rv) {
    if (!m->errstr[0])
      snprintf(m->errstr, sizeof(m->errstr), "%s: %s", m->opts.dir,
               bl_strerror(rv));
    free_files(m);
    return rv;
  }
  m->done_cb = cb;
  m->step = M_CONNECTING;
  m->started_ms = uv_now(m->loop);
  m->attempts = 1;
  rv = pgconn_connect(&m->pc, migrate_on_connected);
  if (rv) {
    m->step = M_INIT;
    m->done_cb = NULL;
    snprintf(m->errstr, sizeof(m->errstr), "cannot start connecting: %s",
             bl_strerror(rv));
    free_files(m);
  }
  return rv;
}

static void migrate_one_closed(struct migrate *m) {
  if (--m->handles_open > 0)
    return;
  m->step = M_CLOSED;
  if (m->close_cb)
    m->close_cb(m);
}

static void migrate_pc_closed(struct pgconn *pc) {
  migrate_one_closed(pc->data);
}

static void migrate_timer_closed(uv_handle_t *h) {
  migrate_one_closed(h->data);
}

void migrate_close(struct migrate *m, migrate_close_cb cb) {
  if (m->step == M_CLOSING || m->step == M_CLOSED)
    return;
  if (m->err_res) {
    PQclear(m->err_res);
    m->err_res = NULL;
  }
  m->done_cb = NULL;
  m->close_cb = cb;
  m->step = M_CLOSING;
  free_files(m);
  m->handles_open = 2;
  uv_close((uv_handle_t *)&m->retry, migrate_timer_closed);
  pgconn_close(&m->pc, migrate_pc_closed);
}
