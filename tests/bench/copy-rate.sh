#!/bin/bash
# copy-rate.sh - the CopyObject request-rate figures, end to end, in one command:
# a fresh radosgw, then bench_copy_rate directly, through s3proxy with 30 ms of
# latency, and through s3proxy with none (what the proxy itself costs).
#
#   tests/bench/copy-rate.sh [BUILD_DIR]     (default /work/main/build; builds nothing)
#
# Environment: N (objects, default 2000), SIZE (bytes, 2048), LEVELS (1,16,64),
# SECONDS_MAX (per bench run, 300), DELAY_MS (30), KEEP=1 keeps the work dir,
# BENCH / S3C / S3PROXY override the binaries' paths, S3_SERVER the launcher's.
# Prints every bench line, then a table of rates (level x path) with the
# proxy's CopyObject count per level and the CPU use of every process per level.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(realpath "${1:-/work/main/build}")
BENCH=${BENCH:-$BUILD/tests/bench/bench_copy_rate}
S3C=${S3C:-$BUILD/tests/tools/s3c/s3c}
S3PROXY=${S3PROXY:-$BUILD/tests/tools/proxy/s3proxy}
N=${N:-2000}
SIZE=${SIZE:-2048}
LEVELS=${LEVELS:-1,16,64}
SECONDS_MAX=${SECONDS_MAX:-300}
DELAY_MS=${DELAY_MS:-30}
S3_SERVER=${S3_SERVER:-$REPO/tests/tools/radosgw/s3-server.sh}
WORK=$(mktemp -d /tmp/copy-rate.XXXXXX)
BUCKET=copy-rate-$$
PROXY_PID=

say() { printf '[copy-rate] %s\n' "$*" >&2; }

stop_proxy() { # the proxy dies of the signal: its status is not a failure
    [ -n "$PROXY_PID" ] || return 0
    kill "$PROXY_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=
}

cleanup() {
    local rc=$?
    set +e
    stop_proxy
    [ -d "$WORK/rgw" ] && timeout -k 5 60 bash "$S3_SERVER" stop "$WORK/rgw"
    if [ "${KEEP:-0}" = 1 ] || [ $rc != 0 ]; then say "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for b in "$BENCH" "$S3C"; do
    [ -x "$b" ] || { say "missing $b (build it first)"; exit 2; }
done

# ---- the server ----

start_server() {
    timeout -k 10 180 bash "$S3_SERVER" start "$WORK/rgw" \
        >"$WORK/env.sh" 2>>"$WORK/s3-server.log"
}

say "starting radosgw in $WORK/rgw"
# A second try: the OSD now and then fails to register on a loaded machine.
start_server || { say "radosgw did not start; trying once more"; start_server; } ||
    { cat "$WORK/s3-server.log" >&2; exit 1; }
# shellcheck disable=SC1091
. "$WORK/env.sh"
UPSTREAM=${S3_ENDPOINT#http://}
RGW_PID=$(cat "$WORK/rgw/run/ceph-client.rgw.a.pid")
OSD_PID=$(cat "$WORK/rgw/run/ceph-osd.0.pid")
MON_PID=$(cat "$WORK/rgw/run/ceph-mon.a.pid")

timeout 30 "$S3C" mb "$BUCKET" >/dev/null
# The first write of a fresh cluster creates the data pools (seconds): pay
# that here, not inside the first measured phase.
timeout 60 "$S3C" put "$BUCKET" warm-up "$WORK/env.sh" >/dev/null
timeout 30 "$S3C" rm "$BUCKET" warm-up

# ---- the proxy ----

start_proxy() { # DELAY_MS -> PPORT
    rm -f "$WORK/proxy.port"
    "$S3PROXY" --upstream "$UPSTREAM" --listen 127.0.0.1:0 --port-file "$WORK/proxy.port" \
        --delay-ms "$1" --quiet --max-seconds 900 >>"$WORK/proxy.log" 2>&1 &
    PROXY_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$WORK/proxy.port" ] && break
        kill -0 "$PROXY_PID" 2>/dev/null || { cat "$WORK/proxy.log" >&2; return 1; }
        sleep 0.1
    done
    PPORT=$(cat "$WORK/proxy.port")
    curl -sf -m 5 "http://127.0.0.1:$PPORT/__proxy/stats" >/dev/null
}

proxy_copies() { # total CopyObject requests the proxy has seen
    curl -sf -m 5 "http://127.0.0.1:$PPORT/__proxy/stats" | awk '$1 == "CopyObject" {n = $2} END {print n + 0}'
}

# ---- the runs ----

run_bench() { # NAME ENDPOINT [extra bench args...]
    local name=$1 endpoint=$2
    shift 2
    say "run: $name"
    timeout -k 10 $((SECONDS_MAX + 200)) "$BENCH" --endpoint "$endpoint" --bucket "$BUCKET" \
        --objects "$N" --size "$SIZE" --inflight "$LEVELS" --seconds-max "$SECONDS_MAX" \
        --prefix "$name/" --watch-pids "$WATCH" "$@" | tee "$WORK/$name.out" |
        sed "s/^/$name: /" || say "$name: bench failed"
}

WATCH=$RGW_PID,$OSD_PID,$MON_PID
run_bench direct "$S3_ENDPOINT"
if [ -x "$S3PROXY" ]; then
    for d in "$DELAY_MS" 0; do
        start_proxy "$d"
        run_bench "proxy-${d}ms" "http://127.0.0.1:$PPORT" \
            --proxy-stats "http://127.0.0.1:$PPORT/__proxy/stats" --watch-pids "$PROXY_PID"
        total=$(proxy_copies)
        echo "$total" >"$WORK/proxy-${d}ms.copies"
        stop_proxy
    done
else
    say "no $S3PROXY: proxy runs skipped"
fi

# ---- summary ----

rate_of() { # RUN LEVEL -> "rate (proxy count)"
    [ -f "$WORK/$1.out" ] || { echo "-"; return; }
    awk -v l="inflight=$2" '$1 == "copyobject" && $2 == l {
        r = "-"; p = ""; ab = ""
        for (i = 3; i <= NF; i++) {
            if ($i ~ /^rate=/) r = substr($i, 6)
            if ($i ~ /^proxy_CopyObject=/) p = " (" substr($i, 18) ")"
            if ($i == "ABORTED") ab = "!"
        }
        printf "%s%s%s", r, ab, p; found = 1
    } END { if (!found) printf "-" }' "$WORK/$1.out"
}

runs=(direct "proxy-0ms" "proxy-${DELAY_MS}ms")
echo
echo "CopyObject requests/s, n=$N objects of $SIZE bytes per level (proxy's CopyObject count)"
printf '%-10s' "inflight"
for r in "${runs[@]}"; do printf '%-24s' "$r"; done
echo
for l in ${LEVELS//,/ }; do
    printf '%-10s' "$l"
    for r in "${runs[@]}"; do printf '%-24s' "$(rate_of "$r" "$l")"; done
    echo
done
echo "CPU per level: client and processes in % of one core, machine in % of all $(nproc) cores:"
for r in "${runs[@]}"; do
    [ -f "$WORK/$r.out" ] && awk -v r="$r" '$1 == "copyobject" {
        c = ""
        for (i = 3; i <= NF; i++) if ($i ~ /^(cpu\.|client_cpu=)/) c = c " " $i
        printf "  %-10s %-12s%s\n", r, $2, c }' "$WORK/$r.out"
done
nlevels=$(echo "$LEVELS" | tr ',' '\n' | wc -l)
for r in "proxy-0ms" "proxy-${DELAY_MS}ms"; do
    [ -f "$WORK/$r.copies" ] && echo "$r: proxy saw $(cat "$WORK/$r.copies") CopyObject" \
        "requests in all (expected $((N * nlevels)) plus retries)"
done
grep -h "^aborted" "$WORK"/*.out 2>/dev/null || true
