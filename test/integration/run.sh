#!/bin/bash
# run.sh - runs ringlb's integration tests: every test_*.py in the copy,
# splice, epoll and auto modes, each under `timeout 120`; a test marked
# run-once (below) runs once.
#
#   RINGLB=build/ringlb test/integration/run.sh [TEST...]
#
# TEST names a test (test_bulk or test_bulk.py) to run only those; MODES
# (default "copy splice epoll auto") picks modes; JOBS (default: online CPUs
# + 1) runs that many at once (each test uses its own kernel-chosen ports
# and its own directory, and waits on conditions, so they do not disturb
# each other; JOBS=1 runs them one by one). Prints one PASS/FAIL/SKIP line
# per run as it ends; a failing run also prints its output and ringlb's log.
# Exits 1 if any run failed (skips do not fail the suite), 2 on misuse.
#
# A test whose assertions do not depend on the worker io mode says so in a
# line of its own near the top (before the docstring):
#   # run-once: REASON         one run, in mode auto, whatever MODES says;
#                              lbtest gives its ringlb lb.ini's default io
#                              and forward (auto: epoll where io_uring is
#                              missing, rather than a skip)
#   # run-once none: REASON    one run in mode none (starts no data path)
# REASON says why the mode does not matter; a test that pushes bytes
# through the workers to check them is not marked.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
RINGLB=${RINGLB:-build/ringlb}
# A relative RINGLB is taken from the current directory when it is there,
# else from the repository root (make passes build/ringlb).
case $RINGLB in
/*) ;;
*) if [ -e "$RINGLB" ]; then RINGLB=$PWD/$RINGLB; else RINGLB=$repo/$RINGLB; fi ;;
esac
export RINGLB
MODES=${MODES:-copy splice epoll auto}
PER_TEST_TIMEOUT=${PER_TEST_TIMEOUT:-120}

if [ ! -x "$RINGLB" ]; then
    echo "run.sh: $RINGLB is missing or not executable (run make first)" >&2
    exit 2
fi
command -v python3 >/dev/null || {
    echo "run.sh: python3 is required" >&2
    exit 2
}

if [ $# -gt 0 ]; then
    tests=""
    for t in "$@"; do
        t=${t%.py}
        t=${t##*/}
        [ -f "$here/$t.py" ] || {
            echo "run.sh: no test $here/$t.py" >&2
            exit 2
        }
        tests="$tests $t"
    done
else
    tests=$(cd "$here" && for f in test_*.py; do echo "${f%.py}"; done)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ringlb-it.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM

# The test's own alarm fires first, so a hang is reported with a traceback
# and ringlb's log; timeout(1) is the backstop.
inner=$((PER_TEST_TIMEOUT > 30 ? PER_TEST_TIMEOUT - 15 : PER_TEST_TIMEOUT * 3 / 4))
[ "$inner" -ge 1 ] || inner=1

JOBS=${JOBS:-$(($(nproc 2>/dev/null || echo 1) + 1))}
case $JOBS in '' | *[!0-9]* | 0) echo "run.sh: JOBS must be a positive number" >&2; exit 2 ;; esac

# Runs one test in one mode; writes what to print to $dir/report and
# pass|skip|fail to $dir/result, then prints the report in one piece (runs
# end in any order; the lock keeps a failure's output together).
run_one() { # test mode
    t=$1 m=$2
    label="$t [$m]"
    dir="$work/$t-$m"
    mkdir -p "$dir"
    start=$(date +%s)
    # timeout(1) sends SIGTERM, then SIGKILL 5 s later.
    LBTEST_DIR=$dir LBTEST_TIMEOUT=$inner \
        timeout -k 5 "$PER_TEST_TIMEOUT" python3 "$here/$t.py" "$m" >"$dir/output" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    case $rc in
    0)
        echo pass >"$dir/result"
        printf 'PASS  %-32s %3ss\n' "$label" "$secs" >"$dir/report"
        ;;
    77)
        echo skip >"$dir/result"
        printf 'SKIP  %-32s %s\n' "$label" \
            "$(grep -m1 '^SKIP' "$dir/output" | sed 's/^SKIP [^:]*: //')" >"$dir/report"
        ;;
    *)
        echo fail >"$dir/result"
        why="exit $rc"
        [ $rc -eq 124 ] || [ $rc -eq 137 ] && why="killed after ${PER_TEST_TIMEOUT}s"
        {
            printf 'FAIL  %-32s %3ss (%s)\n' "$label" "$secs" "$why"
            echo "======== output of $t $m ========"
            cat "$dir/output"
            # The test prints ringlb's log itself; after a timeout(1) kill
            # it may not have, so show any log it left that it did not print.
            for log in "$dir"/ringlb*.log; do
                [ -f "$log" ] || continue
                grep -qF -- "---- $log" "$dir/output" && continue
                echo "---- $log ----"
                tail -n 200 "$log"
            done
            echo "======== end of $t $m ========"
        } >"$dir/report"
        ;;
    esac
    flock "$work/print.lock" cat "$dir/report"
}

# The mode of a test's run-once marker (auto when it names none), or
# nothing for a test that runs in every mode.
run_once_mode() { # test
    sed -n -E '1,20{s/^# run-once( ([a-z]+))?: .+/\2/;T;s/^$/auto/;p;q}' "$here/$1.py"
}

# Run-once tests first (some are long), then mode by mode, so that runs
# side by side are different tests (one that keeps the CPUs busy next to
# one that waits on a health check) rather than one test in three modes.
runs="" per_mode=""
for t in $tests; do
    once=$(run_once_mode "$t")
    if [ -n "$once" ]; then
        runs="$runs $t:$once"
    else
        per_mode="$per_mode $t"
    fi
done
for m in $MODES; do
    for t in $per_mode; do runs="$runs $t:$m"; done
done

running=0
for r in $runs; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "${r%%:*}" "${r#*:}" &
    running=$((running + 1))
done
wait

pass=0 fail=0 skip=0
failed=""
for r in $runs; do
    case $(cat "$work/${r%%:*}-${r#*:}/result" 2>/dev/null) in
    pass) pass=$((pass + 1)) ;;
    skip) skip=$((skip + 1)) ;;
    *)
        fail=$((fail + 1))
        failed="$failed $r"
        ;;
    esac
done

echo "integration: $pass passed, $fail failed, $skip skipped"
if [ $fail -gt 0 ]; then
    echo "failed:$failed"
    exit 1
fi
exit 0
