# bench/lib.sh - what the benchmark scripts share: logging, a temp dir, and
# stopping every process they started, however they exit.
#
# Source it, then call bench_tmpdir NAME: it sets T to a fresh directory and
# installs the exit trap. Start servers with bench_start, which records them
# in PIDS (and their names in NAMES); on exit they get SIGTERM, 5 s to go,
# then SIGKILL (with a warning), and T is removed unless KEEP=1 or the
# script failed (then it is kept and named, for its configs and logs).

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

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_port() { # port: 0 once 127.0.0.1:port accepts, 1 after 10 s
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1).close()" \
            2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

NAMES=()
bench_start() { # name port cmd...: runs cmd in the background (output in
    # $T/name.log) and waits until it listens on 127.0.0.1:port, or dies
    local name=$1 port=$2
    shift 2
    "$@" >"$T/$name.log" 2>&1 &
    PIDS+=($!)
    NAMES+=("$name")
    wait_port "$port" || die "$name did not start on port $port: $(tail -3 "$T/$name.log")"
}
