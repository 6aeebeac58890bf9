#!/usr/bin/env bash
# migrate.sh: `binance-live --migrate` (src/sink/migrate.c through
# app_migrate) against a real PostgreSQL: applies schema/, records it in
# schema_migrations with the file's SHA-256, a second run changes nothing
# (rows and catalog dump identical), a changed file only warns, a new file is
# applied on top, a broken file fails naming the file and line and leaves
# nothing of itself behind, two migrators started at once apply each file
# once (advisory lock), a server starting late is waited for, and an
# unreachable server fails cleanly after the 10 s bound.
set -u
. "$(dirname "$0")/../lib/harness.sh"

h_init
h_pg_start || { ok 1 "h_pg_start"; done_testing; exit 1; }

BIN=$BUILD/binance-live
CFG=$H_TMP/collector.yaml
h_config_write "$CFG"

# Runs --migrate from the repository root (so the default ./schema is used
# unless BINANCE_LIVE_SCHEMA_DIR is set); output in $H_TMP/mig.log.
migrate() {
  (cd "$H_ROOT" && "$BIN" --migrate -c "$CFG") >"$H_TMP/mig.log" 2>&1
}
dump() {
  pg_dump --schema-only --no-owner -d "${1:-binance_data}" 2>/dev/null |
    grep -v -e '^--' -e '^$' -e '^\\restrict' -e '^\\unrestrict'
}
state() { h_psql "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY 1"; }

# --- first run -------------------------------------------------------------
migrate
rc=$?
ok $rc "--migrate applies schema/ to an empty database"
[ $rc -ne 0 ] && sed 's/^/#   /' "$H_TMP/mig.log" | tail -n 5
sum=$(sha256sum "$H_ROOT/schema/001_init.sql" | cut -d' ' -f1)
is "$(h_psql 'SELECT version, checksum FROM schema_migrations')" "001_init|$sum" \
  "001_init recorded with the file's SHA-256"
is "$(h_psql "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('symbols','klines','tickers','trades','depth_snapshots','sync_status','data_gaps')")" \
  7 "the seven tables of the data model exist"
like "$(cat "$H_TMP/mig.log")" "applied .*schema/001_init.sql" "the log names the file applied"

# --- second run: nothing changes -----------------------------------------------
before_rows=$(state)
before_dump=$(dump)
like "$before_dump" "CREATE TABLE public.klines" "the catalog dump is taken"
migrate
rc=$?
ok $rc "second --migrate succeeds"
is "$(state)" "$before_rows" "second run: schema_migrations unchanged (applied_at too)"
ok $([ "$before_dump" = "$(dump)" ]; echo $?) "second run: catalog dump unchanged"
like "$(cat "$H_TMP/mig.log")" "0 file\(s\) applied now" "second run: reports nothing applied"

# --- a temp schema dir: changed file, new file, broken file ----------------
SD=$H_TMP/schema
mkdir -p "$SD"
cp "$H_ROOT/schema/"*.sql "$SD/"
export BINANCE_LIVE_SCHEMA_DIR=$SD

printf -- '\n-- an edit after the fact\n' >>"$SD/001_init.sql"
migrate
rc=$?
ok $rc "a changed, already applied file does not fail the run"
like "$(cat "$H_TMP/mig.log")" "001_init.sql changed after it was applied" "the change is reported as a warning"
is "$(state)" "$before_rows" "the changed file is not applied again"

cat >"$SD/900_extra.sql" <<'EOF'
CREATE TABLE mig_extra (id int PRIMARY KEY);
INSERT INTO mig_extra VALUES (1), (2);
EOF
migrate
rc=$?
ok $rc "a new file is applied on top"
is "$(h_psql 'SELECT count(*) FROM mig_extra')" 2 "its statements ran"
is "$(h_psql "SELECT count(*) FROM schema_migrations WHERE version = '900_extra'")" 1 "it is recorded"

cat >"$SD/950_broken.sql" <<'EOF'
-- the first statement works, the third line's one does not
CREATE TABLE mig_half (id int);
INSERT INTO mig_half VALUES (1);

SELECT no_such_column FROM mig_extra;
CREATE TABLE mig_after (id int);
EOF
cat >"$SD/960_later.sql" <<'EOF'
CREATE TABLE mig_later (id int);
EOF
before_rows=$(state)
migrate
rc=$?
ok $([ $rc -ne 0 ]; echo $?) "a broken file fails the run (exit $rc)"
log=$(cat "$H_TMP/mig.log")
like "$log" "950_broken.sql:5: ERROR: column \"no_such_column\" does not exist" \
  "the error names the file, the line and PostgreSQL's message"
is "$(h_psql "SELECT count(*) FROM pg_class WHERE relname IN ('mig_half','mig_after','mig_later')")" 0 \
  "nothing of the broken file (nor any later file) is left"
is "$(state)" "$before_rows" "schema_migrations unchanged by the failed run"
rm -f "$SD/950_broken.sql" "$SD/960_later.sql"

# --- two migrators at once on a fresh database -------------------------------
unset BINANCE_LIVE_SCHEMA_DIR
h_psql "CREATE DATABASE mig_race" >/dev/null
(cd "$H_ROOT" && POSTGRES_DB=mig_race "$BIN" --migrate -c "$CFG") >"$H_TMP/race1.log" 2>&1 &
p1=$!
(cd "$H_ROOT" && POSTGRES_DB=mig_race "$BIN" --migrate -c "$CFG") >"$H_TMP/race2.log" 2>&1 &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
ok $([ $r1 -eq 0 ] && [ $r2 -eq 0 ]; echo $?) "two concurrent --migrate runs both succeed ($r1, $r2)"
is "$(cat "$H_TMP/race1.log" "$H_TMP/race2.log" | grep -c 'applied .*001_init.sql')" 1 \
  "001_init applied by exactly one of them"
is "$(h_psql 'SELECT count(*) FROM schema_migrations' -d mig_race)" 1 "one row recorded"

# --- a server that comes up late -----------------------------------------------
h_pg_stop
(cd "$H_ROOT" && POSTGRES_DB=mig_late "$BIN" --migrate -c "$CFG") >"$H_TMP/late.log" 2>&1 &
lpid=$!
sleep 1.5
h_pg_start
h_psql "CREATE DATABASE mig_late" >/dev/null
wait $lpid
rc=$?
ok $rc "a server starting 1.5 s late: --migrate retries and succeeds"
[ $rc -ne 0 ] && sed 's/^/#   /' "$H_TMP/late.log" | tail -n 5
like "$(cat "$H_TMP/late.log")" "retrying" "the retries are logged"
is "$(h_psql 'SELECT count(*) FROM schema_migrations' -d mig_late)" 1 "the late database got the schema"

# --- unreachable server ----------------------------------------------------
h_free_port >/dev/null
t0=$(date +%s)
(cd "$H_ROOT" && POSTGRES_PORT=$H_PORT "$BIN" --migrate -c "$CFG") >"$H_TMP/down.log" 2>&1
rc=$?
ok $([ $rc -eq 1 ]; echo $?) "no server: --migrate exits 1 (got $rc)"
like "$(cat "$H_TMP/down.log")" "migration failed: cannot connect to PostgreSQL" "no server: the log says it cannot connect"
el=$(($(date +%s) - t0))
ok $([ $el -ge 9 ] && [ $el -le 13 ]; echo $?) "no server: retried for the 10 s bound, then gave up (${el} s)"

done_testing
