#!/bin/sh
# demo.sh RINGLB LBINI - what `make run` runs.
#
# Starts one demo HTTP backend (bench/backend.py --mode http) for every
# loopback `server = NAME HOST:PORT` line of LBINI (the sample lb.ini has
# a on 127.0.0.1:9001 and b on 127.0.0.1:9002), then RINGLB -c LBINI in the
# foreground, and says what to curl. Ctrl-C, or ringlb exiting, stops all
# of it; nothing is left running.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 RINGLB LBINI" >&2
    exit 2
fi
ringlb=$1
ini=$2
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$ringlb" ] || { echo "demo: $ringlb is not executable (run make)" >&2; exit 1; }
[ -r "$ini" ] || { echo "demo: cannot read $ini" >&2; exit 1; }
command -v python3 >/dev/null || { echo "demo: python3 is required" >&2; exit 1; }

"$ringlb" -t -c "$ini" >/dev/null || exit 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringlb-demo.XXXXXX")
pids=""
lb_pid=""

# shellcheck disable=SC2317 # reached through the traps below
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$lb_pid" ] && kill -0 "$lb_pid" 2>/dev/null; then
        kill -TERM "$lb_pid" 2>/dev/null
        # ringlb lets live connections finish (shutdown_grace); a demo does
        # not wait long for them.
        i=0
        while kill -0 "$lb_pid" 2>/dev/null && [ "$i" -lt 30 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$lb_pid" 2>/dev/null
    fi
    for p in $pids; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $pids $lb_pid; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# "server = NAME ADDR [options]" lines on loopback addresses, comments cut.
servers=$(sed -e 's/[;#].*//' "$ini" |
    awk -F'=' '/^[ \t]*server[ \t]*=/ { sub(/^[^=]*=/, ""); print }' |
    awk '$2 ~ /^(127\.|localhost:|\[::1\]:)/ { print $1, $2 }')
if [ -z "$servers" ]; then
    echo "demo: no loopback server lines in $ini; starting ringlb alone" >&2
fi

[ -z "$servers" ] || printf '%s\n' "$servers" >"$tmp/list"

if [ -f "$tmp/list" ]; then
    while read -r name addr; do
        python3 "$here/backend.py" --mode http --name "$name" --listen "$addr" \
            >"$tmp/$name.out" 2>&1 &
        pids="$pids $!"
        i=0
        until grep -q listening "$tmp/$name.out" 2>/dev/null; do
            if ! kill -0 "$!" 2>/dev/null || [ $i -ge 50 ]; then
                echo "demo: backend $name on $addr did not start:" >&2
                cat "$tmp/$name.out" >&2
                exit 1
            fi
            sleep 0.1
            i=$((i + 1))
        done
        echo "demo: $(cat "$tmp/$name.out")"
    done <"$tmp/list"
fi

bind=$(sed -e 's/[;#].*//' "$ini" | awk -F'=' '/^[ \t]*bind[ \t]*=/ { gsub(/[ \t]/, "", $2); print $2; exit }')
case $bind in
unix:*) url="curl --unix-socket ${bind#unix:} http://localhost/" ;;
0.0.0.0:* | \*:*) url="curl http://127.0.0.1:${bind##*:}/" ;;
*) url="curl http://$bind/" ;;
esac

"$ringlb" -c "$ini" &
lb_pid=$!
sleep 0.3
if kill -0 "$lb_pid" 2>/dev/null; then
    echo "demo: ringlb is running (pid $lb_pid). Try:"
    echo "    $url"
    echo "demo: Ctrl-C stops ringlb and the backends."
fi
wait "$lb_pid"
rc=$?
lb_pid=""
echo "demo: ringlb exited ($rc); stopping the backends"
exit "$rc"
