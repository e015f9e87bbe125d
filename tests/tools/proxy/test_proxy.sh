#!/bin/bash
# test_proxy.sh ENDPOINT ACCESS SECRET PROXY_BINARY
#
# Checks s3proxy against a running S3 server (radosgw), driving it with awscli:
# request counting per S3 operation kind (exact counts), the control API, the 503/500,
# reset and stall faults, the added latency, the mangled answers. Starts and stops its
# own proxy, uses a fresh bucket, and prints "N passed, M failed"; exits non-zero on
# any failure.
set -u

if [ $# -ne 4 ]; then
    echo "usage: $0 ENDPOINT ACCESS SECRET PROXY_BINARY" >&2
    exit 2
fi
ENDPOINT=$1
PROXY_BIN=$4
UPSTREAM=${ENDPOINT#http://}
UPSTREAM=${UPSTREAM%%/*}

PASS=0
FAIL=0
TMP=$(mktemp -d /tmp/s3proxy-test.XXXXXX)
BUCKET=s3proxy-test-$$-$RANDOM
PROXY_PID=

ok() {
    PASS=$((PASS + 1))
    echo "ok   $*"
}
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL $*"
}
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

# Hermetic awscli: our keys, fixed multipart sizes (so part counts are known), no profile.
export AWS_ACCESS_KEY_ID=$2 AWS_SECRET_ACCESS_KEY=$3 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$TMP/aws-config AWS_SHARED_CREDENTIALS_FILE=$TMP/no-credentials
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
unset AWS_PROFILE AWS_SESSION_TOKEN
cat >"$AWS_CONFIG_FILE" <<'EOF'
[default]
s3 =
    multipart_threshold = 8MB
    multipart_chunksize = 8MB
EOF

cleanup() {
    if [ -n "$PROXY_PID" ]; then kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; fi
    # Straight to the server: whatever a failed step left behind goes.
    aws --endpoint-url "$ENDPOINT" s3 rb --force "s3://$BUCKET" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

"$PROXY_BIN" --upstream "$UPSTREAM" --port-file "$TMP/port" --max-seconds 600 \
    >"$TMP/proxy.out" 2>"$TMP/proxy.log" &
PROXY_PID=$!
for _ in $(seq 100); do
    [ -s "$TMP/port" ] && break
    sleep 0.05
done
if [ ! -s "$TMP/port" ]; then
    echo "FAIL proxy did not start:" && cat "$TMP/proxy.log"
    echo "0 passed, 1 failed"
    exit 1
fi
PORT=$(cat "$TMP/port")
PROXY=http://127.0.0.1:$PORT
A=(aws --endpoint-url "$PROXY" --cli-read-timeout 20 --cli-connect-timeout 5)
check "prints its listening address" grep -qx "listening 127.0.0.1:$PORT" "$TMP/proxy.out"

stats() { curl -sf "$PROXY/__proxy/stats"; }
control() { # control PATH -> body on stdout, status code in $TMP/code
    curl -s -o - -w '%{http_code}' -X POST "$PROXY/__proxy/$1" >"$TMP/ctl"
    tail -c 3 "$TMP/ctl" >"$TMP/code"
    head -c -3 "$TMP/ctl"
}
field() { # field KIND COLUMN: a column of KIND's stats line, 0 when the line is absent
    stats | awk -v k="$1" -v c="$2" '$1 == k { v = $c } END { print v + 0 }'
}
expect_stat() { # expect_stat KIND [COLUMN] VALUE
    local col=2 want
    if [ $# -eq 3 ]; then col=$2; want=$3; else want=$2; fi
    local got
    got=$(field "$1" "$col")
    if [ "$got" = "$want" ]; then ok "stats $1 col $col = $want"; else bad "stats $1 col $col: got $got, want $want"; fi
}
between() { [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]; }
ms_of() { # ms_of CURL_ARGS...: wall time of one curl request in ms
    curl -s -o /dev/null -w '%{time_total}' --max-time 10 "$@" | awk '{ printf "%d", $1 * 1000 }'
}

# ---- 1. control API basics ----
check "stats are empty at start" bash -c "curl -sf '$PROXY/__proxy/stats' | grep -qx 'total 0'"
for f in 503 500 reset stall; do
    check "fault.$f line always present" bash -c "curl -sf '$PROXY/__proxy/stats' | grep -qx 'fault.$f 0'"
done
control "config?bogus=1" >/dev/null
check "bad config parameter gives 400" grep -qx 400 "$TMP/code"
control "config?delay_ms=7&faults=503,reset&fault_kinds=CopyObject&delay.GetObject=9" >"$TMP/cfg"
check "config echoes delay_ms" grep -qx 'delay_ms 7' "$TMP/cfg"
check "config echoes faults" grep -qx 'faults 503,reset' "$TMP/cfg"
check "config echoes fault_kinds" grep -qx 'fault_kinds CopyObject' "$TMP/cfg"
check "config echoes per-kind delay" grep -qx 'delay.GetObject 9' "$TMP/cfg"
control "config?delay_ms=0&faults=503,500,reset&fault_kinds=all&delay.GetObject=-1" >/dev/null
check "404 for an unknown control path" \
    bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$PROXY/__proxy/nope')\" = 404 ]"

# ---- 2. one of each S3 operation, counted exactly ----
head -c 1000 /dev/urandom >"$TMP/small"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$TMP/big"
run() { # run DESCRIPTION AWS_ARGS...: an awscli call through the proxy that must succeed
    local what=$1
    shift
    if "${A[@]}" "$@" >"$TMP/out" 2>"$TMP/err"; then ok "$what"; else bad "$what: $(tail -2 "$TMP/err")"; fi
}
run "create-bucket" s3api create-bucket --bucket "$BUCKET"
run "head-bucket" s3api head-bucket --bucket "$BUCKET"
run "list-buckets" s3api list-buckets
run "put-object (small)" s3api put-object --bucket "$BUCKET" --key small --body "$TMP/small"
run "s3 cp 20 MiB (multipart, Expect: 100-continue)" s3 cp --only-show-errors "$TMP/big" "s3://$BUCKET/big"
run "get-object (20 MiB)" s3api get-object --bucket "$BUCKET" --key big "$TMP/big.out"
check "20 MiB object came back identical" cmp -s "$TMP/big" "$TMP/big.out"
run "head-object" s3api head-object --bucket "$BUCKET" --key small
run "copy-object" s3api copy-object --bucket "$BUCKET" --key copy --copy-source "$BUCKET/small"
run "list-objects-v2" s3api list-objects-v2 --bucket "$BUCKET"
run "create-multipart-upload" s3api create-multipart-upload --bucket "$BUCKET" --key mpc \
    --query UploadId --output text
UPLOAD=$(cat "$TMP/out")
run "upload-part-copy" s3api upload-part-copy --bucket "$BUCKET" --key mpc --upload-id "$UPLOAD" \
    --part-number 1 --copy-source "$BUCKET/big" --copy-source-range bytes=0-5242879 \
    --query CopyPartResult.ETag --output text
ETAG=$(cat "$TMP/out")
run "list-multipart-uploads" s3api list-multipart-uploads --bucket "$BUCKET"
run "complete-multipart-upload" s3api complete-multipart-upload --bucket "$BUCKET" --key mpc \
    --upload-id "$UPLOAD" --multipart-upload "Parts=[{ETag=$ETAG,PartNumber=1}]"
run "create-multipart-upload (to abort)" s3api create-multipart-upload --bucket "$BUCKET" \
    --key gone --query UploadId --output text
run "abort-multipart-upload" s3api abort-multipart-upload --bucket "$BUCKET" --key gone \
    --upload-id "$(cat "$TMP/out")"
run "delete-objects" s3api delete-objects --bucket "$BUCKET" \
    --delete 'Objects=[{Key=copy},{Key=small}]'
run "delete-object big" s3api delete-object --bucket "$BUCKET" --key big
run "delete-object mpc" s3api delete-object --bucket "$BUCKET" --key mpc

expect_stat CreateBucket 1
expect_stat HeadBucket 1
expect_stat ListBuckets 1
expect_stat PutObject 1
expect_stat CreateMultipartUpload 3
expect_stat UploadPart 3
expect_stat UploadPart 3 $((20 * 1024 * 1024))
expect_stat CompleteMultipartUpload 2
expect_stat GetObject 1
expect_stat GetObject 4 $((20 * 1024 * 1024))
expect_stat HeadObject 1
expect_stat CopyObject 1
expect_stat ListObjects 1
expect_stat UploadPartCopy 1
expect_stat ListMultipartUploads 1
expect_stat AbortMultipartUpload 1
expect_stat DeleteObjects 1
expect_stat DeleteObject 2
expect_stat Other 0
expect_stat total 22
check "PutObject request bytes cover the body" [ "$(field PutObject 3)" -ge 1000 ]

control reset >/dev/null
check "reset zeroes the counters" bash -c "curl -sf '$PROXY/__proxy/stats' | grep -qx 'total 0'"

# in-flight figures: four requests held 600 ms each, at the same time
control "config?delay.HeadObject=600" >/dev/null
held=()
for _ in 1 2 3 4; do
    curl -s -o /dev/null -I "$PROXY/$BUCKET/small" &
    held+=($!)
done
sleep 0.3
expect_stat inflight 4
wait "${held[@]}"
expect_stat inflight 0
expect_stat inflight_max 4
control reset >/dev/null
expect_stat inflight_max 0
control "config?delay.HeadObject=-1" >/dev/null

# ---- 3. faults ----
run "put-object for the fault tests" s3api put-object --bucket "$BUCKET" --key small --body "$TMP/small"
control "config?fault_rate=1&faults=503" >/dev/null
AWS_MAX_ATTEMPTS=1 "${A[@]}" s3api get-object --bucket "$BUCKET" --key small "$TMP/o" \
    >/dev/null 2>"$TMP/err"
rc=$?
check "503 fault: awscli fails" [ $rc -ne 0 ]
check "503 fault: awscli reports SlowDown" grep -q SlowDown "$TMP/err"
expect_stat fault.503 1
AWS_MAX_ATTEMPTS=3 AWS_RETRY_MODE=legacy "${A[@]}" s3api list-objects-v2 --bucket "$BUCKET" \
    >/dev/null 2>"$TMP/err"
expect_stat ListObjects 3 # awscli retried the SlowDown twice
expect_stat fault.503 4

# fault_count: exactly that many faults, then none
control "config?fault_count=2" >"$TMP/cfg"
check "config echoes fault_count" grep -qx 'fault_count 2' "$TMP/cfg"
for i in 1 2 3; do
    AWS_MAX_ATTEMPTS=1 "${A[@]}" s3api head-object --bucket "$BUCKET" --key small >/dev/null 2>&1
done
expect_stat fault.503 6 # two more of the three, the third passed
control "config?fault_count=-1" >/dev/null

control "config?faults=500" >/dev/null
AWS_MAX_ATTEMPTS=1 "${A[@]}" s3api head-object --bucket "$BUCKET" --key small >/dev/null 2>&1
AWS_MAX_ATTEMPTS=1 "${A[@]}" s3api get-object --bucket "$BUCKET" --key small "$TMP/o" \
    >/dev/null 2>"$TMP/err"
check "500 fault: awscli reports InternalError" grep -q InternalError "$TMP/err"
expect_stat fault.500 2

control "config?faults=reset" >/dev/null
AWS_MAX_ATTEMPTS=1 "${A[@]}" s3api put-object --bucket "$BUCKET" --key after-reset \
    --body "$TMP/small" >/dev/null 2>"$TMP/err"
rc=$?
check "reset fault: the client loses the answer" [ $rc -ne 0 ]
control "config?fault_rate=0" >/dev/null
run "reset fault: the request still ran upstream" s3api head-object --bucket "$BUCKET" \
    --key after-reset
expect_stat fault.reset 1

control "config?fault_rate=1&faults=stall&stall_ms=1000" >/dev/null
t=$(ms_of "$PROXY/$BUCKET/small")
check "stall fault: silence for stall_ms, then close ($t ms)" between "$t" 1000 5000
expect_stat fault.stall 1

control "config?fault_rate=1&faults=503&fault_kinds=CopyObject" >/dev/null
run "fault_kinds: other kinds are spared" s3api head-object --bucket "$BUCKET" --key small
control "config?fault_rate=0&fault_kinds=all" >/dev/null

# ---- 4. latency ----
control "config?delay_ms=200" >/dev/null
t=$(ms_of "$PROXY/$BUCKET/small")
check "delay_ms=200: a request takes >= 200 ms ($t ms)" [ "$t" -ge 200 ]
run "delay_ms=200: awscli head-object still works" s3api head-object --bucket "$BUCKET" --key small
control "config?delay_ms=0&delay.HeadObject=300" >/dev/null
t=$(ms_of -I "$PROXY/$BUCKET/small")
check "delay.HeadObject=300: HEAD takes >= 300 ms ($t ms)" [ "$t" -ge 300 ]
t=$(ms_of "$PROXY/$BUCKET/small")
check "delay.HeadObject=300: GET is not delayed ($t ms)" [ "$t" -lt 250 ]
control "config?delay.HeadObject=-1" >/dev/null
before=$(field total 2)
stats >/dev/null
control "config?delay_ms=0" >/dev/null
check "control requests are not counted" [ "$(field total 2)" = "$before" ]

# ---- 4b. mangled answers (mangle.c): headers of a broken server ----
run "put-object for the mangled answers" s3api put-object --bucket "$BUCKET" --key mangled --body "$TMP/small"
control "config?mangle=etag_long&mangle_kinds=HeadObject" >"$TMP/cfg"
check "config echoes mangle" grep -qx 'mangle etag_long' "$TMP/cfg"
check "config echoes mangle_kinds" grep -qx 'mangle_kinds HeadObject' "$TMP/cfg"
run "etag_long: head-object" s3api head-object --bucket "$BUCKET" --key mangled
check "etag_long: a 200-character ETag" grep -q '[0-9a-f]\{150\}' "$TMP/out"
run "etag_long: get-object is spared" s3api get-object --bucket "$BUCKET" --key mangled "$TMP/got"
check "etag_long: the body is intact" cmp -s "$TMP/small" "$TMP/got"
heads() { curl -sI --max-time 10 "$PROXY/$BUCKET/mangled" | tr -d '\r'; } # anonymous: a 403
head_has() { heads | grep -qix "$1"; }
control "config?mangle=clen_missing" >/dev/null
check "clen_missing: HEAD without Content-Length" bash -c "! curl -sI '$PROXY/$BUCKET/mangled' | grep -qi '^content-length:'"
control "config?mangle=clen_invalid" >/dev/null
check "clen_invalid: Content-Length 12abc" head_has 'content-length: 12abc'
control "config?mangle=meta_flood" >/dev/null
check "meta_flood: thousands of x-amz-meta headers (curl reads 300 KiB of them)" [ "$(heads | grep -ci '^x-amz-meta-flood')" -gt 4000 ]
control "config?mangle=none&mangle_kinds=all" >/dev/null
check "mangle=none: the answer as it came" head_has 'content-length: [0-9]*'
control "config?mangle=bogus" >/dev/null
check "an unknown mangle gives 400" grep -qx 400 "$TMP/code"

# ---- 4c. injected 412 PreconditionFailed ----
echo one >"$TMP/one"
control "config?fail412_kinds=PutObject&fail412_keys=c412&fail412_header=if-none-match&fail412_count=1" \
    >"$TMP/cfg"
check "config echoes fail412_count" grep -qx 'fail412_count 1' "$TMP/cfg"
run "a PutObject of the key without the header passes" s3api put-object --bucket "$BUCKET" \
    --key c412 --body "$TMP/one"
"${A[@]}" s3api put-object --bucket "$BUCKET" --key c412 --body "$TMP/small" --if-none-match '*' \
    --debug >/dev/null 2>"$TMP/err"
check "the armed PutObject gets 412" grep -q '"PUT /[^ ]*c412 HTTP/1.1" 412' "$TMP/err"
expect_stat fault.412 1
run "once only: the next one reaches the server" s3api put-object --bucket "$BUCKET" --key c412b \
    --body "$TMP/one" --if-none-match '*'
check "the 412'd request did not reach the server" bash -c \
    "aws --endpoint-url '$ENDPOINT' s3 cp --quiet s3://$BUCKET/c412 - | grep -qx one"
# DeleteObjects: per-key errors, only when every key matches and has an ETag
control "config?fail412_kinds=DeleteObjects&fail412_keys=c412&fail412_count=1" >/dev/null
run "DeleteObjects with an ETag on a listed key" s3api delete-objects --bucket "$BUCKET" \
    --delete '{"Objects":[{"Key":"c412","ETag":"\"0\""}]}'
check "... answered with PreconditionFailed for it" grep -q PreconditionFailed "$TMP/out"
run "... and the key is still there" s3api head-object --bucket "$BUCKET" --key c412
expect_stat fault.412 2
control "config?fail412_count=0" >/dev/null

# ---- 5. stop ----
run "delete-bucket" s3 rb --force "s3://$BUCKET"
expect_stat DeleteBucket 1
kill -TERM "$PROXY_PID"
for _ in $(seq 40); do
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.05
done
if kill -0 "$PROXY_PID" 2>/dev/null; then
    bad "proxy exits promptly on SIGTERM"
else
    ok "proxy exits promptly on SIGTERM"
    wait "$PROXY_PID" 2>/dev/null
    PROXY_PID=
fi

echo "$PASS passed, $FAIL failed"
if [ "$FAIL" -ne 0 ]; then
    echo "--- proxy log (last 40 lines)"
    tail -40 "$TMP/proxy.log"
    exit 1
fi
exit 0
