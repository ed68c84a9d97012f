# bench/lib.sh - what the benchmark scripts share: logging, a temp dir, and
# stopping every process they started, however they exit.
#
# Source it, then call bench_tmpdir NAME: it sets T to a fresh directory and
# installs the exit trap. Append the pid of every background process to
# PIDS; on exit they get SIGTERM, 5 s to go, then SIGKILL (with a warning),
# and T is removed unless KEEP=1 or the script failed (then it is kept and
# named, for its configs and logs).

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

PIDS=()

bench_cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 50); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null && log "warning: pid $p needed SIGKILL"; done
    wait 2>/dev/null
    if [ "${KEEP:-0}" = 1 ] || [ $rc != 0 ]; then log "kept $T"; else rm -rf "$T"; fi
    exit $rc
}

bench_tmpdir() { # name
    T=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || die "mktemp failed"
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
