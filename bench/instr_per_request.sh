#!/bin/bash
# bench/instr_per_request.sh - instructions ringlb executes per keep-alive
# request, counted by callgrind (valgrind), so that two builds can be
# compared on a shared, noisy machine where CPU time is not repeatable.
#
#   bench/instr_per_request.sh BINARY [BINARY...]
#
# For each binary, ROUNDS times (default 2): an echo backend (ringbench
# serve), ringlb under callgrind with one worker and io = epoll (valgrind
# does not follow io_uring's shared rings), and `ringbench latency --closed`
# with 4 connections of 64 B for 6 s. Counting starts once ringlb listens,
# so start-up is left out; shutdown (a few thousand instructions) is in.
# Prints instructions per request; compare binaries by the ratio.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
RB=${RINGBENCH:-$here/../build/ringbench}
command -v valgrind >/dev/null || die "valgrind is needed (apt-get install valgrind)"
[ -x "$RB" ] || die "$RB is missing (run make)"
[ $# -ge 1 ] || die "usage: $0 BINARY [BINARY...]"
bench_tmpdir instr

be=$(free_port)
bench_start echo "$be" "$RB" serve --listen "127.0.0.1:$be" --mode echo --workers 1
for round in $(seq "${ROUNDS:-2}"); do
    for bin in "$@"; do
        fe=$(free_port)
        cat >"$T/lb.ini" <<EOC
[global]
workers = 1
io = epoll
admin =
log_level = warn
forward = copy
[frontend f]
bind = 127.0.0.1:$fe
backend = b
[backend b]
health = none
server = s 127.0.0.1:$be
EOC
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$T/cg.out" \
            "$bin" -c "$T/lb.ini" >"$T/ringlb.log" 2>&1 &
        lp=$!
        wait_port "$fe" || die "ringlb did not start: $(tail -3 "$T/ringlb.log")"
        callgrind_control -i on "$lp" >/dev/null 2>&1
        out=$("$RB" latency --io epoll --target "127.0.0.1:$fe" --closed --conns 4 --size 64 \
            --duration 6s --warmup 0 --json) || die "ringbench latency failed"
        kill -INT "$lp"
        wait "$lp" 2>/dev/null
        n=$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"])')
        ir=$(callgrind_annotate "$T/cg.out" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
        printf '%s round %d: %d requests, %d instructions per request\n' "$bin" "$round" "$n" \
            $((ir / n))
    done
done
