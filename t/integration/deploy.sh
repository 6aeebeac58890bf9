#!/usr/bin/env bash
# deploy.sh: what can be checked of the container deployment without a
# Docker engine.
#  - docker-compose.yml passes `docker-compose config -q` (Debian's 1.29)
#    with the variables of .env.example, and fails without them (required
#    ones use ${VAR:?}); the core services exist outside any profile, the dev
#    tools only under the dev profile; every service has a healthcheck;
#    .env.example defines every variable used without a default; the
#    collector's environment names only variables the configuration reads.
#  - Dockerfile: multi-stage on debian:bookworm-slim, non-root USER,
#    HEALTHCHECK, no curl/wget in the runtime stage, and the runtime apt
#    packages are exactly the packages of the shared libraries the binary
#    links (readelf NEEDED -> ldd path -> dpkg -S), so a new library
#    dependency missing from the image fails here; every library ldd loads
#    is reachable from them through package dependencies; the build stage
#    gets every build package of deps/packages.txt, and `make
#    build/binance-live` succeeds on a copy of exactly what it COPYs.
#  - the HEALTHCHECK command itself, run against a local HTTP server:
#    exit 0 for a 200, non-zero for a 503 and for a closed port.
#  - the schema lookup the image relies on: with WORKDIR /app and the schema
#    in /app/schema, --migrate works both through BINANCE_LIVE_SCHEMA_DIR
#    (set in the image) and through ./schema.
. "$(dirname "$0")/../lib/harness.sh"
h_init
cd "$H_ROOT" || exit 1
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

if ! command -v docker-compose >/dev/null 2>&1; then
  diag "docker-compose is not installed (deps/install.sh installs it)"
  ok 1 "docker-compose available"
  done_testing
  exit 1
fi

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

# --- docker-compose.yml -------------------------------------------------------

# Only .env.example's variables, none from the caller (nor a local .env).
: >"$H_TMP/none.env"
compose() {
  env -i PATH="$PATH" HOME="$H_TMP" bash -c \
    'set -a; . "$1"; set +a; shift; exec docker-compose --project-directory . \
       --env-file "$0" -f docker-compose.yml "$@"' "$H_TMP/none.env" "$@"
}

compose .env.example config -q 2>"$H_TMP/compose.err"
ok $? "docker-compose config -q passes with .env.example's variables"
sed 's/^/#   /' "$H_TMP/compose.err"

: >"$H_TMP/empty.env"
compose "$H_TMP/empty.env" config -q 2>"$H_TMP/compose-empty.err"
rc=$?
[ $rc -ne 0 ] && grep -q 'POSTGRES_PASSWORD' "$H_TMP/compose-empty.err"
ok $? "without .env, config refuses to run (required POSTGRES_PASSWORD)"

compose .env.example config >"$H_TMP/compose.yml" 2>/dev/null
"$PY" - "$H_TMP/compose.yml" docker-compose.yml .env.example \
  src/core/config.c >"$H_TMP/compose.checks" 2>&1 <<'PYEOF'
import re, sys, yaml
resolved, raw_path, env_path, config_c = sys.argv[1:5]
def ok(cond, name, *diag):
    # the shell turns these lines into TAP (it keeps the numbering)
    print(("OK " if cond else "NOTOK ") + name)
    if not cond:
        for d in diag:
            print("DIAG   " + str(d))
doc = yaml.safe_load(open(resolved)) or {}  # empty when config failed
raw = yaml.safe_load(open(raw_path))
svcs = doc.get("services", {})
rsvcs = raw.get("services", {})
core = ["timescaledb", "redis", "collector", "grafana"]
for s in core:
    ok(s in svcs and not rsvcs.get(s, {}).get("profiles"),
       "service %s exists outside any profile" % s)
for s in ["pgadmin", "redis-commander"]:
    ok(s in svcs and rsvcs.get(s, {}).get("profiles") == ["dev"],
       "service %s only under the dev profile" % s,
       "profiles: %r" % rsvcs.get(s, {}).get("profiles"))
others = [s for s in rsvcs if s not in core + ["pgadmin", "redis-commander"]]
ok(not others, "no unexpected services", others)
nohc = [s for s in rsvcs if not (rsvcs[s].get("healthcheck") or {}).get("test")]
ok(not nohc, "every service has a healthcheck", "without: %s" % nohc)
dep = rsvcs.get("collector", {}).get("depends_on", {})
ok(all(dep.get(s, {}).get("condition") == "service_healthy"
       for s in ("timescaledb", "redis")),
   "the collector waits for healthy timescaledb and redis", dep)

text = open(raw_path).read()
# ${VAR}, ${VAR:?msg}, ${VAR?msg} need a value; ${VAR:-x}, ${VAR-x} don't.
# $$ escapes (container-side variables) are skipped.
used = set()
for m in re.finditer(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?][^}]*)?\}",
                     text):
    if not m.group(2) or m.group(2).lstrip(":").startswith("?"):
        used.add(m.group(1))
defined = set()
for line in open(env_path):
    m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", line)
    if m:
        defined.add(m.group(1))
missing = sorted(used - defined)
ok(not missing, "%d variables used without a default are all in .env.example"
   % len(used), "missing: %s" % missing)
allvars = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
unused = sorted(defined - allvars)
ok(not unused, ".env.example defines no variable compose does not use",
   "unused: %s" % unused)

# The collector's environment: only variables src/core/config.c reads.
known = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', open(config_c).read()))
env = rsvcs.get("collector", {}).get("environment", {})
names = list(env) if isinstance(env, dict) else [e.split("=")[0] for e in env]
unknown = sorted(set(names) - known)
ok(names and not unknown,
   "the collector's %d environment variables are all read by the config"
   % len(names), "not read: %s" % unknown)
PYEOF
tap_from "$H_TMP/compose.checks"

# --- Dockerfile -----------------------------------------------------------------

if [ ! -x "$BUILD/binance-live" ]; then
  ok 1 "$BUILD/binance-live is built (make build)"
  done_testing
  exit 1
fi

# The binary's direct libraries and everything ldd loads, as "soname path".
readelf -d "$BUILD/binance-live" |
  sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p' >"$H_TMP/needed"
ldd "$BUILD/binance-live" |
  awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' >"$H_TMP/ldd"
# "soname package" for each, via dpkg -S on the path (also its /usr twin or
# its real path: usrmerge registers files under either).
pkg_of() {
  local p=$1 c out
  for c in "$p" "/usr$p" "${p#/usr}" "$(readlink -f "$p")"; do
    out=$(dpkg -S "$c" 2>/dev/null | head -n 1) || continue
    [ -n "$out" ] && { printf '%s\n' "${out%%:*}"; return 0; }
  done
  printf '?\n'
}
while read -r so path; do
  printf '%s %s\n' "$so" "$(pkg_of "$path")"
done <"$H_TMP/ldd" >"$H_TMP/ldd.pkgs"
# Installed packages' dependencies, for the closure check.
dpkg-query -W -f '${Package}\t${Depends}, ${Pre-Depends}\t${Provides}\n' \
  >"$H_TMP/dpkg.deps"

"$PY" - Dockerfile "$H_TMP/needed" "$H_TMP/ldd.pkgs" "$H_TMP/dpkg.deps" \
  deps/packages.txt >"$H_TMP/docker.checks" 2>&1 <<'PYEOF'
import json, re, shlex, sys
dockerfile, needed_f, lddp_f, deps_f, pkgs_txt = sys.argv[1:6]
def ok(cond, name, *diag):
    print(("OK " if cond else "NOTOK ") + name)
    if not cond:
        for d in diag:
            print("DIAG   " + str(d))

# Instructions, continuation lines joined, comments dropped.
lines, cur = [], ""
for raw in open(dockerfile):
    s = raw.rstrip("\n")
    if not cur and re.match(r"^\s*(#|$)", s):
        continue
    if re.match(r"^\s*#", s):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    cur += s
    lines.append(cur.strip())
    cur = ""
stages = []
for ins in lines:
    word, _, rest = ins.partition(" ")
    word = word.upper()
    if word == "FROM":
        stages.append({"from": rest.split()[0], "ins": []})
    elif stages:
        stages[-1]["ins"].append((word, rest.strip()))
ok(len(stages) >= 2, "Dockerfile is multi-stage (%d stages)" % len(stages))
ok(stages and all(s["from"] == "debian:bookworm-slim" for s in stages),
   "every stage is FROM debian:bookworm-slim", [s["from"] for s in stages])
rt = stages[-1]["ins"] if stages else []

def last(word):
    v = [r for w, r in rt if w == word]
    return v[-1] if v else None
user = last("USER")
ok(user is not None and user.split(":")[0] not in ("root", "0"),
   "the runtime stage runs as a non-root USER (%s)" % user)
hc = last("HEALTHCHECK")
ok(hc is not None and "CMD" in hc, "the runtime stage has a HEALTHCHECK")
ok(last("WORKDIR") == "/app", "WORKDIR is /app", last("WORKDIR"))
copies = [r for w, r in rt if w == "COPY"]
ok("schema /app/schema" in copies, "the schema is copied to /app/schema",
   copies)
envs = " ".join(r for w, r in rt if w == "ENV")
ok(re.search(r"\bBINANCE_LIVE_SCHEMA_DIR=/app/schema\b", envs) is not None,
   "ENV BINANCE_LIVE_SCHEMA_DIR=/app/schema")

def apt_pkgs(stage):
    out = []
    for w, r in stage["ins"]:
        if w != "RUN":
            continue
        for m in re.finditer(r"apt-get\s+install\s+(.*?)(?:&&|;|$)", r):
            out += [t for t in m.group(1).split() if not t.startswith("-")]
    return out
rt_pkgs = apt_pkgs(stages[-1]) if stages else []
bad = [p for p in rt_pkgs if p in ("curl", "wget", "libcurl4-openssl-dev")
       or p.endswith("-dev") or p in ("build-essential", "gcc", "make")]
ok(rt_pkgs and not bad, "no curl, wget or build tools in the runtime stage",
   bad)
ok(not re.search(r"\b(curl|wget)\b", hc or ""),
   "the HEALTHCHECK needs neither curl nor wget")

# Exactly the packages of the libraries the binary links (libc6 and the
# loader come with the base image); ca-certificates is data, not a library.
lddp = dict(l.split() for l in open(lddp_f) if l.strip())
needed = [l.strip() for l in open(needed_f) if l.strip()]
base = {"libc6"}
# A sanitizer build (make asan) also links the sanitizer runtimes: they are
# not part of the image, so they and what they pull in are left out.
san = re.compile(r"^lib(asan|ubsan|tsan|lsan)\.so")
san_pkgs = set(lddp.get(so) for so in needed if san.match(so))
if san_pkgs:
    print("DIAG sanitizer build: leaving out %s" % sorted(san_pkgs))
needed = [so for so in needed if not san.match(so)]
want = set()
unknown = []
for so in needed:
    p = lddp.get(so)
    if p is None or p == "?":
        unknown.append(so)
    elif p not in base:
        want.add(p)
ok(not unknown, "every NEEDED library maps to a Debian package", unknown)
have = set(rt_pkgs) - {"ca-certificates"}
ok(want == have,
   "runtime apt packages are exactly the binary's libraries (%d)" % len(want),
   "missing from the Dockerfile: %s" % sorted(want - have),
   "installed but not needed: %s" % sorted(have - want))
ok("ca-certificates" in rt_pkgs, "ca-certificates in the runtime stage")

# Every library ldd loads comes with those packages' dependencies.
deps, provides = {}, {}
for l in open(deps_f):
    name, d, prov = (l.rstrip("\n").split("\t") + ["", ""])[:3]
    alts = []
    for dep in d.split(","):
        dep = dep.strip()
        if dep:
            alts.append([re.split(r"[ (:]", a.strip())[0] for a in
                         dep.split("|")])
    deps[name] = alts
    for pv in prov.split(","):
        pv = re.split(r"[ (:]", pv.strip())[0]
        if pv:
            provides.setdefault(pv, []).append(name)
def close(start):
    seen, todo = set(), list(start)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for alt in deps.get(p, []):
            for a in alt:
                cands = [a] if a in deps else provides.get(a, [])
                hit = [c for c in cands if c in deps]
                if hit:
                    todo.append(hit[0])
                    break
    return seen
closure = close(have | base) | close(san_pkgs)
loose = sorted(set(v for v in lddp.values() if v not in closure))
ok(not loose, "every library ldd loads (%d) is pulled in by those packages"
   % len(lddp), "not reachable: %s" % loose)

# The build stage installs every build package of deps/packages.txt.
build, grp = [], None
for l in open(pkgs_txt):
    m = re.match(r"^#\s*(\w+)", l)
    if m:
        grp = m.group(1)
        continue
    l = l.split("#")[0].strip()
    if l and grp == "build":
        build.append(l)
bpk = apt_pkgs(stages[0]) if stages else []
miss = sorted(set(build) - set(bpk))
ok(build and not miss, "the build stage installs deps/packages.txt's build "
   "group (%d)" % len(build), "missing: %s" % miss)
copies0 = [r.split() for w, r in stages[0]["ins"] if w == "COPY"]
print("COPIES " + json.dumps([c[:-1] for c in copies0]))
print("RUNS " + json.dumps([r for w, r in stages[0]["ins"] if w == "RUN"][-1:]))
print("PROBE " + json.dumps(json.loads(hc[hc.index("CMD") + 3:].strip())
                            if hc and "[" in hc else []))
PYEOF
grep -vE '^(COPIES|RUNS|PROBE) ' "$H_TMP/docker.checks" >"$H_TMP/docker.tap"
tap_from "$H_TMP/docker.tap"

# The build stage, on a copy of exactly what it COPYs (proves the build
# needs nothing else from the repository).
ctx=$H_TMP/ctx
mkdir -p "$ctx"
copies=$(sed -n 's/^COPIES //p' "$H_TMP/docker.checks")
runs=$(sed -n 's/^RUNS //p' "$H_TMP/docker.checks")
"$PY" -c 'import json,sys
for c in json.loads(sys.argv[1]):
    for s in c: print(s)' "$copies" >"$H_TMP/copies"
while read -r src; do
  cp -a "$src" "$ctx/" || echo "cannot copy $src" >&2
done <"$H_TMP/copies"
runcmd=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[0])' "$runs")
like "$runcmd" '^make ' "the build stage's last RUN is a make ($runcmd)"
(cd "$ctx" && env -i PATH="$PATH" HOME="$H_TMP" MAKEFLAGS=-j2 bash -c "$runcmd") >"$H_TMP/ctx-build.log" 2>&1 &&
  [ -x "$ctx/build/binance-live" ]
ok $? "'$runcmd' builds the binary from the COPYed files alone"
[ -x "$ctx/build/binance-live" ] || tail -n 20 "$H_TMP/ctx-build.log" | sed 's/^/#   /'

# --- the HEALTHCHECK probe ------------------------------------------------------

# A local HTTP server whose /health answers the status in a file.
h_free_port >/dev/null
hport=$H_PORT
echo 200 >"$H_TMP/status"
"$PY" - "$hport" "$H_TMP/status" >"$H_TMP/httpd.log" 2>&1 <<'PYEOF' &
import http.server, sys
port, status_file = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = int(open(status_file).read()) if self.path == "/health" else 404
        body = b'{"status":"%s"}' % (b"ok" if code == 200 else b"down")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PYEOF
H_PIDS+=($!)
h_wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$hport"
ok $? "a local /health server listens on $hport"

probe=$(sed -n 's/^PROBE //p' "$H_TMP/docker.checks")
cprobe=$("$PY" -c 'import sys, yaml
d = yaml.safe_load(open("docker-compose.yml"))
print(" ".join(d["services"]["collector"]["healthcheck"]["test"][1:]))')
# Runs a probe (JSON argv of the Dockerfile) against the local port.
run_probe() {
  "$PY" -c 'import json, subprocess, sys
argv = [a.replace("/8080", "/" + sys.argv[2]) for a in json.loads(sys.argv[1])]
sys.exit(subprocess.run(argv, timeout=5).returncode)' "$probe" "$hport"
}
dprobe=$("$PY" -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])))' "$probe")
is "$cprobe" "$dprobe" "compose's collector healthcheck is the image's probe"
echo 200 >"$H_TMP/status"
run_probe
ok $? "the HEALTHCHECK command exits 0 when /health answers 200"
echo 503 >"$H_TMP/status"
run_probe
rc=$?
[ $rc -ne 0 ]
ok $? "the HEALTHCHECK command fails (status $rc) when /health answers 503"
kill "${H_PIDS[-1]}" 2>/dev/null
wait "${H_PIDS[-1]}" 2>/dev/null
run_probe 2>/dev/null
rc=$?
[ $rc -ne 0 ]
ok $? "the HEALTHCHECK command fails (status $rc) when nothing listens"

# --- the schema inside the image ----------------------------------------------

# /app as the image lays it out: WORKDIR with schema/ beside the config.
h_pg_start
app=$H_TMP/app
mkdir -p "$app"
cp -a schema "$app/schema"
h_config_write "$app/cfg.yaml"
(cd "$app" && BINANCE_LIVE_SCHEMA_DIR="$app/schema" \
  "$BUILD/binance-live" --migrate -c "$app/cfg.yaml") >"$H_TMP/m1.log" 2>&1
rc=$?
ok $rc "--migrate finds the schema through BINANCE_LIVE_SCHEMA_DIR"
[ $rc -eq 0 ] || tail -n 3 "$H_TMP/m1.log" | sed 's/^/#   /'
n1=$(h_psql "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")
h_psql "DROP DATABASE binance_data" -d postgres 2>/dev/null ||
  PGDATABASE=postgres h_psql "DROP DATABASE binance_data WITH (FORCE)"
PGDATABASE=postgres h_psql "CREATE DATABASE binance_data"
(cd "$app" && env -u BINANCE_LIVE_SCHEMA_DIR \
  "$BUILD/binance-live" --migrate -c "$app/cfg.yaml") >"$H_TMP/m2.log" 2>&1
ok $? "--migrate finds ./schema from the working directory (WORKDIR /app)"
n2=$(h_psql "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")
[ "${n1:-0}" -gt 0 ] && [ "$n1" = "$n2" ]
ok $? "both ways create the same tables ($n1, $n2)"
(cd "$H_TMP" && BINANCE_LIVE_SCHEMA_DIR="$H_TMP/nowhere" \
  "$BUILD/binance-live" --migrate -c "$app/cfg.yaml") >"$H_TMP/m3.log" 2>&1
rc=$?
[ $rc -ne 0 ]
ok $? "a wrong BINANCE_LIVE_SCHEMA_DIR fails (status $rc), it is really read"
done_testing
