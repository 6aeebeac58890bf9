#!/usr/bin/env bash
# t/integration/config_cli.sh: the binance-live command line around the
# configuration: --check-config on the shipped file, password masking,
# exit status 2 with a FILE:LINE:COL line for a bad file, --version,
# --help, unknown options and a missing file.
cd "$(dirname "$0")/../.." || exit 1
. t/lib/tap.sh

BIN=${BUILD:-build}/binance-live
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for v in LOG_LEVEL LOG_FORMAT BINANCE_API_URL BINANCE_WS_URL BINANCE_CA_FILE \
         POSTGRES_HOST POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD \
         POSTGRES_DB POSTGRES_SSLMODE REDIS_HOST REDIS_PORT REDIS_PASSWORD \
         REDIS_DB HTTP_LISTEN SPOOL_DIR BINANCE_LIVE_CONFIG; do
  unset "$v"
done

# The shipped configuration.
"$BIN" -c conf/binance-live.yaml --check-config >"$tmp/out" 2>"$tmp/err"
ok $? "--check-config on conf/binance-live.yaml exits 0"
like "$(cat "$tmp/out")" $'database:\n  host: "localhost"\n  port: 5432' \
  "prints the effective configuration as YAML"
is "$(cat "$tmp/err")" "" "the shipped file gives no warning"

# Without -c the default path is used; BINANCE_LIVE_CONFIG picks another.
"$BIN" --check-config >/dev/null 2>&1
ok $? "default path conf/binance-live.yaml"
printf 'app:\n  name: from-env-path\n' >"$tmp/alt.yaml"
out=$(BINANCE_LIVE_CONFIG="$tmp/alt.yaml" "$BIN" --check-config 2>&1)
like "$out" 'name: "from-env-path"' "BINANCE_LIVE_CONFIG names the file"

# Passwords never appear.
POSTGRES_PASSWORD=s3cret REDIS_PASSWORD=r3dispw "$BIN" --check-config \
  -c conf/binance-live.yaml >"$tmp/out" 2>"$tmp/err"
ok $? "--check-config with passwords set exits 0"
! grep -q -e s3cret -e r3dispw "$tmp/out" "$tmp/err"
ok $? "neither stdout nor stderr contains a password"
like "$(cat "$tmp/out")" 'password: "\*\*\*\*\*\*\*\*"' "password masked"
printf 'database:\n  password: "lit3ral"\n' >"$tmp/pw.yaml"
"$BIN" -c "$tmp/pw.yaml" --check-config >"$tmp/out" 2>"$tmp/err"
! grep -q lit3ral "$tmp/out" "$tmp/err"
ok $? "a password written in the file is masked too"

# Environment overrides win over the file.
out=$(POSTGRES_HOST=db.example REDIS_PORT=6380 "$BIN" --check-config 2>&1)
like "$out" 'host: "db.example"' "POSTGRES_HOST overrides"
like "$out" 'port: 6380' "REDIS_PORT overrides"
POSTGRES_PORT=abc "$BIN" --check-config >"$tmp/out" 2>"$tmp/err"
is $? 2 "a bad environment value exits 2"
like "$(cat "$tmp/err")" 'POSTGRES_PORT' "the error names the variable"

# A bad file: one FILE:LINE:COL: line on stderr, exit 2.
printf 'app:\n  name: x\ndatabase:\n  port: 70000\n' >"$tmp/bad.yaml"
"$BIN" -c "$tmp/bad.yaml" --check-config >"$tmp/out" 2>"$tmp/err"
is $? 2 "a bad config exits 2"
is "$(cat "$tmp/err")" \
  "$tmp/bad.yaml:4:9: database.port must be between 1 and 65535, got '70000'" \
  "the error is one FILE:LINE:COL: line"
is "$(wc -c <"$tmp/out")" 0 "nothing on stdout"
printf 'binance:\n  kline_intervals: [1m, 1H]\n' >"$tmp/bad2.yaml"
"$BIN" --config "$tmp/bad2.yaml" --check-config >/dev/null 2>"$tmp/err"
is $? 2 "an unknown interval exits 2"
like "$(cat "$tmp/err")" "^$tmp/bad2.yaml:2:25: unknown kline interval '1H'" \
  "--config FILE and the interval's position"
printf '[unclosed\n' >"$tmp/bad3.yaml"
"$BIN" -c "$tmp/bad3.yaml" --check-config >/dev/null 2>"$tmp/err"
is $? 2 "not YAML exits 2"
like "$(cat "$tmp/err")" "^$tmp/bad3.yaml:[0-9]+:[0-9]+: invalid YAML" \
  "not YAML names the position"

# Warnings go to stderr, the load still succeeds.
"$BIN" -c t/data/config/go-original.yaml --check-config >"$tmp/out" \
  2>"$tmp/err"
ok $? "the Go original's file loads"
like "$(cat "$tmp/err")" "go-original.yaml:[0-9]+:[0-9]+: warning: key 'redis.pool_size' is ignored" \
  "with warnings on stderr"
! grep -q 'password: "postgres"' "$tmp/out"
ok $? "its password is masked"

# Missing file, options.
"$BIN" -c "$tmp/nope.yaml" --check-config >/dev/null 2>"$tmp/err"
is $? 2 "-c missing-file exits 2"
like "$(cat "$tmp/err")" "$tmp/nope.yaml: .*No such file" "names the file"
out=$("$BIN" --version)
ok $? "--version exits 0"
is "$out" "binance-live 0.1.0" "--version prints the version"
out=$("$BIN" --help)
ok $? "--help exits 0"
like "$out" '^usage: binance-live \[-c FILE\]' "--help prints the usage"
"$BIN" --bogus >"$tmp/out" 2>"$tmp/err"
is $? 2 "an unknown option exits 2"
like "$(cat "$tmp/err")" 'usage: binance-live' "usage on stderr"
"$BIN" -c >/dev/null 2>&1
is $? 2 "a missing argument exits 2"
"$BIN" extra >/dev/null 2>&1
is $? 2 "a stray argument exits 2"

# --migrate: loads the configuration, then app_migrate decides the status
# (1 when it fails, which it does without a reachable database).
"$BIN" -c "$tmp/bad.yaml" --migrate >/dev/null 2>&1
is $? 2 "--migrate with a bad config exits 2"
printf 'database:\n  host: 127.0.0.1\n  port: 1\napp:\n  log_format: json\n' \
  >"$tmp/nodb.yaml"
timeout 60 "$BIN" -c "$tmp/nodb.yaml" --migrate >/dev/null 2>"$tmp/err"
is $? 1 "--migrate that fails exits 1"

done_testing
