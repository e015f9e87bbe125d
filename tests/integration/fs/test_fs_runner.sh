#!/bin/bash
# The case runner of lib.sh (run_cases), on a small sample script written
# at run time: --list in definition order, one case by name or through
# S3CFS_CASES, an unknown name failing, a hanging case killed at its time
# limit and counted as failed while the next cases still run, a failing
# case not stopping the others, the exit status, and a case stuck in a
# shell builtin ending the script. Needs no mount.
. "$(dirname "$0")/lib.sh"
trap fs_cleanup EXIT
LIB=$(cd "$(dirname "$0")" && pwd)/lib.sh
SAMPLE=$WORK/test_fs_sample.sh
OUT=$WORK/out
mkfifo "$WORK/fifo"
cat >"$SAMPLE" <<EOF2
#!/bin/bash
. "$LIB"
trap fs_cleanup EXIT
@case_first() { touch "$OUT/first"; ok "first ran"; }
@case_failing() { touch "$OUT/failing"; bad "failing, on purpose"; }
@case_hangs() { touch "$OUT/hangs"; sleep 1234.5; }
@case_blocks() { touch "$OUT/blocks"; cat "$WORK/fifo"; }
@case_last() { touch "$OUT/last"; ok "last ran"; }
case_timeout hangs 3
case_timeout blocks 3
run_cases "\$@"
EOF2
# (the sample's lines start with @ here: its cases are not this script's)
sed -i 's/^@//' "$SAMPLE"
# a case stuck in a builtin of the test shell itself
sed -e "s|^case_blocks.*|case_builtin() { read -r x <'$WORK/fifo'; }|" \
    -e 's/^case_timeout blocks 3/case_timeout builtin 2/' "$SAMPLE" >"$WORK/test_fs_stuck.sh"

# sample [ENV=VALUE...] -- [ARGS...]: run the sample; sets RC, OUTPUT, TOOK
sample() {
    local env=() t0=$SECONDS
    while [ "$1" != -- ]; do env+=("$1"); shift; done
    shift
    rm -rf "$OUT" && mkdir -p "$OUT"
    OUTPUT=$(env "${env[@]}" timeout 120 bash "$SAMPLE" "$@" 2>&1)
    RC=$?
    TOOK=$((SECONDS - t0))
}
ran() { ls "$OUT" | tr '\n' ' ' | sed 's/ $//'; }

case_list_in_definition_order() {
    sample -- --list
    check_eq "--list: exit 0" 0 "$RC"
    check_eq "--list: the names in definition order" "first failing hangs blocks last" \
        "$(tr '\n' ' ' <<<"$OUTPUT" | sed 's/ $//')"
    check_eq "--list runs no case" "" "$(ran)"
}

case_one_by_name() {
    sample -- first
    check_eq "one case by name: only it runs" "first" "$(ran)"
    check_eq "one passing case: exit 0" 0 "$RC"
    check "one passing case: its tally" grep -q "^1 passed, 0 failed" <<<"$OUTPUT"
    sample -- last first
    check_eq "two cases by name: both, no other" "first last" "$(ran)"
}

case_by_s3cfs_cases() {
    sample S3CFS_CASES=last --
    check_eq "S3CFS_CASES: only that case runs" "last" "$(ran)"
    check_eq "S3CFS_CASES: exit 0" 0 "$RC"
    sample "S3CFS_CASES=first failing" --
    check_eq "S3CFS_CASES of two: both run" "failing first" "$(ran)"
    check_not "S3CFS_CASES with a failing case: non-zero exit" test "$RC" -eq 0
}

case_unknown_name_fails() {
    sample -- no_such_case
    check_not "an unknown name: non-zero exit" test "$RC" -eq 0
    check "an unknown name: says so" grep -q "no case named no_such_case" <<<"$OUTPUT"
    check_eq "an unknown name: no case runs" "" "$(ran)"
    sample S3CFS_CASES=nope --
    check_not "an unknown name in S3CFS_CASES: non-zero exit" test "$RC" -eq 0
}

case_failing_case_does_not_stop_the_rest() {
    sample -- failing last
    check_eq "after a failing case the next one runs" "failing last" "$(ran)"
    check_not "a failing case: non-zero exit" test "$RC" -eq 0
    check "the tally counts it" grep -q "^1 passed, 1 failed" <<<"$OUTPUT"
    check "the failed case is named" grep -q "failed cases: failing$" <<<"$OUTPUT"
}

hung_sleep() { pgrep -f "sleep 1234.5" >/dev/null; }
case_hanging_cases_are_killed() {
    sample -- hangs blocks last
    check_eq "every case ran, the last one too" "blocks hangs last" "$(ran)"
    check "two cases of 3 s: done within 12 s (took $TOOK s)" test "$TOOK" -le 12
    check "the sleeping case: timed out" grep -q "FAIL - hangs: timed out after 3 s" <<<"$OUTPUT"
    check "the blocked read: timed out" grep -q "FAIL - blocks: timed out after 3 s" <<<"$OUTPUT"
    check "both counted as failed" grep -q "failed cases: hangs blocks$" <<<"$OUTPUT"
    check "the last case passed" grep -q "^# case last: ok" <<<"$OUTPUT"
    check_not "exit status non-zero" test "$RC" -eq 0
    check_not "the hanging command was killed" hung_sleep
}

case_all_cases_in_order() {
    sample --
    check_eq "no name: every case ran" "blocks failing first hangs last" "$(ran)"
    check_eq "in definition order" "first failing hangs blocks last" \
        "$(sed -n 's/^# case \([a-z]*\):.*/\1/p' <<<"$OUTPUT" | tr '\n' ' ' | sed 's/ $//')"
    check "the tally" grep -q "^2 passed, 3 failed" <<<"$OUTPUT"
    check_not "exit status non-zero" test "$RC" -eq 0
}

case_stuck_builtin_ends_the_script() {
    local t0=$SECONDS out rc
    out=$(CASE_GRACE=2 timeout 60 bash "$WORK/test_fs_stuck.sh" builtin last 2>&1)
    rc=$?
    check "stuck in a builtin: the script ends after limit and grace (took $((SECONDS - t0)) s)" \
        test $((SECONDS - t0)) -le 10
    check_not "stuck in a builtin: non-zero exit" test "$rc" -eq 0
    check_not "stuck in a builtin: not ended by the outer timeout" test "$rc" -eq 124
    check "stuck in a builtin: says so" grep -q "FAIL - builtin: still running" <<<"$out"
}

# a case that ends at once is never taken for one that timed out (the
# watchdog of a quick case, ended, must not go on and mark it)
case_quick_cases_never_time_out() {
    local i out
    {
        echo "#!/bin/bash"
        echo ". '$LIB'"
        echo "trap fs_cleanup EXIT"
        for i in $(seq 1 40); do echo "case_q$i() { ok q$i; }"; done
        echo 'run_cases "$@"'
    } >"$WORK/test_fs_quick.sh"
    out=$(timeout 120 bash "$WORK/test_fs_quick.sh" 2>&1)
    check "40 cases that end at once: all pass" grep -q "^40 passed, 0 failed" <<<"$out"
    check_not "none marked as timed out" grep -q "timed out" <<<"$out"
}

run_cases "$@"
