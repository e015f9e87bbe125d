#!/bin/bash
# Soak run of the model-based test (tests/model/fsmodel.py) with random
# seeds, for a long time, against a radosgw of its own (bluestore OSD in a
# sparse file, so long runs do not hold every object in RAM).
#
#   tests/stress/soak.sh [DURATION_SECONDS [EXTRA_MOUNT_OPTS [SECONDS_PER_SEED]]]
#
# e.g. tests/stress/soak.sh 3600 stage_mem=0   (one hour, staging on disk)
# Environment: S3CFS_BIN (default: build/fs/s3cfs of this tree), SOAK_DIR
# (work dir, default a fresh /tmp/s3cfs-soak.XXXXXX), CEPH_OSD_SIZE (16G),
# SOAK_ARGS (more fsmodel.py arguments, e.g. "--kill-every 0.05").
# Bounded in time: no seed starts after DURATION, each seed has its budget,
# shrinking has its budget; the server is stopped at the end (also on ^C).
# Prints every failing seed and where its shortest sequence was written;
# exits 1 if any seed failed.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${1:-3600}
EXTRA=${2:-}
PER_SEED=${3:-120}
export S3CFS_BIN=${S3CFS_BIN:-$REPO/build/fs/s3cfs}
[ -x "$S3CFS_BIN" ] || { echo "soak: no s3cfs at $S3CFS_BIN (set S3CFS_BIN)" >&2; exit 2; }
DIR=${SOAK_DIR:-$(mktemp -d /tmp/s3cfs-soak.XXXXXX)}
mkdir -p "$DIR"
SRV=$DIR/server
stop_server() { bash "$REPO/tests/tools/radosgw/s3-server.sh" stop "$SRV" >/dev/null 2>&1; }
trap stop_server EXIT
trap 'exit 130' INT TERM
CEPH_OSD_STORE=bluestore CEPH_OSD_SIZE=${CEPH_OSD_SIZE:-16G} \
    bash "$REPO/tests/tools/radosgw/s3-server.sh" start "$SRV" >"$DIR/server.log" 2>&1 ||
    { echo "soak: the server did not start:" >&2; tail -20 "$DIR/server.log" >&2; exit 2; }
# shellcheck disable=SC1091
source "$SRV/env.sh"
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
MODEL=$REPO/tests/model/fsmodel.py
OPTS=(--shrink-seconds 300 --out "$DIR/failures" --workdir "$DIR")
[ -n "$EXTRA" ] && OPTS+=(--extra-opts "$EXTRA")
end=$(( $(date +%s) + DURATION ))
runs=0; fails=()
while [ "$(date +%s)" -lt "$end" ]; do
    seed=$(( (RANDOM << 15 | RANDOM) ))
    left=$(( end - $(date +%s) ))
    [ "$left" -lt 10 ] && break
    secs=$(( left < PER_SEED ? left : PER_SEED ))
    # shellcheck disable=SC2086
    timeout $(( secs + 900 )) python3 "$MODEL" "${OPTS[@]}" --seconds "$secs" --seed "$seed" ${SOAK_ARGS:-} \
        >"$DIR/seed-$seed.log" 2>&1
    rc=$?
    runs=$((runs + 1))
    if [ $rc -ne 0 ]; then
        fails+=("$seed")
        echo "seed $seed: FAIL (rc $rc): $(grep -m1 '^FAIL seed' "$DIR/seed-$seed.log")  log: $DIR/seed-$seed.log"
    else
        echo "seed $seed: $(grep -m1 ': ok,' "$DIR/seed-$seed.log")"
        rm -f "$DIR/seed-$seed.log"
    fi
done
echo "soak: $runs seeds in $DURATION s; failing seeds: ${fails[*]:-none}"
echo "$((runs - ${#fails[@]})) passed, ${#fails[@]} failed"
[ ${#fails[@]} -eq 0 ]
