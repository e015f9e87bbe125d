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
# Cases: seed_1 ... seed_6, one seed each, `seeds`, the run of
# S3CFS_MODEL_SEEDS seeds from S3CFS_MODEL_SEED in one process (any seeds),
# and `replays`: every sequence of tests/model/replays/ (shrunk from a
# failure that was fixed), replayed three times each. With no case named
# (and no S3CFS_CASES), `replays` and the seeds S3CFS_MODEL_SEED (1)
# to S3CFS_MODEL_SEED + S3CFS_MODEL_SEEDS (3) - 1 run, as seed_N cases when
# they are all among 1-6, else as `seeds`. S3CFS_MODEL_SECONDS: per seed
# (35); S3CFS_MODEL_TOTAL: a cap on one case's budget, shrinking included
# (420 s); ctest's TIMEOUT is 900. S3CFS_MODEL_EXT=0: no ext_replace ops
# (another client's rewrites), so a seed generates the sequence it did
# before that op existed.
FIRST=${S3CFS_MODEL_SEED:-1}
COUNT=${S3CFS_MODEL_SEEDS:-3}
SECS=${S3CFS_MODEL_SECONDS:-35}
SHRINK=60
if [ $# -eq 0 ] && [ -z "${S3CFS_CASES:-}" ]; then
    if [ "$FIRST" -ge 1 ] && [ $((FIRST + COUNT - 1)) -le 6 ]; then
        S3CFS_CASES="replays $(seq -f 'seed_%g' "$FIRST" $((FIRST + COUNT - 1)) | tr '\n' ' ')"
    else
        S3CFS_CASES="replays seeds"
    fi
    export S3CFS_CASES
fi
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
HERE=$(cd "$(dirname "$0")" && pwd)
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""

# model_run FIRST COUNT: fsmodel.py over COUNT seeds from FIRST; failing
# sequences (JSON lines, for --replay) are kept outside WORK, nothing else
model_run() {
    local first=$1 count=$2 out total rc
    out=$WORK/model-$first
    total=$((count * (SECS + SHRINK)))
    [ "$total" -gt "${S3CFS_MODEL_TOTAL:-420}" ] && total=${S3CFS_MODEL_TOTAL:-420}
    python3 "$HERE/../../model/fsmodel.py" \
        --seed "$first" --seeds "$count" --seconds "$SECS" --total-seconds "$total" \
        --shrink-seconds "$SHRINK" --kill-every 0.02 --remount-every 0.02 --out "$out" \
        $([ "${S3CFS_MODEL_EXT:-1}" == 1 ] && echo --ext-replace)
    rc=$?
    if [ $rc -eq 0 ]; then
        ok "model: seeds $first..$((first + count - 1)) match the model (mount and S3)"
    else
        bad "model: seeds $first..$((first + count - 1)) diverged (status $rc)"
        cp -r "$out" "/tmp/s3cfs-model-fail-$first-$$" 2>/dev/null &&
            echo "failing sequences kept in /tmp/s3cfs-model-fail-$first-$$"
    fi
}

# Each recorded sequence, three times: the failures they were shrunk from
# depended on timing (the one of rm -r and SIGKILL failed 3 replays in 4)
case_replays() {
    local f n
    for f in "$HERE"/../../model/replays/*.jsonl; do
        for n in 1 2 3; do
            if python3 "$HERE/../../model/fsmodel.py" --replay "$f" --out "$WORK" >"$WORK/replay.log" 2>&1; then
                ok "replay $n of $(basename "$f") matches the model"
            else
                bad "replay $n of $(basename "$f") diverged: $(tail -4 "$WORK/replay.log")"
            fi
        done
    done
}

# one seed's run, shrinking included, plus the mount's start and the bucket check
for s in 1 2 3 4 5 6; do case_timeout "seed_$s" $((SECS + SHRINK + 120)); done
case_timeout seeds $((COUNT * (SECS + SHRINK) + 120))
case_timeout replays 300
case_seed_1() { model_run 1 1; }
case_seed_2() { model_run 2 1; }
case_seed_3() { model_run 3 1; }
case_seed_4() { model_run 4 1; }
case_seed_5() { model_run 5 1; }
case_seed_6() { model_run 6 1; }
case_seeds() { model_run "$FIRST" "$COUNT"; }

run_cases "$@"
