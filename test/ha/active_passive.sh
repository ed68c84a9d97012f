#!/bin/bash
# active_passive.sh - two ringlb balancers behind one VRRP VIP (keepalived).
#
#   cli 10.0.0.10 ──┐
#   lb1 10.0.0.2  ──┤ ringlb + keepalived, priority 150
#   lb2 10.0.0.3  ──┼─ br0 (namespace sw)     VIP 10.0.0.100 (vrid 51)
#   be1 10.0.0.21 ──┤ backends: :9000 answers "NAME BALANCER", :9001 echo
#   be2 10.0.0.22 ──┘
#
# Both ringlb bind the VIP with `freebind`; keepalived tracks ringlb through
# a vrrp_script on /healthz (interval 1 s, fall 1), and both instances are
# `state BACKUP` + `nopreempt`. Phases:
#  1. failover: new connections to the VIP at 50/s (0.5 s timeout each);
#     after 25 answers, kill -9 lb1's ringlb. lb1's check fails, keepalived
#     goes to FAULT and sends priority 0, lb2 takes the VIP. Measured: the
#     outage (kill to the first answer after the last failure, target < 3 s),
#     failed requests, and that nothing fails before the kill or once the VIP
#     is on lb2.
#  2. nopreempt: ringlb on lb1 again; lb1 goes FAULT -> BACKUP and stays
#     BACKUP through 5 adverts of lb2 (a preempting keepalived 2.2.7
#     discards a lower priority's adverts and takes the VIP when its
#     master-down timer, 3.4 s here, runs out); the load (2 s timeouts
#     here) and a long-lived connection through lb2 see nothing.
#  3. preemption, for contrast: lb1's keepalived restarted without
#     `nopreempt` takes the VIP back (after that timer); a connection established
#     through lb2 is reset (TCP ends at the balancer), new connections go on.
#
# Exit 0 pass, 1 fail, 77 skip (no network namespaces).
set -u
# s_* variables come from hatool loop --vars files.
# shellcheck disable=SC2154
. "$(dirname "$0")/lib.sh"
ha_init active-passive keepalived curl

VIP=10.0.0.100
LB1=10.0.0.2
LB2=10.0.0.3
VRID=51
# Both ringlb listen on the VIP itself, the backup before it holds it
# (`freebind`), and keepalived asks ringlb's /healthz whether it serves
# (200 serving; 503 draining once it stops; refused when it is dead).
CHECK_URL=http://127.0.0.1:8406/healthz

lbconf() { # file
    cat >"$1" <<EOF
[global]
workers = 1
admin = 127.0.0.1:8406
shutdown_grace = 1s

[frontend who]
bind = $VIP:8080 freebind
backend = who

[frontend echo]
bind = $VIP:8081 freebind
backend = echo

[backend who]
balance = maglev
health_interval = 500ms
server = be1 10.0.0.21:9000
server = be2 10.0.0.22:9000

[backend echo]
balance = maglev
health_interval = 500ms
server = be1 10.0.0.21:9001
server = be2 10.0.0.22:9001
EOF
}

kaconf() { # file name priority preempt(yes|no)
    np=nopreempt
    [ "$4" = yes ] && np="# preemption (the default)"
    cat >"$1" <<EOF
global_defs {
    router_id $2
    script_user root
}

# A dead ringlb refuses the check at once, so one failure is enough (fall
# 1); a check that is only slow (a loaded host can delay curl's start by
# seconds) must not count as a dead balancer, hence the long timeout.
vrrp_script chk_ringlb {
    script "/usr/bin/curl -sf -m 4 -o /dev/null $CHECK_URL"
    interval 1
    timeout 5
    fall 1
    rise 1
}

vrrp_instance VI_1 {
    state BACKUP
    $np
    interface eth0
    virtual_router_id $VRID
    priority $3
    advert_int 1
    virtual_ipaddress {
        $VIP/24 dev eth0
    }
    track_script {
        chk_ringlb
    }
    notify "$HA_TMP/notify.sh $2"
}
EOF
}

start_ringlb() { # lb...
    for lb in "$@"; do ha_start "$lb-ringlb" "$lb" "$RINGLB" -c "$HA_TMP/$lb.ini"; done
    for lb in "$@"; do
        ha_wait 10 ok \
            "ip netns exec $HA_PREFIX-$lb curl -sf -m 1 -o /dev/null $CHECK_URL && echo ok"
    done
}
start_ka() { # lb
    ha_start "$1-keepalived" "$1" keepalived -n -l -D -G -P -f "$HA_TMP/$1-keepalived.conf" \
        -p "$HA_TMP/$1-ka.pid" -r "$HA_TMP/$1-ka-vrrp.pid" -b "$HA_TMP/$1-ka-bfd.pid"
}
state_is() { ha_wait 10 "^$2\$" "cat $HA_TMP/state.$1 2>/dev/null"; } # lb STATE
vip_on() { ha_wait 10 "inet $VIP/" "ip -n $HA_PREFIX-$1 -4 addr show dev eth0"; }
vip_absent() { # lb
    if ip -n "$HA_PREFIX-$1" -4 addr show dev eth0 | grep -q "inet $VIP/"; then
        ha_fail "$1 holds the VIP too"
    fi
}

# ---- topology ------------------------------------------------------------------
ha_bridge
ha_ns cli lb1 lb2 be1 be2
ha_port cli eth0 10.0.0.10/24
ha_port lb1 eth0 $LB1/24
ha_port lb2 eth0 $LB2/24
ha_port be1 eth0 10.0.0.21/24
ha_port be2 eth0 10.0.0.22/24

cat >"$HA_TMP/notify.sh" <<EOF
#!/bin/sh
# keepalived notify: \$1 our name, then TYPE NAME STATE PRIORITY.
echo "\$4" >"$HA_TMP/state.\$1"
EOF
chmod 755 "$HA_TMP/notify.sh"

ha_backends be1:10.0.0.21 be2:10.0.0.22
# Both ringlb run from the start; the VIP decides which one serves.
lbconf "$HA_TMP/lb1.ini"
lbconf "$HA_TMP/lb2.ini"
start_ringlb lb1 lb2
kaconf "$HA_TMP/lb1-keepalived.conf" lb1 150 no
kaconf "$HA_TMP/lb2-keepalived.conf" lb2 100 no
# lb1 first, so that it is the master when the test starts.
start_ka lb1
state_is lb1 MASTER
vip_on lb1
start_ka lb2
state_is lb2 BACKUP
ha_log "lb1 MASTER with $VIP, lb2 BACKUP"

# What the client's ARP table does (GARPs arriving, entries changing), for
# the log of a failed run.
ha_start cli-neigh cli ip -ts monitor neigh

# ---- 1. failover -----------------------------------------------------------------
ha_log "phase 1: kill -9 lb1's ringlb under 50 new connections/s to $VIP:8080"
ha_in cli $HATOOL loop --label failover --target $VIP:8080 --rate 50 --timeout 0.5 \
    --after-ok 25 --event-cmd "kill -9 $(ha_pid lb1-ringlb)" \
    --mark-cmd "ip -n $HA_PREFIX-lb2 -4 addr show dev eth0" --mark-regex "inet $VIP/" \
    --settle-ok 50 --max-seconds 20 --expect-outage-under 3 --expect-balancer-after-mark $LB2 \
    --json "$HA_TMP/failover.json" --vars "$HA_TMP/failover.vars" ||
    ha_fail "failover: see the loop line above"
ha_gone "$(ha_pid lb1-ringlb)"
state_is lb1 FAULT
vip_absent lb1
. "$HA_TMP/failover.vars"
ha_row "failover: outage (kill -9 to first answer)" "$s_outage_s s" "< 3 s" ok
ha_row "failover: VIP on lb2 after" "$s_mark_s s" "" ok
ha_row "failover: failed / requests" "$s_failed / $s_requests" "failures only in the outage" \
    "ok ($s_errors)"
ha_row "failover: failed before kill, after VIP moved" \
    "$s_failed_before_event, $s_failed_after_mark" \
    "0, 0" ok

# ---- 2. lb1 comes back: nopreempt --------------------------------------------------
ha_log "phase 2: ringlb back on lb1 (nopreempt): the VIP stays on lb2"
stop=$HA_TMP/stop2
ha_bg hold2 cli $HATOOL hold --target $VIP:8081 --ready-file "$HA_TMP/hold2.ready" \
    --stop-file "$stop" --result "$HA_TMP/hold2.txt" --max-seconds 30
ha_wait 10 ok "test -e $HA_TMP/hold2.ready && echo ok"
# Nothing may fail here: a 2 s timeout per request, so that a stall of the
# host itself (seen on the shared 2-core VM: every process, the client
# included, stops for a second or more) is not taken for a failover.
ha_bg load2 cli $HATOOL loop --label nopreempt --target $VIP:8080 --rate 50 --timeout 2 \
    --stop-file "$stop" --max-seconds 30 --expect-no-failures --min-requests 50 \
    --json "$HA_TMP/nopreempt.json" --vars "$HA_TMP/nopreempt.vars"
start_ringlb lb1
state_is lb1 BACKUP
# A preempting keepalived discards the adverts of a lower priority and
# takes over when its master-down timer (3 x advert_int + skew = 3.4 s)
# runs out; five adverts from lb2 (4 s or more) while lb1 is healthy and
# BACKUP show that it does not.
ha_in lb1 $HATOOL adverts --src $LB2 --vrid $VRID --count 5 --timeout 12 ||
    ha_fail "lb1 did not hear lb2's adverts"
state_is lb1 BACKUP
state_is lb2 MASTER
vip_on lb2
vip_absent lb1
touch "$stop"
wait "$(ha_pid load2)" || ha_fail "nopreempt: new connections failed (see the loop line)"
wait "$(ha_pid hold2)"
held=$(cat "$HA_TMP/hold2.txt")
case $held in intact*) ;; *) ha_fail "nopreempt: the connection through lb2: $held" ;; esac
. "$HA_TMP/nopreempt.vars"
ha_row "nopreempt: lb1 back, VIP stays on lb2" "5 adverts heard" "lb1 BACKUP" ok
ha_row "nopreempt: failed / requests" "$s_failed / $s_requests" "0" ok
ha_row "nopreempt: connection through lb2" "$held" "intact" ok

# ---- 3. preemption, for contrast ---------------------------------------------------
ha_log "phase 3: lb1's keepalived restarted with preemption: it takes the VIP back"
ha_kill TERM lb1-keepalived
kaconf "$HA_TMP/lb1-keepalived.conf" lb1 150 yes
stop=$HA_TMP/stop3
ha_bg hold3 cli $HATOOL hold --target $VIP:8081 --ready-file "$HA_TMP/hold3.ready" \
    --stop-file "$stop" --result "$HA_TMP/hold3.txt" --max-seconds 30
ha_wait 10 ok "test -e $HA_TMP/hold3.ready && echo ok"
ha_bg load3 cli $HATOOL loop --label preempt --target $VIP:8080 --rate 50 --timeout 2 \
    --stop-file "$stop" --max-seconds 30 --min-requests 50 --json "$HA_TMP/preempt.json" \
    --vars "$HA_TMP/preempt.vars"
start_ka lb1
state_is lb1 MASTER
vip_on lb1
state_is lb2 BACKUP
# The held connection sends every 100 ms: its next segment reaches lb1,
# which has no such connection and resets it.
ha_wait 10 . "cat $HA_TMP/hold3.txt 2>/dev/null"
touch "$stop"
wait "$(ha_pid load3)"
held=$(cat "$HA_TMP/hold3.txt")
case $held in
*reset*) ;;
*) ha_fail "preempt: expected the connection through lb2 to be reset, got: $held" ;;
esac
. "$HA_TMP/preempt.vars"
ha_row "preempt: lb1 takes the VIP back" "yes" "lb1 MASTER" ok
ha_row "preempt: new connections failed / requests" "$s_failed / $s_requests" "(reported)" \
    "$s_errors"
ha_row "preempt: connection through lb2" "$held" "reset" ok

ha_table
ha_log PASS
