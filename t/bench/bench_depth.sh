#!/usr/bin/env bash
# bench_depth.sh: runs build/t/bench_depth (the whole depth path for 200
# symbols: frame -> parse -> book -> envelope -> Redis publish) against a
# throw-away redis-server started by the harness. Prints its figures.
. "$(dirname "$0")/../lib/harness.sh"
h_init
h_redis_start || exit 1
"$BUILD/t/bench_depth"
