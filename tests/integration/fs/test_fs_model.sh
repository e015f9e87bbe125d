#!/bin/bash
# Issue 11 §7: the model-based random test of the whole namespace
# (tests/model/fsmodel.py; what it does and why: tests/model/README.md).
# A seeded generator applies the same operations to a real s3cfs mount and
# to a local directory and compares them after every step; SIGKILL and
# remount steps; the bucket is checked through the S3 API after each run.
# Fixed seeds, a fixed time budget (the step count follows from the time, so
# the slower ASan+UBSan build runs fewer steps); on a divergence it prints
# the seed and the shortest failing sequence it found within the budget.
#
# Environment (ctest): S3CFS_BIN, S3_ENDPOINT, AWS_*; optional
# S3CFS_MODEL_SEED (first seed, default 1), S3CFS_MODEL_SEEDS (3),
# S3CFS_MODEL_SECONDS (per seed, 35), S3CFS_MODEL_TOTAL (whole budget incl.
# shrinking, 420 s; ctest's TIMEOUT is 900).
set -uo pipefail
: "${S3CFS_BIN:?run through ctest (S3CFS_BIN unset)}" "${S3_ENDPOINT:?}"
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d /tmp/s3cfs-test_fs_model.XXXXXX)
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
python3 "$HERE/../../model/fsmodel.py" \
    --seed "${S3CFS_MODEL_SEED:-1}" --seeds "${S3CFS_MODEL_SEEDS:-3}" \
    --seconds "${S3CFS_MODEL_SECONDS:-35}" --total-seconds "${S3CFS_MODEL_TOTAL:-420}" \
    --shrink-seconds 60 --kill-every 0.02 --remount-every 0.02 --out "$OUT"
rc=$?
# failing sequences (JSON lines) are kept for --replay; nothing else is left
if [ $rc -eq 0 ]; then rm -rf "$OUT"; else echo "failing sequences kept in $OUT"; fi
exit $rc
