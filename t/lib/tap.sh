# t/lib/tap.sh: TAP output for integration scripts (sourced).
#
#   ok CONDITION_EXIT_STATUS "name"     e.g.  ok $? "server answered"
#   check "name" CMD ARGS...            runs CMD; passes when it exits 0
#   is GOT EXPECTED "name"              string equality, shows both on failure
#   like GOT REGEX "name"               extended-regex match
#   diag "text"                         a comment line
#   done_testing                        prints the plan; exit status 1 if any failed
#
# t/run counts the "ok N" and "not ok N" lines.
TAP_N=0
TAP_FAILED=0

diag() { printf '# %s\n' "$*"; }

ok() {
  local status=$1; shift
  TAP_N=$((TAP_N + 1))
  if [ "$status" -eq 0 ]; then
    printf 'ok %d - %s\n' "$TAP_N" "$*"
  else
    printf 'not ok %d - %s\n' "$TAP_N" "$*"
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
}

check() {
  local name=$1; shift
  "$@" >/dev/null 2>&1
  ok $? "$name"
}

is() {
  local got=$1 want=$2; shift 2
  if [ "$got" = "$want" ]; then
    ok 0 "$*"
  else
    ok 1 "$*"
    diag "  got:      '$got'"
    diag "  expected: '$want'"
  fi
}

like() {
  local got=$1 re=$2; shift 2
  if [[ $got =~ $re ]]; then
    ok 0 "$*"
  else
    ok 1 "$*"
    diag "  got:      '$got'"
    diag "  expected to match: '$re'"
  fi
}

done_testing() {
  printf '1..%d\n' "$TAP_N"
  [ "$TAP_FAILED" -eq 0 ]
}
