#!/usr/bin/env bash
# make lint: banned functions, formatting drift and cppcheck over src/ and t/.
set -u
cd "$(dirname "$0")/../.."
status=0
files=$(git ls-files 'src/*.c' 'src/*.h' 't/*.c' 't/*.h' 2>/dev/null)
[ -n "$files" ] || files=$(find src t -name '*.[ch]')

# Unbounded or unchecked libc calls (curl's checksrc idea).
if grep -nE '\b(sprintf|vsprintf|strcpy|strcat|gets|atoi|atol|atoll)\s*\(' $files \
     | grep -vE '(snprintf|vsnprintf)\s*\(' | grep -v 'lint: allow'; then
  echo "lint: banned function used (use snprintf, memcpy with a length, strtol with checks)"
  status=1
fi

if command -v clang-format >/dev/null; then
  drift=$(for f in $files; do clang-format --dry-run "$f" 2>&1 | grep -q warning && echo "$f"; done)
  if [ -n "$drift" ]; then
    echo "lint: not clang-formatted (run make fmt):"
    echo "$drift" | sed 's/^/  /'
    status=1
  fi
fi

if command -v cppcheck >/dev/null; then
  cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
    --inline-suppr --suppress=missingIncludeSystem -I src \
    $(git ls-files 'src/*.c' 2>/dev/null) || status=1
fi
exit $status
