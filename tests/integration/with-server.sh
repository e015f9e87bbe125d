#!/bin/bash
# Run a command with the test server's environment (written by s3-server.sh).
set -euo pipefail
env_file=${1:?usage: with-server.sh ENV_FILE COMMAND...}
shift
[ -f "$env_file" ] || { echo "with-server: $env_file missing: the server fixture did not start" >&2; exit 2; }
# shellcheck disable=SC1090
source "$env_file"
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
exec "$@"
