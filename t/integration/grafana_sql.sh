#!/usr/bin/env bash
# grafana_sql.sh: the provisioned Grafana dashboards against the real schema.
# Every dashboard JSON in conf/grafana/dashboards must be valid JSON with a
# unique uid, unique panel ids and, on every panel, target and query
# variable, the datasource uid provisioned in
# conf/grafana/provisioning/datasources/*.yaml. Every panel's rawSql and
# every templating query then runs on PostgreSQL with the schema applied
# (build/binance-live --migrate) and data loaded (build/t/store_load plus
# symbols, sync_status and data_gaps rows), with Grafana's macros expanded
# the way its PostgreSQL datasource does and the template variables set to
# every value they can take: each must succeed for every value, return rows
# for at least one, and a time_series query must return a "time" column.
# The time range is the span of the loaded data.
. "$(dirname "$0")/../lib/harness.sh"
h_init
cd "$H_ROOT" || exit 1
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

# Turns "OK name" / "NOTOK name" / "DIAG text" lines into TAP.
tap_from() {
  local line
  while IFS= read -r line; do
    case "$line" in
      "OK "*) ok 0 "${line#OK }" ;;
      "NOTOK "*) ok 1 "${line#NOTOK }" ;;
      "DIAG "*) diag "${line#DIAG }" ;;
      *) diag "$line" ;;
    esac
  done <"$1"
}

h_pg_start
cfg=$H_TMP/c.yaml
h_config_write "$cfg"
"$BUILD/binance-live" --migrate -c "$cfg" 2>"$H_TMP/migrate.log"
ok $? "schema applied with --migrate"
"$BUILD/t/store_load" >"$H_TMP/store.out" 2>"$H_TMP/store.err"
ok $? "store_load filled trades, klines, tickers, depth snapshots"

# What the collector's other writers would add: symbols, more sync_status
# rows (one repairing, one in error) and data gaps in every state, all
# inside the span of the stored rows.
h_psql <<'SQL' >"$H_TMP/extra.log" 2>&1
\set ON_ERROR_STOP 1
INSERT INTO symbols (symbol, base_asset, quote_asset, is_active) VALUES
  ('BTCUSDT', 'BTC', 'USDT', true), ('ETHUSDT', 'ETH', 'USDT', true),
  ('SOLUSDT', 'SOL', 'USDT', true), ('OLDUSDT', 'OLD', 'USDT', false)
ON CONFLICT (symbol) DO NOTHING;
INSERT INTO sync_status (symbol, data_type, interval, last_sync_time,
                         last_data_time, status, error_message) VALUES
  ('SOLUSDT', 'kline', '5m', to_timestamp(1700000100),
   to_timestamp(1700000000), 'repairing', NULL),
  ('ETHUSDT', 'trade', '', to_timestamp(1700000100), NULL, 'error',
   'HTTP 429 from /api/v3/aggTrades')
ON CONFLICT DO NOTHING;
INSERT INTO data_gaps (symbol, data_type, interval, gap_start, gap_end,
                       first_missing_id, last_missing_id, detected_at, state,
                       filled_at, rows_filled, detail) VALUES
  ('ETHUSDT', 'kline', '1m', to_timestamp(1700000060), to_timestamp(1700000180),
   NULL, NULL, to_timestamp(1700000200), 'filled', to_timestamp(1700000205),
   3, NULL),
  ('BTCUSDT', 'trade', '', NULL, NULL, 101, 140, to_timestamp(1700000010),
   'filled', to_timestamp(1700000011), 40, NULL),
  ('BTCUSDT', 'trade', '', NULL, NULL, 900, 905, to_timestamp(1700000015),
   'pending', NULL, 0, NULL),
  ('SOLUSDT', 'kline', '1m', to_timestamp(1700000000), to_timestamp(1700000300),
   NULL, NULL, to_timestamp(1700000400), 'exchange_empty', NULL, 0,
   'exchange returned no bars'),
  ('ETHUSDT', 'kline', '1h', to_timestamp(1699990000), to_timestamp(1699993600),
   NULL, NULL, to_timestamp(1700000500), 'failed', NULL, 0, 'HTTP 500');
SQL
ok $? "symbols, sync_status and data_gaps rows added"
[ $? -eq 0 ] || sed 's/^/#   /' "$H_TMP/extra.log"

"$PY" - conf/grafana/dashboards conf/grafana/provisioning/datasources \
  >"$H_TMP/checks" 2>&1 <<'PYEOF'
import glob, json, os, re, subprocess, sys, itertools, yaml
from datetime import datetime, timezone

dash_dir, ds_dir = sys.argv[1:3]

def ok(cond, name, *diag):
    print(("OK " if cond else "NOTOK ") + name)
    if not cond:
        for d in diag:
            for line in str(d).splitlines():
                print("DIAG   " + line)
    sys.stdout.flush()

def psql(sql):
    """Runs one query; returns (ok, header, rows, error)."""
    p = subprocess.run(["psql", "-X", "-A", "-F", "\t", "-P", "footer=off",
                        "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return False, [], [], p.stderr.strip()
    lines = p.stdout.splitlines()
    return True, lines[0].split("\t") if lines else [], lines[1:], ""

# The provisioned datasource uid(s).
uids = set()
for f in sorted(glob.glob(os.path.join(ds_dir, "*.yaml"))):
    for d in (yaml.safe_load(open(f)) or {}).get("datasources", []):
        if "uid" in d:
            uids.add(d["uid"])
ok(len(uids) == 1, "one datasource uid provisioned (%s)" % sorted(uids))

# The time range: the span of the loaded rows, an hour either side.
_, _, rows, err = psql("""
SELECT extract(epoch FROM min(t))::bigint - 3600,
       extract(epoch FROM max(t))::bigint + 3600 FROM (
  SELECT min(trade_time) t FROM trades UNION ALL SELECT max(trade_time) FROM trades
  UNION ALL SELECT min(open_time) FROM klines UNION ALL SELECT max(open_time) FROM klines
  UNION ALL SELECT min(timestamp) FROM tickers UNION ALL SELECT max(timestamp) FROM tickers
  UNION ALL SELECT min(timestamp) FROM depth_snapshots
  UNION ALL SELECT max(timestamp) FROM depth_snapshots
  UNION ALL SELECT min(detected_at) FROM data_gaps
  UNION ALL SELECT max(detected_at) FROM data_gaps) x""")
t_from, t_to = (int(v) for v in rows[0].split("\t"))
def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print("DIAG time range %s .. %s" % (iso(t_from), iso(t_to)))
INTERVAL_S = 60  # what Grafana would pick for this range and a wide panel

def seconds(spec):
    m = re.fullmatch(r"\s*'?(\d+)(ms|s|m|h|d|w)?'?\s*", spec)
    if not m:
        raise ValueError("bad interval %r" % spec)
    n, u = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400,
                "w": 604800}[u]

def split_args(s):
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            out.append(cur.strip()); cur = ""; continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    out.append(cur.strip())
    return out

def macro(name, args):
    f, t = "'%s'" % iso(t_from), "'%s'" % iso(t_to)
    if name == "__timeFilter":
        return "%s BETWEEN %s AND %s" % (args[0], f, t)
    if name == "__timeFrom":
        return f
    if name == "__timeTo":
        return t
    if name in ("__timeGroup", "__timeGroupAlias"):
        s = seconds(args[1])
        s = int(s) if s == int(s) else s
        expr = "floor(extract(epoch from %s)/%s)*%s" % (args[0], s, s)
        return expr + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name == "__unixEpochFilter":
        return "%s >= %d AND %s <= %d" % (args[0], t_from, args[0], t_to)
    if name == "__unixEpochFrom":
        return str(t_from)
    if name == "__unixEpochTo":
        return str(t_to)
    if name == "__time":
        return '%s AS "time"' % args[0]
    if name == "__timeEpoch":
        return 'extract(epoch from %s) AS "time"' % args[0]
    if name == "__schema":
        return "public"
    if name == "__table":
        return ""
    raise ValueError("macro $%s is not expanded by this test" % name)

def expand(sql, values):
    # $__interval and $__interval_ms first (they take no arguments).
    sql = sql.replace("$__interval_ms", str(INTERVAL_S * 1000))
    sql = sql.replace("$__interval", "%ds" % INTERVAL_S)
    out, i = "", 0
    for m in re.finditer(r"\$(__\w+)\(", sql):
        pass
    while True:
        m = re.search(r"\$(__\w+)\(", sql[i:])
        if not m:
            out += sql[i:]
            break
        start = i + m.start()
        j, depth = i + m.end(), 1
        while depth and j < len(sql):
            depth += sql[j] == "("
            depth -= sql[j] == ")"
            j += 1
        args = split_args(sql[i + m.end():j - 1])
        out += sql[i:start] + macro(m.group(1), [a for a in args if a != ""])
        i = j
    sql = out
    # Template variables: $name, ${name}, [[name]].
    for k, v in values.items():
        sql = re.sub(r"\$\{%s(:[a-z]+)?\}|\[\[%s\]\]|\$%s\b" % (k, k, k),
                     lambda _m: v, sql)
    left = re.findall(r"\$\{?\w+", sql)
    if left:
        raise ValueError("unexpanded: %s" % left)
    return sql

files = sorted(glob.glob(os.path.join(dash_dir, "*.json")))
ok(len(files) > 0, "dashboards found (%d)" % len(files))
dash_uids = []
for f in files:
    base = os.path.basename(f)
    try:
        d = json.load(open(f))
    except ValueError as e:
        ok(False, "%s is valid JSON" % base, e)
        continue
    ok(True, "%s is valid JSON" % base)
    dash_uids.append(d.get("uid"))
    panels = []
    for p in d.get("panels", []):
        panels.append(p)
        panels += p.get("panels", [])  # collapsed rows
    ids = [p.get("id") for p in panels]
    dup = sorted(set(i for i in ids if ids.count(i) > 1 or i is None),
                 key=str)
    ok(not dup, "%s: %d panels with unique ids" % (base, len(ids)),
       "duplicate or missing: %s" % dup)
    def ds_uid(x):
        ds = x.get("datasource")
        return ds.get("uid") if isinstance(ds, dict) else ds
    wrong = []
    for p in panels:
        if p.get("type") == "row":
            continue
        if ds_uid(p) not in uids:
            wrong.append("panel %s: %r" % (p.get("id"), ds_uid(p)))
        for t in p.get("targets", []):
            if t.get("datasource") is not None and ds_uid(t) not in uids:
                wrong.append("panel %s target %s: %r"
                             % (p.get("id"), t.get("refId"), ds_uid(t)))
    tvars = d.get("templating", {}).get("list", [])
    for v in tvars:
        if v.get("type") == "query" and ds_uid(v) not in uids:
            wrong.append("variable %s: %r" % (v.get("name"), ds_uid(v)))
    ok(not wrong, "%s: every panel, target and query variable uses the "
       "provisioned datasource" % base, *wrong)

    # Variable values: query variables from the database, custom ones split.
    choices = {}
    for v in tvars:
        name = v.get("name")
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("rawSql") or q.get("query")
        if v.get("type") == "query":
            try:
                sql = expand(q, {})
            except ValueError as e:
                ok(False, "%s: variable $%s query expands" % (base, name), e)
                continue
            good, _, rows, err = psql(sql)
            ok(good and len(rows) > 0,
               "%s: variable $%s query runs and returns values (%d)"
               % (base, name, len(rows)), err, sql)
            choices[name] = [r.split("\t")[0] for r in rows]
        elif v.get("type") == "custom":
            opts = [o.get("value") for o in v.get("options", [])
                    if o.get("value") not in (None, "$__all")]
            if not opts:
                opts = [s.strip() for s in str(q).split(",") if s.strip()]
            ok(len(opts) > 0, "%s: variable $%s has values (%s)"
               % (base, name, ",".join(opts)))
            choices[name] = opts
        elif v.get("type") in ("constant", "textbox"):
            choices[name] = [str(v.get("query", ""))]
        elif v.get("type") == "interval":
            choices[name] = [s.strip() for s in str(q).split(",")][:1]
        else:
            ok(False, "%s: variable $%s of type %s is handled"
               % (base, name, v.get("type")))
    names = sorted(choices)
    combos = [dict(zip(names, c)) for c in
              itertools.product(*(choices[n] for n in names))] or [{}]

    for p in panels:
        for t in p.get("targets", []):
            raw = t.get("rawSql")
            label = "%s: panel %s %r %s" % (base, p.get("id"), p.get("title"),
                                            t.get("refId", ""))
            if not raw:
                ok(t.get("rawQuery") is False and False,
                   "%s has rawSql" % label)
                continue
            fails, hits, notime, tried = [], 0, [], 0
            for c in combos:
                try:
                    sql = expand(raw, c)
                except ValueError as e:
                    fails.append("%s: %s" % (c, e))
                    continue
                tried += 1
                good, head, rows, err = psql(sql)
                if not good:
                    fails.append("%s: %s\n%s" % (c, err, sql))
                    continue
                if rows:
                    hits += 1
                if t.get("format", "time_series") == "time_series" and \
                        "time" not in head:
                    notime.append(str(head))
            ok(not fails, "%s runs for all %d variable values" % (label, tried),
               *fails[:2])
            ok(hits > 0, "%s returns rows (for %d of %d)" % (label, hits, tried))
            if t.get("format", "time_series") == "time_series":
                ok(not notime, "%s returns a time column" % label, *notime[:1])
dup = sorted(set(u for u in dash_uids if dash_uids.count(u) > 1 or not u),
             key=str)
ok(not dup, "dashboard uids are unique (%d)" % len(dash_uids), dup)
PYEOF
rc=$?
tap_from "$H_TMP/checks"
[ $rc -eq 0 ] || ok 1 "the dashboard checker ran to completion (status $rc)"
done_testing
