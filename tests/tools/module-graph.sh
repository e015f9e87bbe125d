#!/bin/bash
# Prints the module graph of the daemon and its libraries, read from the
# includes: one line per module, "module -> the modules it includes".
# A module is a .c file (its name without .c) with the header of the same
# name in include/s3cfs/ or beside it (the layers internal to s3/); an edge
# is an #include "s3cfs/NAME.h" or "NAME.h" in the .c file or in its own
# header. Usage: module-graph.sh [--dot]
set -euo pipefail
cd "$(dirname "$0")/../.."
dot=0
[[ ${1:-} == --dot ]] && dot=1
mapfile -t files < <(git ls-files '*.c' | grep -vE '^tests/' | sort)
[[ $dot == 1 ]] && echo 'digraph s3cfs {'
for f in "${files[@]}"; do
    m=$(basename "$f" .c)
    dir=$(dirname "$f")
    srcs=("$f")
    [[ -f include/s3cfs/$m.h ]] && srcs+=("include/s3cfs/$m.h")
    [[ -f $dir/$m.h ]] && srcs+=("$dir/$m.h")
    deps=$( { grep -hoE '#include "(s3cfs/)?[a-z0-9_]+\.h"' "${srcs[@]}" || true; } |
        sed -E 's/.*"(s3cfs\/)?([a-z0-9_]+)\.h"/\2/' | { grep -vx "$m" || true; } | sort -u | tr '\n' ' ')
    if [[ $dot == 1 ]]; then
        for d in $deps; do echo "  \"$m\" -> \"$d\";"; done
    else
        printf '%-28s -> %s\n' "$dir/$m" "$deps"
    fi
done
[[ $dot == 1 ]] && echo '}'
exit 0
