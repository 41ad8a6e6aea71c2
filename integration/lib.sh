# Shared helpers for the shell tests: a real 3-node cluster on loopback, each node with
# its own mount, under a fresh temp dir. Source it; call start_cluster; the EXIT trap
# stops everything. Waits poll a condition with a deadline; nothing sleeps to synchronize.
set -euo pipefail

ASPEN=${ASPEN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/debug/aspen}
DEADLINE=${DEADLINE:-60}
T=$(mktemp -d /tmp/aspen-it.XXXXXX)
PIDS=()

fail() { echo "FAIL: $*" >&2; dump_logs; exit 1; }
pass() { echo "ok - $*"; }
dump_logs() {
  for f in "$T"/n*.log; do [ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; } >&2; done
  return 0
}

require_fuse() {
  if [ ! -e /dev/fuse ]; then
    echo "SKIPPED: /dev/fuse missing; $(basename "$0") needs FUSE" >&2
    exit 0
  fi
}

# wait_for DESCRIPTION COMMAND...: retries COMMAND until it succeeds or DEADLINE passes.
wait_for() {
  local what=$1; shift
  local end=$((SECONDS + DEADLINE))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "timed out waiting for: $what"
    sleep 0.1
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cleanup() {
  for i in 1 2 3 4 5; do
    [ -d "$T/m$i" ] && { umount "$T/m$i" 2>/dev/null || umount -l "$T/m$i" 2>/dev/null || true; }
  done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for i in 1 2 3 4 5; do
    [ -d "$T/m$i" ] && { umount "$T/m$i" 2>/dev/null || umount -l "$T/m$i" 2>/dev/null || true; }
  done
  rm -rf "$T" 2>/dev/null || true
  return 0
}
trap cleanup EXIT

declare -A ADDR PID
NODE_ARGS=()

# start_node I [extra args]: node I with its data dir, log and mount under $T.
start_node() {
  local i=$1; shift
  mkdir -p "$T/m$i" 2>/dev/null || true
  # A node killed earlier leaves a stale mount behind; clear it first.
  umount "$T/m$i" 2>/dev/null || true
  "$ASPEN" node --id "$i" --data-dir "$T/n$i" --listen "${ADDR[$i]}" \
    --secret-file "$T/secret" --token-file "$T/token" --mount "$T/m$i" "${NODE_ARGS[@]}" "$@" \
    >>"$T/n$i.log" 2>&1 &
  PID[$i]=$!
  PIDS+=($!)
}

mounted() { grep -q " $1 fuse.aspen " /proc/mounts; }

start_cluster() {
  head -c 32 /dev/urandom | base64 >"$T/secret"
  head -c 32 /dev/urandom | base64 >"$T/token"
  export ASPEN_TOKEN_FILE="$T/token"
  for i in 1 2 3; do ADDR[$i]=127.0.0.1:$(free_port); done
  export ASPEN_ENDPOINTS="${ADDR[1]},${ADDR[2]},${ADDR[3]}"
  start_node 1 --init --peers "1=${ADDR[1]},2=${ADDR[2]},3=${ADDR[3]}"
  start_node 2
  start_node 3
  for i in 1 2 3; do wait_for "mount $i" mounted "$T/m$i"; done
  wait_for "a leader" has_leader
}

has_leader() { "$ASPEN" cluster status -w json | grep -q '"role":"leader"\|"leader":[0-9]'; }

# leader_index: prints the index (1..3) of the current leader.
leader_index() {
  "$ASPEN" cluster status -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])'
}

kill_node() { kill -9 "${PID[$1]}" 2>/dev/null || true; wait "${PID[$1]}" 2>/dev/null || true; }
