#!/bin/sh
# bench/libs/run.sh BUILD - runs the library-vs-hand-written measurements of
# bench/libs/README.md with the binaries `make bench-libs` built in
# BUILD/bench-libs, and prints one markdown report (also written to
# BUILD/bench-libs/report.md). A benchmark, not a test: it fails only when a
# tool is missing, a program fails, or the two JSON renderings differ.
#
# Knobs: ROUNDS (interleaved rounds, default 5), HTTP_SECS (seconds per
# requests/s run, default 3), ONLY (a space-separated subset of
# "qsbr json http sdnotify size", default all).
set -eu

build=${1:-build}
b=$build/bench-libs
rounds=${ROUNDS:-5}
secs=${HTTP_SECS:-3}
only=${ONLY:-"qsbr json http sdnotify size"}
out=$b/report.md
tmp=$(mktemp -d /tmp/ringlb-bench-libs.XXXXXX)
pids=""

cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

command -v valgrind >/dev/null || { echo "run.sh: valgrind is missing (.ci/deps bench)" >&2; exit 1; }
want() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }

# Instructions (Ir) of function <fn>, inclusive, from a callgrind profile.
cg_ir() {
    callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
        awk -v fn="$2" '$0 ~ ":" fn " \\[" { gsub(",", "", $1); print $1; exit }'
}

# A loopback port nobody holds now (the kernel picks it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

report() {
echo "# bench/libs report ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo

if want qsbr; then
    echo "## QSBR: ringlb core/qsbr.c vs liburcu-qsbr $(dpkg-query -W -f='${Version}' liburcu-dev 2>/dev/null)"
    echo
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.qsbr" "$b/qsbr_bench" callgrind 2>/dev/null
    none=$(cg_ir "$tmp/cg.qsbr" reader_loop_none)
    echo "Instructions per loop turn (callgrind, 100,000 turns; the announcement is the"
    echo "difference to the bare turn):"
    echo
    echo "| loop turn | instructions/turn | announcement |"
    echo "| --- | ---: | ---: |"
    for f in none ringlb urcu urcu_offline; do
        ir=$(cg_ir "$tmp/cg.qsbr" "reader_loop_$f")
        awk -v f="$f" -v ir="$ir" -v n="$none" 'BEGIN {
            name["none"] = "bare (load snapshot, check, work)"
            name["ringlb"] = "+ qsbr_quiescent (ringlb)"
            name["urcu"] = "+ rcu_quiescent_state (liburcu, inlined)"
            name["urcu_offline"] = "+ rcu_thread_offline + rcu_thread_online (liburcu)"
            printf "| %s | %.1f | %s |\n", name[f], ir / 100000, f == "none" ? "-" : sprintf("%.1f", (ir - n) / 100000) }'
    done
    echo
    "$b/qsbr_bench" reader 2000000
    "$b/qsbr_bench" writer "$rounds"
    echo
fi

if want json; then
    echo "## JSON: /api/backends by hand (core/metrics.c) vs jansson $(dpkg-query -W -f='${Version}' libjansson-dev 2>/dev/null)"
    echo
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.json" "$b/json_bench" callgrind \
        >/dev/null 2>"$tmp/json.err" || { grep -v '^==' "$tmp/json.err" >&2; exit 1; }
    echo "| what (1,000 servers) | instructions (callgrind) |"
    echo "| --- | ---: |"
    for f in one_hand one_jansson one_fault; do
        printf '| %s | %s |\n' "$f" "$(cg_ir "$tmp/cg.json" "$f")"
    done
    echo
    "$b/json_bench" time "$rounds"
    echo
fi

if want http; then
    echo "## Admin HTTP: ringlb core/admin.c vs libmicrohttpd $(dpkg-query -W -f='${Version}' libmicrohttpd-dev 2>/dev/null) (internal epoll thread)"
    echo
    fport=$(free_port)
    aport=$(free_port)
    cat >"$tmp/lb.ini" <<EOF
[global]
workers = 1
admin = 127.0.0.1:$aport
log_level = error
[frontend f]
bind = 127.0.0.1:$fport
backend = b
[backend b]
health = none
server = a 127.0.0.1:9
EOF
    "$build/ringlb" -c "$tmp/lb.ini" 2>"$tmp/ringlb.err" &
    pids="$pids $!"
    # mhd_admin serves until its stdin closes: a fifo we hold open.
    mport=$(free_port)
    mkfifo "$tmp/mhd.in"
    "$b/mhd_admin" "$mport" <"$tmp/mhd.in" 2>"$tmp/mhd.err" &
    pids="$pids $!"
    exec 9>"$tmp/mhd.in"
    "$b/http_probe" wait "$aport" || { cat "$tmp/ringlb.err" >&2; exit 1; }
    "$b/http_probe" wait "$mport"
    echo "Requests/s, GET /nothing (a 404: the server itself, no page rendering), one connection per request (median of $rounds interleaved rounds of ${secs} s; errors summed):"
    echo
    echo "| clients | ringlb | libmicrohttpd | ratio ringlb/mhd |"
    echo "| ---: | ---: | ---: | ---: |"
    for c in 1 64; do
        : >"$tmp/r.ringlb"; : >"$tmp/r.mhd"
        r=0
        while [ $r -lt "$rounds" ]; do
            if [ $((r % 2)) -eq 0 ]; then order="ringlb mhd"; else order="mhd ringlb"; fi
            for who in $order; do
                if [ $who = ringlb ]; then p=$aport; else p=$mport; fi
                "$b/http_probe" rps "$p" "$c" "$secs" >>"$tmp/r.$who"
            done
            r=$((r + 1))
        done
        med() { sort -n "$1" | awk '{ v[NR] = $1; c += $2; x += $3; s += $4; if ($5) st = $5 }
            END { printf "%d (failed: %d connect, %d no answer, %d other status%s)", v[int((NR + 1) / 2)], c, x, s, st ? " " st : "" }'; }
        rl=$(med "$tmp/r.ringlb"); rm_=$(med "$tmp/r.mhd")
        ratio=$(awk -v a="${rl%% *}" -v b="${rm_%% *}" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
        echo "| $c | $rl | $rm_ | $ratio |"
    done
    echo
    echo "What each answers to abuse (ringlb | libmicrohttpd):"
    echo
    "$b/http_probe" abuse "$aport" >"$tmp/a.ringlb"
    "$b/http_probe" abuse "$mport" >"$tmp/a.mhd"
    paste -d'\t' "$tmp/a.ringlb" "$tmp/a.mhd" | awk -F'\t' '
        NR == 1 { print "| request | ringlb | libmicrohttpd |"; next }
        NR == 2 { print "| --- | --- | --- |"; next }
        { split($1, a, " [|] "); split($2, m, " [|] "); sub(/ [|]$/, "", a[2]); sub(/ [|]$/, "", m[2])
          print a[1] " | " a[2] " | " m[2] " |" }'
    echo
    exec 9>&-
fi

if want sdnotify; then
    echo "## sd_notify: ringlb core/sdnotify.c vs libsystemd $(dpkg-query -W -f='${Version}' libsystemd-dev 2>/dev/null)"
    echo
    echo "| case | ringlb sdnotify_send | libsystemd sd_notify |"
    echo "| --- | --- | --- |"
    "$b/sdnotify_lib" nosd
    "$b/sdnotify_lib" call 2000
    h=$(valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.h" "$b/sdnotify_hand" startup 2>&1 | awk '/Collected/ { gsub(",", "", $4); print $4 }')
    l=$(valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.l" "$b/sdnotify_lib" startup 2>&1 | awk '/Collected/ { gsub(",", "", $4); print $4 }')
    echo "| instructions to start and exit a process (callgrind) | $h | $l (linked with -lsystemd) |"
    echo
fi

if want size; then
    echo "## What each library brings in (shared objects it loads, their total size on disk)"
    echo
    echo "| library | objects loaded with it (besides libc, ld.so) | bytes on disk |"
    echo "| --- | --- | ---: |"
    for so in libjansson.so.4 libmicrohttpd.so.12 liburcu-qsbr.so.8 libsystemd.so.0; do
        path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ { print $NF; exit }')
        [ -n "$path" ] || { echo "| $so | not installed | - |"; continue; }
        deps=$(ldd "$path" | awk '$3 ~ /^\// && $3 !~ /\/libc\.so|ld-linux/ { print $3 }')
        names=$(for d in $deps; do basename "$d"; done | tr '\n' ' ')
        bytes=$(for f in "$path" $deps; do stat -L -c %s "$f"; done | awk '{ s += $1 } END { print s }')
        echo "| $so | $(echo "$deps" | awk 'NF' | wc -l): ${names:-none} | $bytes |"
    done
    echo
    echo "Hand-written code it would replace (lines, wc -l):"
    echo
    echo '```'
    (cd "$(dirname "$0")/../.." && wc -l core/admin.c core/admin_parse.c core/qsbr.c core/sdnotify.c core/log.c)
    echo '```'
fi

}

report >"$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
