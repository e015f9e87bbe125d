#!/bin/bash
# The test S3 server: a throw-away single-node Ceph radosgw on loopback
# (1 mon + 1 OSD + radosgw, cluster auth off; S3 still verifies SigV4 with
# the user's keys).
#
#   s3-server.sh start DIR     wipe DIR, start on free loopback ports, write
#                              DIR/env.sh (AWS_* and S3_ENDPOINT) and print it
#   s3-server.sh stop DIR      stop exactly the daemons started in DIR
#
# Environment: S3_ACCESS_KEY / S3_SECRET_KEY (default test / testsecret),
# CEPH_OSD_STORE=memstore (default: objects in RAM, up to CEPH_MEMSTORE_BYTES,
# default 4 GiB, allocated as used) or bluestore (a sparse file of
# CEPH_OSD_SIZE, default 64G, in DIR/osd: for objects bigger than RAM allows),
# S3_SERVER_INSTALL=0 to skip the apt-get step.
set -euo pipefail

cmd=${1:?usage: s3-server.sh start|stop DIR}
BASE=$(realpath -m "${2:?usage: s3-server.sh start|stop DIR}")
STORE=${CEPH_OSD_STORE:-memstore}
AK=${S3_ACCESS_KEY:-test}
SK=${S3_SECRET_KEY:-testsecret}
T0=$(date +%s%N)

log() { printf '[s3-server %5dms] %s\n' $(( ($(date +%s%N) - T0) / 1000000 )) "$*" >&2; }

stop() {
    local pids p
    pids=$(cat "$BASE"/run/*.pid 2>/dev/null || true)
    [ -n "$pids" ] || return 0
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        local alive=0
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.2
    done
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    rm -f "$BASE"/run/*.pid
    log "stopped ($pids)"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 30000 ))
        port_free "$p" && port_free $((p + 1)) && { echo "$p"; return 0; }
    done
    echo "s3-server: no free port found" >&2
    return 1
}

install_packages() {
    local need=0 b
    for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool uuidgen curl; do
        command -v "$b" >/dev/null || need=1
    done
    [ $need = 1 ] && [ "${S3_SERVER_INSTALL:-1}" != 0 ] || return 0
    log "installing Ceph packages"
    local pkgs=(ceph-mon ceph-osd radosgw ceph-common uuid-runtime curl)
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >&2 || {
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
    }
}

write_conf() {
    cat >"$BASE/ceph.conf" <<CONF
[global]
fsid = $FSID
mon initial members = a
mon host = v1:127.0.0.1:$MONPORT
public network = 127.0.0.0/8
ms bind ipv6 = false
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
run dir = $BASE/run
admin socket = $BASE/run/\$cluster-\$name.asok
log file = $BASE/log/\$cluster-\$name.log
pid file = $BASE/run/\$cluster-\$name.pid
keyring = $BASE/keyring
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
mon warn on insecure global id reclaim allowed = false
[mon]
mon data = $BASE/mon/\$cluster-\$id
[osd]
osd data = $BASE/osd/\$cluster-\$id
osd objectstore = $STORE
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-4294967296}
osd memory target = 939524096
# bluestore: one sparse file holds data and metadata; a small fixed cache so
# the OSD's memory does not grow with the data
bluestore block create = true
bluestore block size = $(numfmt --from=iec "${CEPH_OSD_SIZE:-64G}")
bluestore block db create = false
bluestore block wal create = false
bluestore cache autotune = false
bluestore cache size = 134217728
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw dns name = localhost
rgw enable usage log = false
rgw thread pool size = 128
# free deleted objects' space within seconds (the default is 2 hours)
rgw gc obj min wait = 10
rgw gc processor period = 10
rgw gc processor max time = 10
CONF
}

wait_for() { # tries description command...
    local tries=$1 what=$2
    shift 2
    for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "s3-server: $what did not come up; logs in $BASE/log" >&2
    return 1
}

# A second storage class in the default placement, so that tests can check
# it is kept (radosgw refuses a class its placement does not list). The
# zone exists once radosgw ran; radosgw reads the placement when it starts,
# so it is restarted. A failure leaves the server without the class: tests
# probe for it and say so.
add_storage_class() {
    local pidf="$BASE/run/ceph-client.rgw.a.pid" pid
    radosgw-admin "${C[@]}" zonegroup placement add --rgw-zonegroup default \
        --placement-id default-placement --storage-class "$1" >/dev/null 2>&1 &&
        radosgw-admin "${C[@]}" zone placement add --rgw-zone default \
            --placement-id default-placement --storage-class "$1" \
            --data-pool default.rgw.buckets.data >/dev/null 2>&1 ||
        { log "storage class $1 not added"; return 0; }
    pid=$(cat "$pidf")
    kill "$pid"
    gone() { ! kill -0 "$pid"; }
    wait_for 100 "radosgw stop" gone
    radosgw "${C[@]}" -n client.rgw.a
    wait_for 300 "radosgw (restart)" curl -s -o /dev/null "http://127.0.0.1:$PORT/"
    kill -0 "$(cat "$pidf")"
}

start_once() {
    stop
    rm -rf "$BASE"
    mkdir -p "$BASE"/{mon,osd,run,log}
    PORT=$(free_port)
    MONPORT=$(free_port)
    [ "$MONPORT" != "$PORT" ] && [ "$MONPORT" != $((PORT + 1)) ] || MONPORT=$(free_port)
    FSID=$(uuidgen)
    write_conf
    local C=(-c "$BASE/ceph.conf")
    trap 'echo "s3-server: start failed; logs in $BASE/log" >&2; stop' ERR

    ceph-authtool --create-keyring "$BASE/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$BASE/keyring" --gen-key -n client.admin --cap mon 'allow *' \
        --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    monmaptool --create --fsid "$FSID" --addv a "[v1:127.0.0.1:$MONPORT]" "$BASE/monmap" >/dev/null
    ceph-mon "${C[@]}" --mkfs -i a --monmap "$BASE/monmap" --keyring "$BASE/keyring"
    ceph-mon "${C[@]}" -i a
    wait_for 100 "ceph-mon" ceph "${C[@]}" --connect-timeout 2 mon stat
    log "mon up on 127.0.0.1:$MONPORT"

    local osd_uuid id
    osd_uuid=$(uuidgen)
    id=$(ceph "${C[@]}" osd new "$osd_uuid")
    mkdir -p "$BASE/osd/ceph-$id"
    ceph-osd "${C[@]}" -i "$id" --mkfs --osd-uuid "$osd_uuid" >"$BASE/log/osd-mkfs.log" 2>&1
    ceph-osd "${C[@]}" -i "$id" 2>>"$BASE/log/osd-start.log"
    osd_up() { ceph "${C[@]}" osd dump 2>/dev/null | grep -q "^osd.$id up"; }
    wait_for 150 "ceph-osd" osd_up
    log "osd.$id up ($STORE)"

    radosgw "${C[@]}" -n client.rgw.a
    wait_for 300 "radosgw" curl -s -o /dev/null "http://127.0.0.1:$PORT/"
    kill -0 "$(cat "$BASE/run/ceph-client.rgw.a.pid")"
    radosgw-admin "${C[@]}" user create --uid=tester --display-name="s3cfs tests" \
        --access-key="$AK" --secret-key="$SK" >/dev/null
    add_storage_class STANDARD_IA
    cat >"$BASE/env.sh" <<ENV
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1
export S3_ENDPOINT=http://127.0.0.1:$PORT CEPH_CONF=$BASE/ceph.conf
unset AWS_PROFILE AWS_SESSION_TOKEN
ENV
    trap - ERR
    log "radosgw ready at http://127.0.0.1:$PORT (pids $(cat "$BASE"/run/*.pid | tr '\n' ' '))"
    cat "$BASE/env.sh"
}

# A single-node Ceph occasionally fails to come up (seen: the OSD rejected by
# the monitor at registration); a fresh try from scratch has always worked.
start() {
    install_packages
    local attempt
    for attempt in 1 2 3; do
        bash "$0" start-once "$BASE" && return 0
        echo "s3-server: attempt $attempt failed; last log lines:" >&2
        tail -n 5 "$BASE"/log/*.log 2>/dev/null | sed 's/^/    /' >&2 || true
    done
    return 1
}

case $cmd in
start) start ;;
start-once) start_once ;;
stop) stop ;;
*) echo "usage: s3-server.sh start|stop DIR" >&2; exit 2 ;;
esac
