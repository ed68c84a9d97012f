# shellcheck shell=bash
# lib.sh - sourced by the test/ha topology scripts: namespaces, links,
# daemons, the result table and a cleanup that runs however the script ends.
#
# Every namespace of one run is named "$HA_PREFIX-NAME" with HA_PREFIX =
# rlbha<pid of the script>, so runs side by side never collide. Links are
# made inside the namespaces (the bridge lives in its own "sw" namespace),
# so nothing is added to the host's own network namespace. A run that
# crashed (SIGKILL, power cut) leaves namespaces whose pid is gone: the next
# run removes them first.

HA_HERE=$(cd "$(dirname "$0")" && pwd)
HA_REPO=$(cd "$HA_HERE/../.." && pwd)
# The interpreter itself, resolved once: a version manager's shim (pyenv)
# costs seconds per start on a loaded machine, and the scripts start many.
# -S: the helpers use the standard library only.
PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
HATOOL="$PYTHON -S -u $HA_HERE/hatool.py"
RINGLB=${RINGLB:-build/ringlb}
case $RINGLB in /*) ;; *) RINGLB=$HA_REPO/$RINGLB ;; esac

HA_PREFIX=rlbha$$
HA_TMP=
HA_FAILED=0
HA_ROWS=

ha_log() { printf '%s [%s] %s\n' "$(date +%T.%N | cut -c1-12)" "$HA_NAME" "$*"; }
ha_fail() {
    ha_log "FAIL: $*"
    HA_FAILED=1
    exit 1
}

# Exits 77 (skip) when this machine cannot make network namespaces, 1 when
# a tool the topology needs is missing (.ci/deps ha installs them).
ha_require() { # tool...
    if [ "$(id -u)" -ne 0 ]; then
        echo "$HA_NAME: SKIP: network namespaces need root (run as root: make test-ha)"
        exit 77
    fi
    if ! ip netns add "$HA_PREFIX-probe" 2>/dev/null; then
        echo "$HA_NAME: SKIP: cannot create a network namespace here (ip netns add failed)"
        exit 77
    fi
    ip netns del "$HA_PREFIX-probe"
    PATH=$PATH:/usr/sbin:/sbin
    for t in "$@"; do
        command -v "$t" >/dev/null || {
            echo "$HA_NAME: $t is missing: run .ci/deps ha (keepalived, bird2, curl)" >&2
            exit 1
        }
    done
    [ -x "$RINGLB" ] || {
        echo "$HA_NAME: $RINGLB is missing (run make first)" >&2
        exit 1
    }
}

# Removes every namespace of one prefix: first the processes in them (our
# own daemons: ringlb, keepalived, bird, backends, clients), by pid, then
# the namespaces. Safe to run twice.
ha_reap_prefix() { # prefix
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1-"); do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    done
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1-"); do
        # A process that has not died yet keeps the namespace busy: wait
        # (bounded) for the pids to go before deleting.
        for _ in $(seq 50); do
            [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
            sleep 0.05
        done
        ip netns del "$ns" 2>/dev/null
    done
}

# Namespaces left by runs whose script is no longer alive.
ha_reap_stale() {
    for p in $(ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^\(rlbha[0-9]*\)-.*/\1/p' |
        sort -u); do
        kill -0 "${p#rlbha}" 2>/dev/null && continue
        ha_log "removing namespaces and files left by a dead run ($p)"
        ha_reap_prefix "$p"
        rm -rf "${TMPDIR:-/tmp}/ringlb-ha.$p".*
    done
}

ha_cleanup() {
    rc=$?
    trap - EXIT INT TERM
    [ $HA_FAILED -eq 1 ] && rc=1
    # Stop what the script itself started outside the namespaces (clients
    # running in the background are in the client namespace, reaped below).
    # Job notices ("Killed") of the daemons are noise here: reap quietly.
    {
        for j in $(jobs -p); do kill -9 "$j"; done
        ha_reap_prefix "$HA_PREFIX"
        wait
    } 2>/dev/null
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$HA_TMP" ]; then
        echo "---- $HA_NAME failed (rc $rc); logs in $HA_TMP:"
        for f in "$HA_TMP"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $(basename "$f") (last 25 lines)"
            tail -n 25 "$f"
        done
    fi
    if [ -n "$HA_TMP" ] && [ "${HA_KEEP:-0}" != 1 ]; then rm -rf "$HA_TMP"; fi
    exit "$rc"
}

ha_init() { # name tool...
    HA_NAME=$1
    shift
    ha_require "$@"
    HA_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ringlb-ha.$HA_PREFIX.XXXXXX")
    chmod 755 "$HA_TMP"
    trap ha_cleanup EXIT
    trap 'exit 130' INT TERM
    ha_reap_stale
}

ha_ns() { # name...
    for n in "$@"; do
        ip netns add "$HA_PREFIX-$n"
        ip -n "$HA_PREFIX-$n" link set lo up
    done
}

# The bridge "br0" in its own namespace "sw".
ha_bridge() {
    ha_ns sw
    ip -n "$HA_PREFIX-sw" link add br0 type bridge
    ip -n "$HA_PREFIX-sw" link set br0 up
}

# A veth pair: IFNAME with ADDR in namespace NS, its peer (named NS) a port
# of the bridge.
ha_port() { # ns ifname addr/len
    ip -n "$HA_PREFIX-sw" link add "$1" type veth peer name "$2" netns "$HA_PREFIX-$1"
    ip -n "$HA_PREFIX-sw" link set "$1" master br0 up
    ip -n "$HA_PREFIX-$1" addr add "$3" dev "$2"
    ip -n "$HA_PREFIX-$1" link set "$2" up
}

# A veth pair straight between two namespaces.
ha_wire() { # ns1 if1 addr1 ns2 if2 addr2
    ip -n "$HA_PREFIX-$1" link add "$2" type veth peer name "$5" netns "$HA_PREFIX-$4"
    ip -n "$HA_PREFIX-$1" addr add "$3" dev "$2"
    ip -n "$HA_PREFIX-$4" addr add "$6" dev "$5"
    ip -n "$HA_PREFIX-$1" link set "$2" up
    ip -n "$HA_PREFIX-$4" link set "$5" up
}

ha_in() { # ns cmd...
    ns=$1
    shift
    ip netns exec "$HA_PREFIX-$ns" "$@"
}

# Starts a command in a namespace in the background, output to
# $HA_TMP/LABEL.log, pid in $HA_TMP/LABEL.pid (ip netns exec execs the
# command: same pid). `wait "$(ha_pid LABEL)"` gives its exit status.
ha_bg() { # label ns cmd...
    label=$1 ns=$2
    shift 2
    ip netns exec "$HA_PREFIX-$ns" "$@" >"$HA_TMP/$label.log" 2>&1 &
    echo $! >"$HA_TMP/$label.pid"
}

# The same for a daemon that the test kills: out of the job table, so that
# bash prints no "Killed" notice for it (bash still reaps it).
ha_start() { # label ns cmd...
    ha_bg "$@"
    disown $!
}

ha_pid() { cat "$HA_TMP/$1.pid"; }

# Waits (bounded) until process PID is gone.
ha_gone() { # pid
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.05
    done
    ha_fail "process $1 did not exit"
}

ha_kill() { # signal label
    kill "-$1" "$(ha_pid "$2")" 2>/dev/null
    ha_gone "$(ha_pid "$2")"
}

# Waits until the shell command CMD prints a line matching the extended
# regex RE: polled every 50 ms, at most TIMEOUT_S seconds (in bash, not a
# Python helper: each interpreter start costs a lot on a loaded machine).
ha_wait() { # timeout_s re cmd...
    t=$1 re=$2
    shift 2
    i=$((t * 20))
    while [ $i -gt 0 ]; do
        out=$(eval "$*" 2>/dev/null)
        printf '%s\n' "$out" | grep -Eq -- "$re" && return 0
        sleep 0.05
        i=$((i - 1))
    done
    ha_fail "after ${t}s still waiting for: $* ~ /$re/ (last output: $out)"
}

# Waits until NS accepts TCP connections on ADDR:PORT.
ha_wait_port() { # ns addr port
    ha_wait 10 ok \
        "ip netns exec $HA_PREFIX-$1 timeout 1 bash -c ': </dev/tcp/$2/$3' 2>/dev/null && echo ok"
}

# Backends: in each namespace NS (named like the backend) at ADDR, hatool
# serve (answers "NAME BALANCER") on :9000 and an echo server
# (bench/backend.py) on :9001. All start at once, then are waited for.
ha_backends() { # ns:addr...
    for b in "$@"; do
        ha_start "${b%%:*}-who" "${b%%:*}" $HATOOL serve --listen "${b#*:}:9000" --name "${b%%:*}"
        ha_start "${b%%:*}-echo" "${b%%:*}" "$PYTHON" -S -u "$HA_REPO/bench/backend.py" \
            --listen "${b#*:}:9001" --mode echo --name "${b%%:*}"
    done
    for b in "$@"; do
        ha_wait_port "${b%%:*}" "${b#*:}" 9000
        ha_wait_port "${b%%:*}" "${b#*:}" 9001
    done
}


# One row of the result table: what, value, target/expectation, verdict.
ha_row() { HA_ROWS="$HA_ROWS$1|$2|$3|$4
"; }

ha_table() {
    echo
    echo "== $HA_NAME results"
    printf '%s' "$HA_ROWS" | awk -F'|' '
        { w1 = length($1) > w1 ? length($1) : w1; w2 = length($2) > w2 ? length($2) : w2
          w3 = length($3) > w3 ? length($3) : w3; r[NR] = $0 }
        END { fmt = "%-" w1 "s  %-" w2 "s  %-" w3 "s  %s\n"
              for (i = 1; i <= NR; i++) {
                  split(r[i], f, "|"); printf fmt, f[1], f[2], f[3], f[4] } }'
}
