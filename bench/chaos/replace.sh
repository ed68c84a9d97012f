#!/bin/sh
# replace.sh RINGBENCH ADDR WORK - the on_down hook of replace.scn: starts a
# new echo backend on the failed server's address ADDR, in the background
# (ringlb kills a hook still running after 60 s), and exits once it
# listens. Its log goes to WORK/replacement.log. The runner (a child
# subreaper) adopts the new process and stops it at the end.
set -eu
rb=$1
addr=$2
work=$3
out=$work/replacement-$$.out
"$rb" serve --listen "$addr" --mode echo --workers 1 --name replacement \
    >"$out" 2>>"$work/replacement.log" </dev/null &
# It prints "... listening on ADDR" once it accepts; give up after 5 s.
i=0
while ! grep -q "listening on" "$out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "replacement on $addr did not start" >&2
        exit 1
    fi
    sleep 0.05
done
echo "replacement for $addr started (pid $!)"
