#!/bin/sh
# run-all.sh RINGBENCH RINGLB OUT [SCENARIO...] - `make chaos`: plays every
# bench/chaos/*.scn (or those named) with `ringbench chaos`, one after the
# other, and writes OUT.md (a table of results, then each scenario's
# summary) with the timeline plots and JSON timelines in OUT/.
# Exits 1 if a scenario failed (its summary says why; the report is
# written anyway), 2 if one is malformed.
set -u
rb=$1
lb=$2
out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- "$here"/*.scn
mkdir -p "$out"
rm -f "$out"/*.md
rc=0
rows=""
for scn in "$@"; do
    name=$(basename "$scn" .scn)
    echo "== $name" >&2
    "$rb" chaos --scenario "$scn" --ringlb "$lb" --out "$out" --quiet >/dev/null
    r=$?
    case $r in
    0) res=PASS ;;
    2) res="BAD SCENARIO"; rc=2 ;;
    *) res=FAIL; [ $rc -eq 2 ] || rc=1 ;;
    esac
    echo "   $res" >&2
    if [ -f "$out/$name.json" ]; then
        line=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print("%s | %d | %d" % (d["title"].replace("|","\\|"), d["requests"], d["failed"]))' "$out/$name.json")
    else
        line="(no result) | | "
    fi
    rows="$rows| [$name](#$name) | $line | $res |
"
done
{
    echo "# ringbench chaos: the resilience suite"
    echo
    echo "\`make chaos\` on $(uname -sr), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "at the end; $(date -u +%Y-%m-%d). Scenarios: bench/chaos/*.scn (see bench/chaos/README.md)."
    echo
    echo "| scenario | what | requests ok | failed | result |"
    echo "|---|---|---:|---:|---|"
    printf '%s' "$rows"
    echo
    for scn in "$@"; do
        name=$(basename "$scn" .scn)
        echo "<a id=\"$name\"></a>"
        echo
        if [ -f "$out/$name.md" ]; then
            sed "s|](\($name\.svg\))|]($(basename "$out")/\1)|" "$out/$name.md"
            rm -f "$out/$name.md"
        else
            echo "### $name: no report (exit 2: see ringbench chaos --scenario $scn)"
            echo
        fi
    done
} >"$out.md"
echo "wrote $out.md" >&2
exit $rc
