#!/bin/bash
# run.sh - the high-availability topologies in network namespaces (make
# test-ha): active_passive.sh (keepalived, VRRP) and active_active.sh (BIRD,
# BGP + BFD, ECMP), one after the other, each under `timeout`. Each prints
# its result table; a failure also prints the daemons' logs.
#
#   RINGLB=build/ringlb test/ha/run.sh [active_passive|active_active ...]
#
# Exit 0 when every topology passed, 1 when one failed, 77 when all were
# skipped (no network namespaces here: not root, or a sandbox without them).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# Each topology takes about 20 s on an idle 2-core machine; the limit only
# stops a hang (every wait inside is bounded too).
PER_TOPOLOGY_TIMEOUT=${PER_TOPOLOGY_TIMEOUT:-100}

topologies=${*:-active_passive active_active}
fail=0 ran=0
for t in $topologies; do
    t=${t%.sh}
    [ -x "$here/$t.sh" ] || { echo "run.sh: no topology $here/$t.sh" >&2; exit 2; }
    start=$(date +%s)
    timeout -k 5 "$PER_TOPOLOGY_TIMEOUT" "$here/$t.sh"
    rc=$?
    secs=$(($(date +%s) - start))
    case $rc in
    0) echo "PASS $t (${secs}s)"; ran=$((ran + 1)) ;;
    77) echo "SKIP $t" ;;
    124 | 137) echo "FAIL $t: over ${PER_TOPOLOGY_TIMEOUT}s"; fail=1; ran=$((ran + 1)) ;;
    *) echo "FAIL $t (rc $rc, ${secs}s)"; fail=1; ran=$((ran + 1)) ;;
    esac
done
[ $fail -eq 1 ] && exit 1
[ $ran -eq 0 ] && exit 77
exit 0
