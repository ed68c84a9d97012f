#!/usr/bin/env bash
# bench/compare-ringbench.sh - `ringbench compare` of a direct connection,
# ringlb (copy and splice), HAProxy (mode tcp) and nginx stream when they are
# installed, all in front of the same `ringbench serve` backends, on loopback.
#
# Usage: bench/compare-ringbench.sh          (or: make bench-ringbench)
#        QUICK=1 bench/compare-ringbench.sh  1 round of 2 s runs (smoke test)
# Knobs (env): ROUNDS DUR RATES THREADS RINGLB RINGBENCH KEEP=1
# Writes bench/results/ringbench.md and bench/results/ringbench-latency.svg.
# bench/compare.sh (make bench) is unchanged and writes latest.md.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then ROUNDS=${ROUNDS:-1} DUR=${DUR:-2}; else ROUNDS=${ROUNDS:-3} DUR=${DUR:-5}; fi
RATES=${RATES:-5000 20000}
THREADS=${THREADS:-$(nproc)}
RINGLB=${RINGLB:-$ROOT/build/ringlb}
RINGBENCH=${RINGBENCH:-$ROOT/build/ringbench}
OUT=${OUT:-$ROOT/bench/results/ringbench.md}
SVG=${SVG:-${OUT%.md}-latency.svg}

[ -x "$RINGBENCH" ] || die "$RINGBENCH not found (run make)"
[ -x "$RINGLB" ] || die "$RINGLB not found (run make)"
bench_tmpdir ringbench-cmp
# Private copies: a rebuild during the run must not change what is measured.
cp "$RINGBENCH" "$T/ringbench" && cp "$RINGLB" "$T/ringlb" || die "cannot copy the binaries to $T"
RINGBENCH=$T/ringbench
RINGLB=$T/ringlb
NOTES=()
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# Backends: one echo (latency, connrate, throughput both).
P_ECHO=$(free_port)
bench_start echo "$P_ECHO" "$RINGBENCH" serve --listen "127.0.0.1:$P_ECHO" --mode echo \
    --workers "$THREADS"

TARGETS="direct=127.0.0.1:$P_ECHO"
for fwd in copy splice; do
    p=$(free_port)
    cat >"$T/ringlb-$fwd.ini" <<EOI
[global]
workers = $THREADS
io = uring
forward = $fwd
admin =
log_level = warn
[frontend f]
bind = 127.0.0.1:$p
backend = b
[backend b]
health = none
server = s 127.0.0.1:$P_ECHO
EOI
    bench_start "ringlb-$fwd" "$p" "$RINGLB" -c "$T/ringlb-$fwd.ini"
    TARGETS+=" ringlb-$fwd=127.0.0.1:$p"
done
if command -v haproxy >/dev/null; then
    p=$(free_port)
    cat >"$T/haproxy.cfg" <<EOI
global
    nbthread $THREADS
    maxconn 9800
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend f
    bind 127.0.0.1:$p
    default_backend b
backend b
    server s 127.0.0.1:$P_ECHO
EOI
    bench_start haproxy "$p" haproxy -db -f "$T/haproxy.cfg"
    TARGETS+=" haproxy=127.0.0.1:$p"
else
    NOTES+=("haproxy: not installed, column skipped (Debian: apt-get install haproxy)")
fi
NGX_MOD=/usr/lib/nginx/modules/ngx_stream_module.so
if command -v nginx >/dev/null && { [ -f "$NGX_MOD" ] || nginx -V 2>&1 | grep -qE -- '--with-stream( |$)'; }; then
    p=$(free_port)
    mkdir -p "$T/nginx"
    load=""
    [ -f "$NGX_MOD" ] && load="load_module $NGX_MOD;"
    # proxy_half_close: without it nginx tears down both directions when the
    # client shuts down its write side, dropping the echo still in flight,
    # and the checked bulk workload reports lost bytes. ringlb and HAProxy
    # forward the FIN and keep the other direction open.
    cat >"$T/nginx/nginx.conf" <<EOI
$load
$([ "$(id -u)" = 0 ] && echo "user $(id -un) $(id -gn);")
worker_processes $THREADS;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
stream { server { listen 127.0.0.1:$p; proxy_pass 127.0.0.1:$P_ECHO; proxy_half_close on; } }
EOI
    bench_start nginx "$p" nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf"
    TARGETS+=" nginx-stream=127.0.0.1:$p"
elif command -v nginx >/dev/null; then
    msg="nginx stream: $(nginx -v 2>&1 | sed 's/.*: //') has no stream module"
    msg+=" (built \`--with-stream=dynamic\`, $NGX_MOD missing;"
    msg+=" Debian: apt-get install libnginx-mod-stream), column skipped"
    NOTES+=("$msg")
else
    NOTES+=("nginx: not installed, column skipped")
fi
for n in "${NOTES[@]}"; do log "$n"; done

{
    echo "rounds = $ROUNDS"
    echo "baseline = direct"
    echo "plot = lat-${RATES%% *}"
    for t in $TARGETS; do
        printf '[target %s]\naddr = %s\n' "${t%%=*}" "${t#*=}"
    done
    for r in $RATES; do
        printf '[workload lat-%s]\nrun = latency --rate %s --conns 16 --size 64 --duration %ss --warmup 1s\n' "$r" "$r" "$DUR"
    done
    printf '[workload connrate]\nrun = connrate --conns 16 --duration %ss --warmup 1s\n' "$DUR"
    printf '[workload bulk]\nrun = throughput --streams 2 --duration %ss --warmup 1s\n' "$DUR"
} >"$T/compare.ini"

log "targets: $TARGETS"
T0=$(date +%s)
"$RINGBENCH" compare --config "$T/compare.ini" --md "$T/table.md" --svg "$SVG"
rc=$?
# A proxy or backend that died made its cells errors; say which one.
for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
        NOTES+=("${NAMES[$i]} died during the run: $(tail -3 "$T/${NAMES[$i]}.log" | tr '\n' ' ')")
        rc=1
    fi
done
{
    echo "# ringbench compare: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, git $(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
    echo
    echo "Backend: \`ringbench serve --mode echo\` ($THREADS workers). Workloads: open-loop"
    echo "latency at ${RATES// /, } req/s (16 connections, 64 B), connrate (16 concurrent),"
    echo "throughput (2 echo streams, every byte checked). Medians of $ROUNDS interleaved rounds of"
    echo "${DUR} s; ratios are target / direct (for latency, lower is better). Load average"
    echo "at the start: $LOAD0, at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a start value well"
    echo "above 0 means something else was running). Run time $(($(date +%s) - T0)) s."
    echo
    cat "$T/table.md"
    echo
    echo "![latency by percentile]($(basename "$SVG"))"
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        echo "Notes:"
        echo
        for n in "${NOTES[@]}"; do echo "- $n"; done
    fi
} >"$OUT"
cat "$OUT"
exit $rc
