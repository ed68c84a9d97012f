#!/usr/bin/env bash
# bench/sockperf_compare.sh - ringbench's own latency and request rate
# against sockperf's (issue 5), one connection, 64-byte messages, closed loop
# (sockperf ping-pong is closed loop: one message in flight).
#
# Usage: bench/sockperf_compare.sh
# Knobs (env): ROUNDS (3) DUR (5, seconds per run) SIZE (64) PIN (both)
#              RINGBENCH (build/ringbench) KEEP=1 (keep the temp dir)
#   PIN=both   every process on CPU 0: client and server share one CPU, so
#              the numbers are the per-request cost of the tools, not where
#              the scheduler put them (the default; see bench/README.md)
#   PIN=split  clients on CPU 0, servers on CPU 1: every reply is a
#              cross-CPU wake-up
#   PIN=none   no pinning: whatever the scheduler does
#
# Every round runs, in turn (interleaved, so drift hits all alike):
#   sockperf ping-pong -> ringbench serve --mode sockperf   (same backend code
#   ringbench latency  -> ringbench serve --mode echo        as the next line)
#   sockperf ping-pong -> sockperf server                   (sockperf's own)
# and ringbench latency with --io epoll as well as with io_uring. Prints
# medians and the ratios ringbench / sockperf: p50 RTT (target <= 1.10)
# and max request rate (target >= 1.00). Total time ~ ROUNDS x 4 x DUR.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5}
SIZE=${SIZE:-64}
PIN=${PIN:-both}
RINGBENCH=${RINGBENCH:-$ROOT/build/ringbench}

command -v sockperf >/dev/null || die "sockperf not installed (apt-get install sockperf)"
command -v taskset >/dev/null || die "taskset not installed (util-linux)"
[ -x "$RINGBENCH" ] || die "$RINGBENCH not found (run make)"
[ "$DUR" -ge 2 ] 2>/dev/null || die "DUR must be a whole number of seconds >= 2"
case $PIN in
both) CCPU=0 SCPU=0 ;;
split) CCPU=0 SCPU=1 ;;
none) CCPU= SCPU= ;;
*) die "PIN must be both, split or none" ;;
esac
[ "$PIN" != split ] || [ "$(nproc)" -ge 2 ] || die "PIN=split needs 2 CPUs"

bench_tmpdir sockperf-cmp

# Command prefixes that pin to a CPU (taskset execs the command, so a
# background job's $! is the server itself, and cleanup's kill reaches it).
CPRE=()
SPRE=()
[ -z "$CCPU" ] || CPRE=(taskset -c "$CCPU")
[ -z "$SCPU" ] || SPRE=(taskset -c "$SCPU")

P_RBSP=$(free_port)
P_RBECHO=$(free_port)
P_SP=$(free_port)
# One worker: the client has one connection, and sockperf server is one thread.
bench_start rb-sockperf "$P_RBSP" "${SPRE[@]}" "$RINGBENCH" serve --listen "127.0.0.1:$P_RBSP" \
    --mode sockperf --workers 1
bench_start rb-echo "$P_RBECHO" "${SPRE[@]}" "$RINGBENCH" serve --listen "127.0.0.1:$P_RBECHO" \
    --mode echo --workers 1
bench_start sockperf-server "$P_SP" "${SPRE[@]}" sockperf server --tcp -i 127.0.0.1 -p "$P_SP"

# sockperf -> "p50_rtt_us rate": --full-rtt prints round trips (without it,
# half of one); the rate is over its valid window (warm-up and tail cut).
run_sockperf() { # port label
    local f="$T/$2.$r.txt" p50 rate
    "${CPRE[@]}" sockperf ping-pong --tcp -i 127.0.0.1 -p "$1" -m "$SIZE" -t "$DUR" --full-rtt \
        >"$f" 2>&1 || die "sockperf ping-pong against port $1 failed: $(tail -3 "$f")"
    p50=$(sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p' "$f")
    rate=$(sed -n 's/.*Valid Duration\] RunTime=\([0-9.]*\) sec; SentMessages=[0-9]*; ReceivedMessages=\([0-9]*\).*/\2 \1/p' "$f" |
        awk '{ printf "%.0f", $1 / $2 }')
    [ -n "$p50" ] && [ -n "$rate" ] || die "cannot read sockperf's output: $f"
    echo "$p50 $rate"
}
# ringbench latency -> "p50_rtt_us rate" (its latency is the round trip).
run_ringbench() { # io label
    local f="$T/$2.$r.json"
    "${CPRE[@]}" "$RINGBENCH" latency --target "127.0.0.1:$P_RBECHO" --closed --conns 1 \
        --size "$SIZE" --workers 1 --io "$1" --duration "${DUR}s" --warmup 500ms --json \
        >"$f" 2>"$T/$2.$r.err" || die "ringbench latency failed: $(cat "$f" "$T/$2.$r.err")"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["p50_us"], round(d["rps"]))' "$f"
}

log "sockperf $(sockperf --version 2>&1 | sed -n 's/.*version \([^ ]*\).*/\1/p'), $RINGBENCH," \
    "$(nproc) CPUs, PIN=$PIN, $ROUNDS rounds of ${DUR}s, ${SIZE} B messages"
LABELS="sockperf-rbserve ringbench-uring ringbench-epoll sockperf-own"
for r in $(seq 1 "$ROUNDS"); do
    for l in $LABELS; do
        case $l in
        sockperf-rbserve) v=$(run_sockperf "$P_RBSP" "$l") ;;
        ringbench-uring) v=$(run_ringbench uring "$l") ;;
        ringbench-epoll) v=$(run_ringbench epoll "$l") ;;
        sockperf-own) v=$(run_sockperf "$P_SP" "$l") ;;
        esac
        [ -n "$v" ] || exit 1
        echo "$l $v" >>"$T/results"
        log "round $r: $l: p50 RTT ${v% *} us, ${v#* } req/s"
    done
done

python3 - "$T/results" "$PIN" "$(nproc)" "$(uname -r)" <<'EOF'
import statistics
import sys

path, pin, ncpu, kernel = sys.argv[1:5]
rows = {}
for line in open(path):
    label, p50, rate = line.split()
    rows.setdefault(label, []).append((float(p50), float(rate)))
med = {k: (statistics.median(p for p, _ in v), statistics.median(r for _, r in v))
       for k, v in rows.items()}
print(f"\nsockperf vs ringbench: 1 connection, closed loop, PIN={pin}, {ncpu} CPUs, "
      f"kernel {kernel}; medians of {len(next(iter(rows.values())))} rounds\n")
print("| client -> server | p50 RTT (us) | req/s | rounds: p50 / req/s |")
print("|---|---:|---:|---|")
names = {"sockperf-rbserve": "sockperf ping-pong -> ringbench serve --mode sockperf",
         "ringbench-uring": "ringbench latency (io_uring) -> ringbench serve --mode echo",
         "ringbench-epoll": "ringbench latency --io epoll -> ringbench serve --mode echo",
         "sockperf-own": "sockperf ping-pong -> sockperf server"}
for k in names:
    if k in med:
        raw = ", ".join(f"{p:g} / {r:.0f}" for p, r in rows[k])
        print(f"| {names[k]} | {med[k][0]:.2f} | {med[k][1]:.0f} | {raw} |")
base = med["sockperf-rbserve"]
print("\nratios against sockperf ping-pong -> the same ringbench serve "
      "(p50: target <= 1.10; rate: target >= 1.00):\n")
for k in ("ringbench-uring", "ringbench-epoll"):
    p, r = med[k][0] / base[0], med[k][1] / base[1]
    print(f"  {k}: p50 x{p:.2f} ({'met' if p <= 1.10 else 'MISSED'}), "
          f"rate x{r:.2f} ({'met' if r >= 1.0 else 'MISSED'})")
EOF
