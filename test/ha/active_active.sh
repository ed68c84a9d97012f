#!/bin/bash
# active_active.sh - two ringlb balancers behind an ECMP route to one VIP,
# announced over BGP by BIRD from each balancer to a router.
#
#   cli 10.1.0.10 (+ sources .11-.26) ── rt 10.1.0.1 | rt 10.0.0.1 ──┐
#                                        bird: AS 65000, ECMP, L4 hash  │
#   lb1 10.0.0.2  ringlb + bird (AS 65001), VIP 192.0.2.100/32 on lo ──┤ br0
#   lb2 10.0.0.3  ringlb + bird (AS 65001), VIP 192.0.2.100/32 on lo ──┤ (sw)
#   be1 10.0.0.21, be2 10.0.0.22: :9000 answers "NAME BALANCER" ───────┘
#
# Both ringlb run the same config with `balance = maglev` (hash of the
# client address). BGP with BFD (300 ms x 3) and hold time 3 s. The router
# hashes flows on addresses and ports (fib_multipath_hash_policy = 1), so
# the connections of one client spread over both balancers. Phases:
#  1. consistency: with the router pinned to lb1 (a policy route), then to
#     lb2, each of 16 source addresses reaches the same backend both ways;
#     unpinned, several connections per source go through both balancers
#     and still reach that one backend.
#  2. failover: new connections at 50/s from the 16 sources (0.5 s timeout
#     each); after 25 answers lb1 "loses power": its link goes down, then
#     its ringlb and bird are killed -9. BFD takes the route down, the
#     router withdraws lb1's nexthop, and every connection goes through lb2
#     to the same backend as before. Measured: the outage (kill to the first
#     answer after the last failure), when the route was withdrawn, failed
#     requests.
#
# Exit 0 pass, 1 fail, 77 skip (no network namespaces).
set -u
# s_* variables come from hatool loop --vars files.
# shellcheck disable=SC2154
. "$(dirname "$0")/lib.sh"
ha_init active-active bird birdc

VIP=192.0.2.100
RT=10.0.0.1
LB1=10.0.0.2
LB2=10.0.0.3
SOURCES=$(seq -s, -f '10.1.0.%g' 11 26)

lbconf() { # file
    cat >"$1" <<EOF
[global]
workers = 1
admin = 127.0.0.1:8406
shutdown_grace = 1s

[frontend who]
bind = $VIP:8080
backend = who

[backend who]
balance = maglev
health_interval = 500ms
server = be1 10.0.0.21:9000
server = be2 10.0.0.22:9000
EOF
}

# BFD and BGP timers shared by the router and the balancers.
BFD='protocol bfd {
    interface "eth0" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };
}'
BGP_TIMERS='hold time 3; keepalive time 1; connect delay time 1; connect retry time 1;
    error wait time 1, 5; bfd on;'

rtconf() { # file
    cat >"$1" <<EOF
log stderr all;
router id $RT;
protocol device { scan time 10; }
# ECMP: the routes of both balancers, equal in BGP terms, become one
# multipath route in the kernel.
protocol kernel {
    ipv4 { import none; export all; };
    merge paths on;
}
$BFD
template bgp balancer {
    local $RT as 65000;
    $BGP_TIMERS
    ipv4 { import where net = $VIP/32; export none; };
}
protocol bgp lb1 from balancer { neighbor $LB1 as 65001; }
protocol bgp lb2 from balancer { neighbor $LB2 as 65001; }
EOF
}

lbbird() { # file address
    cat >"$1" <<EOF
log stderr all;
router id $2;
protocol device { scan time 10; }
# The VIP is an address on lo: announced while this host is up.
protocol direct { ipv4; interface "lo"; }
$BFD
protocol bgp uplink {
    local $2 as 65001;
    neighbor $RT as 65000;
    $BGP_TIMERS
    ipv4 { import none; export where net = $VIP/32; };
}
EOF
}

start_bird() { # ns
    bird -p -c "$HA_TMP/$1-bird.conf" || ha_fail "bird rejects $1's config"
    ha_start "$1-bird" "$1" bird -f -c "$HA_TMP/$1-bird.conf" -s "$HA_TMP/$1-bird.ctl" \
        -P "$HA_TMP/$1-bird.pid"
}
route() { echo "ip -n $HA_PREFIX-rt route show $VIP/32"; }

# ---- topology ------------------------------------------------------------------
ha_bridge
ha_ns cli rt lb1 lb2 be1 be2
ha_wire cli eth0 10.1.0.10/24 rt eth1 10.1.0.1/24
for a in ${SOURCES//,/ }; do ip -n "$HA_PREFIX-cli" addr add "$a/24" dev eth0; done
ip -n "$HA_PREFIX-cli" route add default via 10.1.0.1
ha_port rt eth0 $RT/24
ha_in rt sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
for lb in lb1 lb2; do
    [ $lb = lb1 ] && a=$LB1 || a=$LB2
    ha_port $lb eth0 $a/24
    ip -n "$HA_PREFIX-$lb" addr add $VIP/32 dev lo
    ip -n "$HA_PREFIX-$lb" route add default via $RT
done
ha_port be1 eth0 10.0.0.21/24
ha_port be2 eth0 10.0.0.22/24

ha_backends be1:10.0.0.21 be2:10.0.0.22
lbconf "$HA_TMP/lb.ini"
rtconf "$HA_TMP/rt-bird.conf"
lbbird "$HA_TMP/lb1-bird.conf" $LB1
lbbird "$HA_TMP/lb2-bird.conf" $LB2
# BGP comes up while ringlb starts: the route is only waited for after
# ringlb listens, so no client is sent to a balancer that does not yet.
start_bird rt
start_bird lb1
start_bird lb2
ha_start lb1-ringlb lb1 "$RINGLB" -c "$HA_TMP/lb.ini"
ha_start lb2-ringlb lb2 "$RINGLB" -c "$HA_TMP/lb.ini"
ha_wait_port lb1 $VIP 8080
ha_wait_port lb2 $VIP 8080
ha_wait 30 '^2$' "$(route) | grep -c 'nexthop via'"
ha_log "ECMP route: $(ip -n "$HA_PREFIX-rt" route show $VIP/32 | tr -s '\n\t ' ' ')"

# ---- 1. consistency --------------------------------------------------------------
ha_log "phase 1: the same backend for each source through lb1, through lb2, and through ECMP"
pin() { # balancer
    ip -n "$HA_PREFIX-rt" route replace $VIP/32 via "$1" table 100
}
ip -n "$HA_PREFIX-rt" rule add from 10.1.0.0/24 lookup 100 pref 100
pin $LB1
ha_in cli $HATOOL who --target $VIP:8080 --sources "$SOURCES" --expect-balancer $LB1 \
    --min-backends 2 --map-out "$HA_TMP/map.json" || ha_fail "pinned to lb1"
pin $LB2
ha_in cli $HATOOL who --target $VIP:8080 --sources "$SOURCES" --expect-balancer $LB2 \
    --expect-map "$HA_TMP/map.json" || ha_fail "pinned to lb2: another backend than through lb1"
ip -n "$HA_PREFIX-rt" rule del pref 100
ip -n "$HA_PREFIX-rt" route flush table 100
ecmp=$(ha_in cli $HATOOL who --target $VIP:8080 --sources "$SOURCES" --per-source 4 \
    --min-balancers 2 --expect-map "$HA_TMP/map.json") || ha_fail "through ECMP: $ecmp"
echo "$ecmp"
spread=$(echo "$ecmp" |
    sed -n 's/.*backends \({.*}\), balancers \({.*}\),.*/backends \1, balancers \2/p')
ha_row "same backend per source via lb1 / lb2 (pinned)" "16 sources x 1 each way" "same" ok
ha_row "same backend per source via ECMP (4 each)" "$spread" "same, both lbs" ok

# ---- 2. failover -----------------------------------------------------------------
ha_log "phase 2: lb1 fails (link down, ringlb and bird killed -9) under 50 new connections/s"
ha_in cli $HATOOL loop --label failover --target $VIP:8080 --sources "$SOURCES" --rate 50 \
    --timeout 0.5 --after-ok 25 \
    --event-cmd "ip -n $HA_PREFIX-lb1 link set eth0 down;
                 kill -9 $(ha_pid lb1-ringlb) $(ha_pid lb1-bird)" \
    --mark-cmd "$(route)" --mark-regex "^$VIP via $LB2 " --settle-ok 50 --max-seconds 20 \
    --expect-outage-under 3 --expect-map "$HA_TMP/map.json" --expect-balancer-after-mark $LB2 \
    --json "$HA_TMP/failover.json" --vars "$HA_TMP/failover.vars" ||
    ha_fail "failover: see the loop line above"
ha_gone "$(ha_pid lb1-ringlb)"
ha_gone "$(ha_pid lb1-bird)"
. "$HA_TMP/failover.vars"
ha_row "failover: outage (kill to first answer after last failure)" "$s_outage_s s" "< 3 s" ok
ha_row "failover: route withdrawn (one nexthop) after" "$s_mark_s s" "" ok
ha_row "failover: failed / requests" "$s_failed / $s_requests" "only flows to lb1" \
    "ok ($s_errors)"
ha_row "failover: failed before kill, after withdrawal" \
    "$s_failed_before_event, $s_failed_after_mark" "0, 0" ok
ha_row "failover: backend per source unchanged" "$s_backend_mismatches mismatches" "0" ok

ha_table
ha_log PASS
