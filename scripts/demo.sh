#!/usr/bin/env bash
# make demo: versitygw (a local S3 server that verifies SigV4) with signet in front of it.
# It stops both however it is stopped: Ctrl-C, kill, a closed terminal, and (on Linux,
# through setpriv's parent-death signal) even when it or make is killed outright. It
# refuses to start when one of its ports is taken.
#
# Settings (environment): VERSITYGW and SIGNET (the binaries; required), DEMO_DIR (its
# data and log; default .demo), DEMO_GW_PORT (7070), DEMO_PORT (9000), DEMO_ADMIN_PORT (9001).
set -euo pipefail

# Die with whoever started us (make, a test): re-run under a parent-death signal, once.
if [[ -z "${SIGNET_DEMO_PDEATHSIG:-}" ]] && command -v setpriv >/dev/null 2>&1; then
	export SIGNET_DEMO_PDEATHSIG=1
	exec setpriv --pdeathsig TERM -- "$0" "$@"
fi

: "${VERSITYGW:?set VERSITYGW to the versitygw binary (make demo does)}"
: "${SIGNET:?set SIGNET to the signet binary (make demo does)}"
DEMO_DIR=${DEMO_DIR:-.demo}
DEMO_GW_PORT=${DEMO_GW_PORT:-7070}
DEMO_PORT=${DEMO_PORT:-9000}
DEMO_ADMIN_PORT=${DEMO_ADMIN_PORT:-9001}

die() { echo "demo: $*" >&2; exit 1; }

# in_use: something accepts connections on 127.0.0.1:$1.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in "$DEMO_GW_PORT" "$DEMO_PORT" "$DEMO_ADMIN_PORT"; do
	if in_use "$port"; then
		die "port $port on 127.0.0.1 is already in use (an earlier demo still running? see: ss -ltnp 'sport = :$port');" \
			"stop it, or pick other ports with DEMO_GW_PORT, DEMO_PORT and DEMO_ADMIN_PORT"
	fi
done

pids=()
stop() {
	trap - EXIT INT TERM HUP
	if ((${#pids[@]})); then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# start runs a child in the background, dying with this script if it is killed outright.
start() {
	if [[ -n "${SIGNET_DEMO_PDEATHSIG:-}" ]]; then
		setpriv --pdeathsig TERM -- "$@" &
	else
		"$@" &
	fi
	pids+=($!)
}

# wait_for URL NAME LOG: until URL answers, or its process died, or 10 s passed.
wait_for() {
	for _ in $(seq 100); do
		curl -fs -o /dev/null "$1" && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || die "$2 exited; its log: $3"
		sleep 0.1
	done
	die "$2 did not answer $1 within 10s; its log: $3"
}

DEMO_DIR=$(mkdir -p "$DEMO_DIR" && cd "$DEMO_DIR" && pwd)
rm -rf "$DEMO_DIR/data" && mkdir -p "$DEMO_DIR/data/demo"
cat >"$DEMO_DIR/signet.yaml" <<YAML
listen: 127.0.0.1:$DEMO_PORT
admin_listen: 127.0.0.1:$DEMO_ADMIN_PORT
virtual_host_suffixes: [localhost]
accounts:
  local:
    endpoint: http://127.0.0.1:$DEMO_GW_PORT
    region: us-east-1
    credentials: {access_key_id: demo-key, secret_access_key: demo-secret-key}
buckets:
  - {name: demo, account: local}
  - {name: "scratch-*", account: local}
YAML

start "$VERSITYGW" --access demo-key --secret demo-secret-key --region us-east-1 --port "127.0.0.1:$DEMO_GW_PORT" \
	--health /healthz --quiet posix "$DEMO_DIR/data" 2>"$DEMO_DIR/versitygw.log"
wait_for "http://127.0.0.1:$DEMO_GW_PORT/healthz" versitygw "$DEMO_DIR/versitygw.log"
# SIGNET_LISTEN and SIGNET_ADMIN_LISTEN would override the ports checked above.
start env -u SIGNET_LISTEN -u SIGNET_ADMIN_LISTEN "$SIGNET" serve --config "$DEMO_DIR/signet.yaml" 2>"$DEMO_DIR/signet.log"
wait_for "http://127.0.0.1:$DEMO_ADMIN_PORT/readyz" signet "$DEMO_DIR/signet.log"

s3="http://127.0.0.1:$DEMO_PORT"
echo "hello from signet" >"$DEMO_DIR/hello.txt"
echo
echo "\$ curl -T hello.txt $s3/demo/hello.txt   # unsigned upload"
curl -fsS -T "$DEMO_DIR/hello.txt" "$s3/demo/hello.txt" || die "the upload through signet failed; log: $DEMO_DIR/signet.log"
echo "uploaded"
echo "\$ curl $s3/demo/hello.txt"
curl -fsS "$s3/demo/hello.txt" || die "the download through signet failed; log: $DEMO_DIR/signet.log"
echo
echo "versitygw (verifies SigV4) on 127.0.0.1:$DEMO_GW_PORT, signet on 127.0.0.1:$DEMO_PORT (admin 127.0.0.1:$DEMO_ADMIN_PORT); log in $DEMO_DIR/signet.log"
echo "Try, with any dummy credentials:"
echo "  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --endpoint-url $s3 s3 cp ./README.md s3://demo/"
echo "  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --endpoint-url $s3 s3 ls s3://demo/"
echo "  curl http://demo.localhost:$DEMO_PORT/hello.txt"
echo "demo pids: ${pids[*]}"
echo "Ctrl-C stops both."
# Until a signal, or until either server exits (then the other is stopped too).
set +e
wait -n "${pids[@]}"
status=$?
die "a server exited (status $status); logs in $DEMO_DIR"
