#!/bin/bash
# cmake --install: what lands where, that the installed programs run, that
# the unit names the helper where it was installed, that the man page renders
# and documents every option s3cfs --help lists and the copy semantics.
#
#   test_install.sh BUILD_DIR
# Needs no server and no mount; installs into a temporary prefix.
set -uo pipefail
BUILD=$(realpath "${1:?usage: test_install.sh BUILD_DIR}")
WORK=$(mktemp -d /tmp/s3cfs-install.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }

# DESTDIR keeps everything in WORK even when the build's cache names an
# absolute directory; the programs and the unit see PREFIX
PREFIX=/opt/s3cfs-test-$$
P=$WORK/dest$PREFIX
if ! DESTDIR=$WORK/dest cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" 2>&1; then
    cat "$WORK/install.log"
    bad "cmake --install --prefix $PREFIX"
    exit 1
fi
ok "cmake --install --prefix (DESTDIR)"
check "nothing installed outside the prefix" bash -c "[ \"\$(ls '$WORK/dest')\" = opt ]"

for f in bin/s3cfs bin/s3cfs-ctl sbin/mount.s3cfs; do
    check "installed and executable: $f" test -x "$P/$f"
done
UNIT=$P/lib/systemd/system/s3cfs@.service
MAN=$P/share/man/man1/s3cfs.1
for f in "$UNIT" "$MAN" "$P/share/doc/s3cfs/s3cfs-example.conf"; do
    check "installed: ${f#"$P"/}" test -s "$f"
done

check "installed s3cfs --version runs" "$P/bin/s3cfs" --version
check "installed s3cfs-ctl without arguments: usage, not a crash" \
    bash -c "'$P/bin/s3cfs-ctl' 2>&1 | grep -q usage"
# the helper finds the installed s3cfs (../bin from sbin) with PATH empty,
# as mount(8) runs it; -f only prints the command
out=$(env -i "$P/sbin/mount.s3cfs" -f -v b "$WORK" -o endpoint=http://127.0.0.1:9,_netdev 2>&1)
ran=$(sed -n 's/.*would run: \([^ ]*\) b .*/\1/p' <<<"$out")
check_eq_path() { [ -n "$ran" ] && [ "$(realpath "$ran")" = "$(realpath "$P/bin/s3cfs")" ]; }
check "installed mount.s3cfs runs the installed s3cfs ($out)" check_eq_path
check "and passes the options on, without _netdev" grep -q "would run: [^ ]* b $WORK -o endpoint=http://127.0.0.1:9\$" <<<"$out"

# the unit starts the helper at its installed path (a prefix other than /usr)
check "the unit runs the installed helper" grep -q "^ExecStart=$PREFIX/sbin/mount.s3cfs --foreground" "$UNIT"
check "the unit no longer names /usr/sbin" bash -c "! grep -q /usr/sbin/mount.s3cfs '$UNIT'"
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$WORK/units"
    cp "$UNIT" "$WORK/units/"
    # verify checks the syntax and that the programs named exist; an
    # instance name is needed for a template
    out=$(cd "$WORK/units" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
        "$WORK/units/s3cfs@demo.service" 2>&1)
    if grep -qiE "unknown|invalid|failed to parse|bad" <<<"$out"; then
        echo "$out"
        bad "systemd-analyze verify: the unit parses"
    else
        ok "systemd-analyze verify: the unit parses"
    fi
fi

# the man page renders without warnings and documents every option
if ! MANWIDTH=100 man -l -Tutf8 "$MAN" >"$WORK/man.txt" 2>"$WORK/man.err" &&
    ! groff -man -Tutf8 -ww "$MAN" >"$WORK/man.txt" 2>"$WORK/man.err"; then
    bad "the man page renders"
fi
groff -man -Tutf8 -ww -z "$MAN" 2>"$WORK/groff.err"
check "groff -ww: no warnings in the man page" test ! -s "$WORK/groff.err"
[ -s "$WORK/groff.err" ] && head -5 "$WORK/groff.err"
col -b <"$WORK/man.txt" | tr -s ' \n' ' ' | sed 's/‐ /-/g; s/‐/-/g' >"$WORK/man.flat"
"$P/bin/s3cfs" --help >"$WORK/help.txt" 2>&1
mapfile -t OPTS < <(python3 - "$WORK/help.txt" <<'PY'
import re, sys
names = set()
for line in open(sys.argv[1]):
    if not re.match(r"^  [a-z-]", line):
        continue
    first = re.split(r"\s{2,}", line.strip())[0]
    names.update(re.findall(r"(?<![\w$-])-?-?[a-z][a-z_-]+", first))
print("\n".join(sorted(names)))
PY
)
check "s3cfs --help lists options (${#OPTS[@]})" test "${#OPTS[@]}" -ge 25
missing=()
for o in "${OPTS[@]}"; do grep -qF -- "$o" "$WORK/man.flat" || missing+=("$o"); done
if [ ${#missing[@]} = 0 ]; then ok "the man page documents every option of --help"; else
    bad "options missing from the man page: ${missing[*]}"; fi
for s in "CRASHES AND THE JOURNAL" "s3cfs-ctl wait" "WHAT A PATH MEANS" "CopyObject" "fstab"; do
    check "the man page covers: $s" grep -qF "$s" "$WORK/man.flat"
done

echo "install: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
