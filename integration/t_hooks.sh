#!/bin/bash
# Hooks: a write through node 1's mount appears as an event in node 2's /hooks and in
# node 2's spool directory, where inotifywait sees the event file arrive.
. "$(dirname "$0")/lib.sh"
require_fuse
start_cluster
A=$T/m1/kv; B=$T/m2/hooks; SPOOL=$T/n2/hooks

echo v > "$A/hooked"
wait_for "node 2's /hooks/kv.write has the event" sh -c "grep -l '\"hooked\"' '$B'/kv.write/*.json"
grep -q '"type":"kv.write".*"keys":\["hooked"\]' "$B/events" || fail "/hooks/events on node 2"
for f in $(grep -l '"hooked"' "$B"/kv.write/*.json); do cat "$f"; grep -q '"node":2' "$f" || fail "node 2 delivered it"; done
ls "$B" | grep -qx events || fail "ls /hooks"
pass "a write on node 1 is an event file and an events line in node 2's /hooks"

tail -n 0 -f "$B/events" >"$T/tailf.out" 2>/dev/null &
PIDS+=($!)
wait_for "tail -f started" sh -c "ls -l /proc/$!/fd | grep -q '$B/events'"
echo f > "$A/followed"
wait_for "tail -f of node 2's /hooks/events shows the write on node 1" grep -q '"followed"' "$T/tailf.out"
pass "tail -f /hooks/events follows new events"

grep -q '"hooked"' "$SPOOL/events" || fail "spool events file"
ls "$SPOOL/kv.write" | grep -q '\.json$' || fail "spool event files"
if command -v inotifywait >/dev/null; then
  inotifywait -m -e moved_to --format %f "$SPOOL/kv.write" >"$T/inotify.out" 2>"$T/inotify.err" &
  PIDS+=($!)
  wait_for "inotifywait ready" grep -q "Watches established" "$T/inotify.err"
  start=$(date +%s%N)
  echo w > "$A/watched"
  DEADLINE=5 wait_for "inotify MOVED_TO in node 2's spool" grep -q '\.json$' "$T/inotify.out"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  f=$(head -n 1 "$T/inotify.out")
  grep -q '"watched"' "$SPOOL/kv.write/$f" || fail "the file inotify saw holds the event"
  pass "inotifywait on node 2's spool sees the event file (${ms} ms after the write on node 1)"
else
  echo "SKIPPED: inotifywait missing (Debian: inotify-tools)" >&2
fi

grep -q '^aspen_hook_events_delivered_total{node="2"} [1-9]' "$T/m2/cluster/metrics" || fail "hook metrics"
grep -q '^aspen_hook_overflow_total{node="2"} 0' "$T/m2/cluster/metrics" || fail "overflow metric"
pass "/cluster/metrics has the hook figures"

# A remote mount (a client of node 3) shows node 3's events.
mkdir -p "$T/m4"
"$ASPEN" mount "${ADDR[3]}" "$T/m4" -o "token_file=$T/token" || fail "remote mount"
wait_for "remote mount" mounted "$T/m4"
wait_for "node 3's /hooks over a remote mount" sh -c "grep -q '\"hooked\".*\"node\":3' '$T/m4/hooks/events'"
ls "$T/m4/hooks/kv.write" | grep -q '\.json$' || fail "remote /hooks/kv.write listing"
umount "$T/m4"
pass "a remote mount shows its node's /hooks"

ASPEN_ENDPOINTS=${ADDR[3]} "$ASPEN" hooks tail --type 'kv.*' --count 1 >"$T/tail.out" &
tail_pid=$!
PIDS+=($tail_pid)
n=0
while kill -0 "$tail_pid" 2>/dev/null; do
  n=$((n + 1)); [ $n -lt 300 ] || fail "aspen hooks tail printed nothing"
  echo "$n" > "$A/tailed"; sleep 0.2
done
grep -q '"type":"kv.write".*"node":3' "$T/tail.out" || fail "hooks tail output: $(cat "$T/tail.out")"
pass "aspen hooks tail streams node 3's events"
