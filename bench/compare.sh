#!/usr/bin/env bash
# bench/compare.sh - ringlb against HAProxy 2.6 (mode tcp) and a direct
# connection, side by side in one run, on loopback.
#
# Backends: nginx (HTTP, tiny static 200), iperf3 -s (bulk), redis-server
# (small request/response), and bench/idle_conns.py serve (holds idle sockets).
# Targets: direct, haproxy, ringlb-auto, ringlb-copy, ringlb-splice, ringlb-epoll, each
# proxy with the same thread count (= nproc). First idle-connection memory
# on the fresh proxies (VmRSS delta / N, bench/idle_conns.py), then the load
# workloads, interleaved: for each round, for each workload, every target in
# turn; the table shows the median over rounds. See bench/README.md.
#
# Usage: bench/compare.sh            (or: make bench)   ~6 minutes
#        QUICK=1 bench/compare.sh                        ~1 minute smoke run
# Knobs (env): ROUNDS DUR WRK_CONNS IPERF_P REDIS_C REDIS_N IDLE_N THREADS
#              TARGETS="direct haproxy ringlb-copy ..." RINGLB=path OUT=file
#              KEEP=1 (keep the temp dir with configs and logs)
# Writes the markdown report to bench/results/latest.md and prints it.

set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Remember which knobs the caller set, to print the exact command.
CMD_ENV=""
for v in QUICK ROUNDS DUR WRK_CONNS IPERF_P REDIS_C REDIS_N IDLE_N THREADS TARGETS RINGLB OUT; do
    # shellcheck disable=SC2089 # the quotes are meant to be printed
    if [ -n "${!v+x}" ]; then CMD_ENV+="$v='${!v}' "; fi
done
CMD_LINE="${CMD_ENV}bench/compare.sh${*:+ $*}"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1} DUR=${DUR:-2} REDIS_N=${REDIS_N:-20000} IDLE_N=${IDLE_N:-2000}
else
    ROUNDS=${ROUNDS:-3} DUR=${DUR:-5} REDIS_N=${REDIS_N:-100000} IDLE_N=${IDLE_N:-9000}
fi
WRK_CONNS=${WRK_CONNS:-64}
IPERF_P=${IPERF_P:-2}
REDIS_C=${REDIS_C:-50}
THREADS=${THREADS:-$(nproc)}
RINGLB=${RINGLB:-$ROOT/build/ringlb}
TARGETS=${TARGETS:-direct haproxy ringlb-auto ringlb-copy ringlb-splice ringlb-epoll}
OUT=${OUT:-$ROOT/bench/results/latest.md}
IDLE_PY="$ROOT/bench/idle_conns.py"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools
need_ringlb=0
case " $TARGETS " in *" ringlb-"*) need_ringlb=1 ;; esac
missing=""
for t in haproxy nginx wrk iperf3 redis-server redis-benchmark python3 ss timeout; do
    command -v "$t" >/dev/null 2>&1 || missing+=" $t"
done
if [ -n "$missing" ]; then
    die "missing tool(s):$missing
  On Debian: apt-get install haproxy nginx-light wrk iperf3 redis-server redis-tools python3 iproute2"
fi
if [ "$need_ringlb" = 1 ] && [ ! -x "$RINGLB" ]; then
    die "ringlb binary not found at $RINGLB (run 'make' first, or set RINGLB=path,
  or TARGETS='direct haproxy' to measure without it)"
fi
[ -r "$IDLE_PY" ] || die "missing $IDLE_PY"
RINGLB_SRC=$RINGLB
for t in $TARGETS; do
    case $t in direct | haproxy | ringlb-auto | ringlb-copy | ringlb-splice | ringlb-epoll) ;;
    *) die "unknown target '$t' in TARGETS" ;; esac
done

# ---------------------------------------------------------------- temp dir, cleanup
T=$(mktemp -d "${TMPDIR:-/tmp}/ringlb-bench.XXXXXX") || die "mktemp failed"
declare -A PID=()  # name -> pid of every long-running process we started
declare -A DEAD=() # target -> reason, once a proxy is found dead
START_ORDER=()
cleanup() {
    local rc=$? name pid i alive
    trap - EXIT INT TERM
    [ -n "${CLIENT:-}" ] && kill -TERM "$CLIENT" 2>/dev/null
    for ((i = ${#START_ORDER[@]} - 1; i >= 0; i--)); do
        name=${START_ORDER[i]}
        pid=${PID[$name]:-}
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    done
    for _ in $(seq 50); do
        alive=0
        for pid in "${PID[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for name in "${!PID[@]}"; do
        pid=${PID[$name]}
        if kill -0 "$pid" 2>/dev/null; then
            log "warning: $name (pid $pid) did not exit 5 s after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    wait 2>/dev/null
    if [ "${KEEP:-0}" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; }; then
        log "configs and logs kept in $T"
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------- ports
# 4 backend ports + 4 per proxy (http, iperf, redis, hold), contiguous, free,
# below the ephemeral range so load-generator source ports never collide.
NPORTS=24
used_ports() { ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u; }
BASE=""
for _ in $(seq 50); do
    b=$((10000 + RANDOM % 20000))
    if ! used_ports | awk -v lo="$b" -v hi="$((b + NPORTS - 1))" '$1 >= lo && $1 <= hi { f = 1 } END { exit !f }'; then
        BASE=$b
        break
    fi
done
[ -n "$BASE" ] || die "could not find $NPORTS free loopback ports"
P_NGINX=$BASE P_IPERF=$((BASE + 1)) P_REDIS=$((BASE + 2)) P_HOLD=$((BASE + 3))
declare -A PBASE=([haproxy]=$((BASE + 4)) [ringlb-copy]=$((BASE + 8)) [ringlb-splice]=$((BASE + 12)) [ringlb-epoll]=$((BASE + 16)) [ringlb-auto]=$((BASE + 20)))
port_of() { # target workload(http|iperf|redis|hold)
    local off
    case $2 in http) off=0 ;; iperf) off=1 ;; redis) off=2 ;; hold) off=3 ;; esac
    if [ "$1" = direct ]; then
        case $2 in http) echo $P_NGINX ;; iperf) echo $P_IPERF ;; redis) echo $P_REDIS ;; hold) echo $P_HOLD ;; esac
    else
        echo $((${PBASE[$1]} + off))
    fi
}

# ---------------------------------------------------------------- process helpers
start() { # name cmd... ; stdout+stderr go to $T/name.log
    local name=$1
    shift
    "$@" >"$T/$name.log" 2>&1 &
    PID[$name]=$!
    START_ORDER+=("$name")
}
# Load generators run in the background and are waited for with the `wait`
# builtin, which a trapped signal interrupts at once (a foreground command
# would delay Ctrl-C until it finished).
CLIENT=""
client() { # out-file cmd...
    local out=$1 rc
    shift
    "$@" >"$out" 2>&1 &
    CLIENT=$!
    wait "$CLIENT"
    rc=$?
    CLIENT=""
    return $rc
}
log_tail() { tail -n "${2:-15}" "$T/$1.log" 2>/dev/null | sed 's/^/    /'; }
wait_listen() { # name port...
    local name=$1 port
    shift
    for port in "$@"; do
        for i in $(seq 100); do
            ss -Hltn "sport = :$port" | grep -q . && break
            if ! kill -0 "${PID[$name]}" 2>/dev/null; then
                die "$name exited during start-up; its log:
$(log_tail "$name")"
            fi
            [ "$i" = 100 ] && die "$name is not listening on 127.0.0.1:$port after 10 s; its log:
$(log_tail "$name")"
            sleep 0.1
        done
    done
}

# ---------------------------------------------------------------- backends
mkdir -p "$T/nginx/tmp" "$T/res" "$T/raw"
# Run a private copy, so a rebuild during the run cannot change the binary.
if [ "$need_ringlb" = 1 ]; then
    cp "$RINGLB_SRC" "$T/ringlb" || die "cannot copy $RINGLB_SRC"
    RINGLB="$T/ringlb"
    RINGLB_BUILT=$(date -u -r "$RINGLB_SRC" '+%Y-%m-%d %H:%M UTC')
fi
GIT_REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user $(id -un) $(id -gn);"
cat >"$T/nginx/nginx.conf" <<EOF
$NGINX_USER
worker_processes 2;
daemon off;
master_process on;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$P_NGINX backlog=4096;
        location / { default_type text/plain; return 200 "ok\n"; }
    }
}
EOF
nginx -t -q -p "$T/nginx/" -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" >"$T/nginx-t.log" 2>&1 ||
    die "nginx config check failed:
$(sed 's/^/    /' "$T/nginx-t.log")"

log "temp dir $T, ports $BASE..$((BASE + NPORTS - 1))"
start nginx nginx -p "$T/nginx/" -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf"
start iperf3 iperf3 -s -B 127.0.0.1 -p "$P_IPERF"
start redis redis-server --bind 127.0.0.1 --port "$P_REDIS" --save '' --appendonly no \
    --daemonize no --protected-mode no --dir "$T" --logfile ''
start hold python3 "$IDLE_PY" serve --port "$P_HOLD"
wait_listen nginx "$P_NGINX"
wait_listen iperf3 "$P_IPERF"
wait_listen redis "$P_REDIS"
wait_listen hold "$P_HOLD"

# ---------------------------------------------------------------- proxies
start_haproxy() {
    local p=${PBASE[haproxy]}
    cat >"$T/haproxy.cfg" <<EOF
global
    nbthread $THREADS
    maxconn 9800
    pidfile $T/haproxy.pid

defaults
    mode tcp
    maxconn 9800
    timeout connect 5s
    timeout client 1h
    timeout server 1h

frontend http
    bind 127.0.0.1:$p
    default_backend http
backend http
    server a 127.0.0.1:$P_NGINX

frontend iperf
    bind 127.0.0.1:$((p + 1))
    default_backend iperf
backend iperf
    server a 127.0.0.1:$P_IPERF

frontend redis
    bind 127.0.0.1:$((p + 2))
    default_backend redis
backend redis
    server a 127.0.0.1:$P_REDIS

frontend hold
    bind 127.0.0.1:$((p + 3))
    default_backend hold
backend hold
    server a 127.0.0.1:$P_HOLD
EOF
    haproxy -c -q -f "$T/haproxy.cfg" >"$T/haproxy-c.log" 2>&1 ||
        die "haproxy config check failed:
$(sed 's/^/    /' "$T/haproxy-c.log")"
    start haproxy haproxy -db -f "$T/haproxy.cfg"
    wait_listen haproxy "$p" $((p + 1)) $((p + 2)) $((p + 3))
}

start_ringlb() { # target io forward
    local name=$1 io=$2 fwd=$3 p=${PBASE[$1]} ini="$T/$1.ini"
    cat >"$ini" <<EOF
[global]
workers = $THREADS
io = $io
forward = $fwd
admin =
log_level = warn

[frontend http]
bind = 127.0.0.1:$p
backend = http
[backend http]
balance = roundrobin
health = none
server = a 127.0.0.1:$P_NGINX

[frontend iperf]
bind = 127.0.0.1:$((p + 1))
backend = iperf
[backend iperf]
balance = roundrobin
health = none
server = a 127.0.0.1:$P_IPERF

[frontend redis]
bind = 127.0.0.1:$((p + 2))
backend = redis
[backend redis]
balance = roundrobin
health = none
server = a 127.0.0.1:$P_REDIS

[frontend hold]
bind = 127.0.0.1:$((p + 3))
backend = hold
[backend hold]
balance = roundrobin
health = none
server = a 127.0.0.1:$P_HOLD
EOF
    "$RINGLB" -t -c "$ini" >"$T/$name-t.log" 2>&1 ||
        die "ringlb -t -c $ini failed:
$(sed 's/^/    /' "$T/$name-t.log")"
    start "$name" "$RINGLB" -c "$ini"
    wait_listen "$name" "$p" $((p + 1)) $((p + 2)) $((p + 3))
}

for t in $TARGETS; do
    case $t in
    haproxy) start_haproxy ;;
    ringlb-auto) start_ringlb ringlb-auto uring auto ;;
    ringlb-copy) start_ringlb ringlb-copy uring copy ;;
    ringlb-splice) start_ringlb ringlb-splice uring splice ;;
    ringlb-epoll) start_ringlb ringlb-epoll epoll copy ;;
    esac
done
log "started: $(for n in "${START_ORDER[@]}"; do printf '%s=%s ' "$n" "${PID[$n]}"; done)"

# ---------------------------------------------------------------- measurement helpers
rec() { echo "$3" >>"$T/res/$1.$2"; }             # metric target value
rec_fail() { : >"$T/res/$1.$2.fail"; }             # metric target: a run failed
note() { echo "- $*" >>"$T/problems"; log "$*"; } # something worth reporting

backends_alive() { # a dead backend spoils every target: stop the run
    local b
    for b in nginx iperf3 redis hold; do
        kill -0 "${PID[$b]}" 2>/dev/null && continue
        die "backend $b exited during ${CUR:-?}; its log:
$(log_tail "$b")"
    done
}

alive() { # target -> 0 if it can be measured
    local t=$1
    [ "$t" = direct ] && return 0
    [ -n "${DEAD[$t]:-}" ] && return 1
    if ! kill -0 "${PID[$t]}" 2>/dev/null; then
        wait "${PID[$t]}" 2>/dev/null
        local rc=$?
        DEAD[$t]="exited (status $rc) during: ${CUR:-?}"
        note "**$t died** (exit status $rc) during ${CUR:-?}; last lines of its log:"
        log_tail "$t" 30 | sed 's/^/    /' >>"$T/problems"
        return 1
    fi
    return 0
}

proc_ticks() { # pid -> user+system CPU ticks (1/100 s) so far, 0 if gone
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

run_wrk() { # target round kind(ka|close)
    local t=$1 r=$2 kind=$3 port out rps hdr=() t0=0 t1=0 n
    port=$(port_of "$t" http)
    out="$T/raw/wrk-$kind-$t-$r.txt"
    [ "$kind" = close ] && hdr=(-H 'Connection: close')
    [ "$t" != direct ] && t0=$(proc_ticks "${PID[$t]}")
    client "$out" timeout $((DUR + 20)) wrk -t1 -c"$WRK_CONNS" -d"${DUR}s" "${hdr[@]}" "http://127.0.0.1:$port/"
    [ "$t" != direct ] && t1=$(proc_ticks "${PID[$t]}")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    # The proxy's own CPU per request: on a box this small the load
    # generator and the backend share the cores, so throughput understates
    # how much less work one proxy does than another.
    n=$(awk '/ requests in / { print $1 }' "$out")
    if [ "$t" != direct ] && [ -n "$n" ] && [ "$n" -gt 0 ] && [ "$t1" -gt "$t0" ]; then
        rec "${kind}_cpu" "$t" "$(awk -v d=$((t1 - t0)) -v n="$n" 'BEGIN { printf "%.2f", d * 10000 / n }')"
    fi
    local errs non2xx
    errs=$(grep -E '^ +Socket errors:' "$out" | sed 's/^ *//')
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    [ -n "$errs" ] && note "wrk $kind $t round $r: $errs"
    [ -n "$non2xx" ] && note "wrk $kind $t round $r: $non2xx non-2xx responses"
    if [ -z "$rps" ]; then
        note "wrk $kind $t round $r failed: $(tail -n 3 "$out" | tr '\n' ' ')"
        rec_fail "$kind" "$t"
        return
    fi
    rec "$kind" "$t" "$rps"
}

restart_iperf3() {
    kill -TERM "${PID[iperf3]}" 2>/dev/null
    wait "${PID[iperf3]}" 2>/dev/null
    start iperf3 iperf3 -s -B 127.0.0.1 -p "$P_IPERF"
    wait_listen iperf3 "$P_IPERF"
}

run_iperf() { # target round
    local t=$1 r=$2 port out g
    port=$(port_of "$t" iperf)
    out="$T/raw/iperf-$t-$r.json"
    client "$out" timeout $((DUR + 20)) iperf3 -c 127.0.0.1 -p "$port" -t "$DUR" -P "$IPERF_P" -J --connect-timeout 3000
    g=$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
if "error" in d: sys.exit(d["error"])
print("%.3f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))' "$out" 2>&1)
    if [[ ! $g =~ ^[0-9.]+$ ]]; then
        note "iperf3 $t round $r failed: $g"
        rec_fail bulk "$t"
        restart_iperf3
        return
    fi
    rec bulk "$t" "$g"
}

run_redis() { # target round
    local t=$1 r=$2 port out line
    port=$(port_of "$t" redis)
    out="$T/raw/redis-$t-$r.csv"
    client "$out" timeout 90 redis-benchmark -h 127.0.0.1 -p "$port" -c "$REDIS_C" -n "$REDIS_N" -t set,get --csv
    for op in GET SET; do
        line=$(grep "^\"$op\"" "$out" | tr -d '"')
        if [ -z "$line" ]; then
            note "redis-benchmark $op $t round $r failed: $(tail -n 3 "$out" | tr '\n' ' ')"
            rec_fail "${op,,}_p50" "$t"
            rec_fail "${op,,}_p99" "$t"
            continue
        fi
        # test,rps,avg,min,p50,p95,p99,max (ms)
        IFS=, read -r _ _ _ _ p50 _ p99 _ <<<"$line"
        rec "${op,,}_p50" "$t" "$(awk -v v="$p50" 'BEGIN { printf "%.0f", v * 1000 }')"
        rec "${op,,}_p99" "$t" "$(awk -v v="$p99" 'BEGIN { printf "%.0f", v * 1000 }')"
    done
}

run_idle() { # target
    local t=$1 port out
    port=$(port_of "$t" hold)
    out="$T/raw/idle-$t.txt"
    client "$out" timeout 300 python3 "$IDLE_PY" measure --port "$port" --pid "${PID[$t]}" -n "$IDLE_N"
    if ! grep -q '^n=' "$out"; then
        note "idle-connection measurement $t failed: $(tail -n 3 "$out" | tr '\n' ' ')" \
            "(its RLIMIT_NOFILE: $(awk '/Max open files/ { print $4 }' "/proc/${PID[$t]}/limits" 2>/dev/null))"
        rec_fail idle "$t"
    else
        rec idle "$t" "$(sed -n 's/.*kib_per_conn=\([0-9.-]*\).*/\1/p' "$out")"
        sed -n 's/^n=.*/&/p' "$out" >"$T/res/idle_detail.$t"
    fi
    # let the proxy and the holder close their sides before the next one
    for _ in $(seq 100); do
        [ "$(ss -Htn state established "( dport = :$P_HOLD )" | wc -l)" -lt 10 ] && break
        sleep 0.1
    done
}

# ---------------------------------------------------------------- run
n_targets=$(wc -w <<<"$TARGETS")
est=$((ROUNDS * n_targets * (3 * DUR + 1 + REDIS_N / 40000) + n_targets * (2 + IDLE_N / 2000) + 3))
log "targets: $TARGETS; $ROUNDS round(s) of ${DUR}s runs; about $((est / 60))m$((est % 60))s"
T0=$SECONDS
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Idle-connection memory first, on fresh processes (before the load runs
# leave allocator caches warm, which would hide per-connection growth).
for t in $TARGETS; do
    [ "$t" = direct ] && continue
    alive "$t" || continue
    CUR="idle connections ($IDLE_N)"
    log "idle memory: $t, $IDLE_N connections"
    run_idle "$t"
    backends_alive
    alive "$t"
done

for r in $(seq "$ROUNDS"); do
    for w in ka close bulk redis; do
        log "round $r/$ROUNDS: $w"
        for t in $TARGETS; do
            alive "$t" || continue
            CUR="$w round $r"
            case $w in
            ka | close) run_wrk "$t" "$r" "$w" ;;
            bulk) run_iperf "$t" "$r" ;;
            redis) run_redis "$t" "$r" ;;
            esac
            backends_alive
            alive "$t"
        done
    done
done
ELAPSED=$((SECONDS - T0))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# warn-level lines a proxy printed while being measured
for t in $TARGETS; do
    [ "$t" = direct ] && continue
    if [ -s "$T/$t.log" ]; then
        note "$t printed $(wc -l <"$T/$t.log") log line(s); first ones:"
        head -n 10 "$T/$t.log" | sed 's/^/    /' >>"$T/problems"
    fi
done

# ---------------------------------------------------------------- report
ver() { "$@" 2>&1 | head -n 1; }
RINGLB_VER="(not measured)"
[ "$need_ringlb" = 1 ] && RINGLB_VER="$(ver "$RINGLB" -V), ${RINGLB_SRC#"$ROOT"/} built $RINGLB_BUILT"

H_NPROC=$(nproc)
H_KERNEL=$(uname -r)
H_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
H_CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
H_MEM=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
V_RINGLB="$RINGLB_VER (tree $GIT_REV)"
V_HAPROXY=$(ver haproxy -v)
V_NGINX=$(ver nginx -v)
V_WRK=$(ver wrk --version)
V_IPERF=$(ver iperf3 --version)
V_REDIS=$(ver redis-benchmark --version)
V_KERNEL_URING=$(sysctl -n kernel.io_uring_disabled 2>/dev/null || echo n/a)
# shellcheck disable=SC2090 # CMD_LINE's quotes are meant to be printed
export LOAD_START LOAD_END T TARGETS ROUNDS DUR WRK_CONNS IPERF_P REDIS_C REDIS_N IDLE_N THREADS CMD_LINE ELAPSED QUICK \
    H_NPROC H_KERNEL H_DATE H_CPU H_MEM V_RINGLB V_HAPROXY V_NGINX V_WRK V_IPERF V_REDIS V_KERNEL_URING

mkdir -p "$(dirname "$OUT")"
python3 - "$OUT.tmp" <<'PY'
import os, statistics, sys

E = os.environ
T = E["T"]
targets = E["TARGETS"].split()
proxies = [t for t in targets if t != "direct"]
ringlbs = [t for t in targets if t.startswith("ringlb-")]
base = "haproxy" if "haproxy" in targets else None


def vals(metric, t):
    try:
        with open(f"{T}/res/{metric}.{t}") as f:
            return [float(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def med(metric, t):
    v = vals(metric, t)
    return statistics.median(v) if v else None


def failed(metric, t):
    return os.path.exists(f"{T}/res/{metric}.{t}.fail")


def cell(x, metric, t):
    if x is None and (failed(metric, t) or (metric.startswith("add_") and failed(metric[4:], t))):
        return "failed"
    return fmt(x, metric)


def fmt(x, metric):
    if x is None:
        return "—"
    if metric in ("ka", "close"):
        return f"{x:,.0f}"
    if metric == "bulk":
        return f"{x:.2f}"
    if metric == "idle":
        return f"{x:.2f}"
    if metric.endswith("_cpu"):
        return f"{x:.1f}"
    return f"{x:.0f}"


# rows: (key, label, target text, kind) kind: higher|lower|info|added|absolute
rows = [
    ("ka", f"keep-alive req/s (wrk -c{E['WRK_CONNS']})", "ratio ≥ 1.25", "higher"),
    ("close", f"new conn/s (wrk -c{E['WRK_CONNS']}, Connection: close)", "ratio ≥ 1.25", "higher"),
    ("bulk", f"bulk Gbit/s (iperf3 -P {E['IPERF_P']})", "ratio ≥ 1.25", "higher"),
    ("ka_cpu", "proxy CPU µs per keep-alive request", "", "info"),
    ("close_cpu", "proxy CPU µs per new connection", "", "info"),
    ("get_p50", f"redis GET p50 µs (-c {E['REDIS_C']})", "", "info"),
    ("get_p99", "redis GET p99 µs", "", "info"),
    ("set_p99", "redis SET p99 µs", "", "info"),
    ("add_get_p99", "added GET p99 over direct µs", "ratio ≤ 0.5", "added"),
    ("add_set_p99", "added SET p99 over direct µs", "ratio ≤ 0.5", "added"),
    ("idle", f"idle KiB/conn ({E['IDLE_N']} conns, VmRSS)", "ringlb ≤ 4 KiB", "absolute"),
]

table = {}
for key, _, _, _ in rows:
    for t in targets:
        if key.startswith("add_"):
            m = key[4:]
            p, d = med(m, t), med(m, "direct")
            table[key, t] = None if (t == "direct" or p is None or d is None) else p - d
        else:
            table[key, t] = med(key, t)


def mark(ok):
    return "met" if ok else "**missed**"


def ratio_cell(key, kind, t):
    v, h = table[key, t], table.get((key, base)) if base else None
    if kind == "absolute":
        if v is None:
            return f"— · {mark(False)}" if failed(key, t) else "—"
        r = f"{v / h:.2f}" if h else "—"
        return f"{r} · {mark(v <= 4.0)}"
    if v is None or h is None:
        return "—"
    if kind == "added":
        if h <= 0:
            return f"n/a (haproxy adds {h:.0f}) · {mark(v <= 0)}"
        r = v / h
        return f"{r:.2f} · {mark(r <= 0.5)}"
    if h == 0:
        return "—"
    r = v / h
    if kind == "higher":
        return f"{r:.2f} · {mark(r >= 1.25)}"
    return f"{r:.2f}"


cols = ["metric", "target"] + targets + ([f"{t.replace('ringlb-', '')}/haproxy" for t in ringlbs] if base else [])
lines = []
A = lines.append
A("# ringlb vs HAProxy vs direct — loopback benchmark")
A("")
if E.get("QUICK") == "1":
    A("> **QUICK smoke run** (short runs, few rounds): for checking the script, not for conclusions.")
    A("")
A(f"- date: {E['H_DATE']}; run time {int(E['ELAPSED']) // 60}m{int(E['ELAPSED']) % 60:02d}s; "
  f"load average (1/5/15 min) at start {E['LOAD_START']}, at end {E['LOAD_END']}")
A(f"- machine: {E['H_NPROC']} CPUs ({E['H_CPU']}), {E['H_MEM']}, kernel {E['H_KERNEL']}, kernel.io_uring_disabled={E['V_KERNEL_URING']}")
A(f"- ringlb: {E['V_RINGLB']}")
A(f"- {E['V_HAPROXY']}")
A(f"- {E['V_NGINX']}; {E['V_WRK']}; {E['V_IPERF']}; {E['V_REDIS']}")
A(f"- command: `{E['CMD_LINE']}` (from the repository root; `make bench` runs `bench/compare.sh`)")
A(f"- proxies: {E['THREADS']} threads each (haproxy `nbthread`, ringlb `workers`); haproxy `mode tcp`; "
  "ringlb-auto = io_uring + auto (the default), ringlb-copy = io_uring + copy, "
  "ringlb-splice = io_uring + splice, ringlb-epoll = epoll + copy")
A(f"- median of {E['ROUNDS']} interleaved round(s) of {E['DUR']} s runs; "
  f"redis-benchmark -n {E['REDIS_N']} -c {E['REDIS_C']} -t set,get; idle memory measured once on fresh processes")
A("")
A("| " + " | ".join(cols) + " |")
A("|" + "|".join(["---", "---"] + ["--:"] * (len(cols) - 2)) + "|")
for key, label, tgt, kind in rows:
    cells = [label, tgt]
    for t in targets:
        cells.append(cell(table[key, t], key, t) if not (key == "idle" and t == "direct") else "n/a")
    if base:
        for t in ringlbs:
            cells.append(ratio_cell(key, kind, t))
    A("| " + " | ".join(cells) + " |")
A("")
A("Ratios are ringlb / haproxy of the medians (for the added-latency rows: ringlb's added p99 / haproxy's "
  "added p99, lower is better). The idle row's mark is ringlb's own KiB/conn against 4 KiB.")
A("")

prob = f"{T}/problems"
if os.path.exists(prob):
    A("## Problems seen during the run")
    A("")
    with open(prob) as f:
        A(f.read().rstrip())
    A("")

A("## Raw values per round")
A("")
A("| metric | " + " | ".join(targets) + " |")
A("|---|" + "|".join(["---"] * len(targets)) + "|")
for key, label, _, _ in rows:
    if key.startswith("add_"):
        continue
    A(f"| {label} | " + " | ".join(", ".join(fmt(x, key) for x in vals(key, t)) or "—" for t in targets) + " |")
idle_details = []
for t in proxies:
    try:
        with open(f"{T}/res/idle_detail.{t}") as f:
            idle_details.append(f"{t}: {f.read().strip()}")
    except FileNotFoundError:
        pass
if idle_details:
    A("")
    A("Idle memory (VmRSS, KiB): " + "; ".join(idle_details))
A("")
A("Commands per target (PORT = that target's frontend, or the backend for direct): "
  f"`wrk -t1 -c{E['WRK_CONNS']} -d{E['DUR']}s http://127.0.0.1:PORT/`, the same with `-H 'Connection: close'`, "
  f"`iperf3 -c 127.0.0.1 -p PORT -t {E['DUR']} -P {E['IPERF_P']} -J`, "
  f"`redis-benchmark -p PORT -c {E['REDIS_C']} -n {E['REDIS_N']} -t set,get --csv`, "
  f"`bench/idle_conns.py measure --port PORT --pid PROXY_PID -n {E['IDLE_N']}`.")

with open(sys.argv[1], "w") as f:
    f.write("\n".join(lines) + "\n")
PY
[ -s "$OUT.tmp" ] || die "report generation failed"
mv "$OUT.tmp" "$OUT"
echo
cat "$OUT"
echo
log "report written to ${OUT#"$ROOT"/}"
if [ -n "${DEAD[*]:-}" ]; then
    log "a proxy died during the run (see 'Problems' above)"
    exit 1
fi
