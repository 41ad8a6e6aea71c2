#!/bin/bash
# Topics through the mounts of a 3-node cluster: mkdir makes topics and groups, each
# write(2) to publish is one message, and the consumer loop of DESIGN.md section 5
# (`cat claim`, read the pending file, `rm` it) run by several consumers on different
# nodes at once processes every message exactly once. Bad input gets clear errors.
. "$(dirname "$0")/lib.sh"
require_fuse
start_cluster
N=60
TOP=$T/m1/topics

mkdir "$TOP/orders" || fail "mkdir topic"
mkdir "$TOP/orders/groups/billing" || fail "mkdir group"
for i in $(seq 1 $N); do echo "order $i" > "$TOP/orders/publish" || fail "publish $i"; done
[ "$(ls "$T/m2/topics/orders/messages" | wc -l)" = $N ] || fail "node 2 lists $N messages"
[ "$(cat "$T/m3/topics/orders/messages/0")" = "order 1" ] || fail "message 0 through node 3"
[ "$(head -n 2 "$T/m2/topics/orders/stream")" = "$(printf 'order 1\norder 2')" ] || fail "stream through node 2"
[ "$(wc -l < "$T/m3/topics/orders/stream")" = $N ] || fail "the stream has a line per message"
pass "$N messages published through node 1, read through nodes 2 and 3 (messages/, stream)"

# tail -f of the stream on node 3 follows a publish through node 1.
tail -n 0 -f "$T/m3/topics/orders/stream" > "$T/tailf.out" 2>/dev/null &
PIDS+=($!)
wait_for "tail -f started" sh -c "ls -l /proc/$!/fd | grep -q stream"
echo "late order" > "$TOP/orders/publish"
wait_for "tail -f of node 3's stream shows the publish on node 1" grep -qx "late order" "$T/tailf.out"
pass "tail -f of a topic's stream follows new messages"

# Two writes through one open are two messages, published at close.
python3 - "$TOP/orders/publish" <<'PY' || fail "two writes, one open"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"order 62\n"); os.write(fd, b"order 63\n")
os.close(fd)
PY
N=63
[ "$(cat "$T/m2/topics/orders/messages/62")" = "order 63" ] || fail "the second write is message 62"

# Three consumers, one per node, each running the loop from DESIGN.md.
for i in 1 2 3; do
  (
    cd "$T/m$i/topics/orders/groups/billing" || exit 1
    while m=$(cat claim) && [ -n "$m" ]; do
      cat "$m" >> "$T/consumed.$i" && rm "$m"
    done
  ) &
  PIDS+=($!)
  CONSUMERS+=($!)
done
for p in "${CONSUMERS[@]}"; do wait "$p" || fail "a consumer loop failed"; done
cat "$T"/consumed.* | sort > "$T/consumed"
{ seq 1 60; echo late order; seq 62 63; } | sed 's/^\([0-9]\)/order \1/' | sort > "$T/expected"
diff "$T/expected" "$T/consumed" >/dev/null || fail "consumed messages differ: $(diff "$T/expected" "$T/consumed" | head -5)"
[ "$(cat "$T/m2/topics/orders/groups/billing/offset")" = $N ] || fail "committed offset"
[ -z "$(ls "$T/m1/topics/orders/groups/billing/pending")" ] || fail "claims left pending"
pass "three consumers on three nodes processed every message exactly once ($(wc -l < "$T/consumed.1"), $(wc -l < "$T/consumed.2"), $(wc -l < "$T/consumed.3"))"

G=$T/m2/topics/orders/groups
mkdir "$G/audit" || fail "second group"
[ "$(cat "$G/audit/next")" = "order 1" ] || fail "next gives the first message"
[ "$(cat "$G/audit/next")" = "order 2" ] || fail "closing next acknowledged the first"
echo start > "$G/audit/offset" || fail "seek to start"
[ "$(cat "$G/audit/next")" = "order 1" ] || fail "after a seek to the start"
pass "a second group sees every message; next acknowledges at close; offset seeks"

echo '{"max_messages": 10, "max_bytes": null, "max_age_secs": null}' > "$TOP/orders/config" || fail "config"
[ "$(ls "$TOP/orders/messages" | wc -l)" = 10 ] || fail "retention kept 10"
[ "$(ls "$TOP/orders/messages" | head -1)" = $((N - 10)) ] || fail "the oldest went first"
pass "retention through the config file removes the oldest messages"

# Bad input.
( echo x > "$TOP/nope/publish" ) 2>/dev/null && fail "publish to a missing topic"
head -c 2000000 /dev/zero > "$T/big"
if dd if="$T/big" of="$TOP/orders/publish" bs=2000000 count=1 status=none 2>"$T/dd.err"; then
  fail "a 2 MB message was accepted"
fi
grep -q "too large" "$T/dd.err" || fail "EFBIG expected: $(cat "$T/dd.err")"
m=$(cd "$TOP/orders/groups/billing" && echo 99 > ../../publish && cat claim)
[ -n "$m" ] || fail "claim after a new message"
if command -v getfattr >/dev/null; then
  [ "$(getfattr --only-values -n user.aspen.deliveries "$TOP/orders/groups/billing/$m")" = 1 ] \
    || fail "a claim's delivery count as an xattr"
  getfattr --only-values -n user.aspen.consumer "$TOP/orders/groups/billing/$m" | grep -q '^mount-' \
    || fail "a claim's consumer as an xattr"
fi
rm "$TOP/orders/groups/billing/$m" || fail "ack"
rm "$TOP/orders/groups/billing/$m" 2>/dev/null && fail "a second ack of the same claim"
echo '{"max_messages": "lots"}' > "$TOP/orders/config" 2>/dev/null && fail "bad config accepted"
# Messages are published at close; an error there is close(2)'s (the topic went away).
mkdir "$TOP/brief" || fail "mkdir brief"
python3 - "$TOP/brief" <<'PY' || fail "close(2) did not report the lost topic"
import errno, os, sys
d = sys.argv[1]
fd = os.open(d + "/publish", os.O_WRONLY)
os.write(fd, b"one")
os.write(fd, b"two")
os.rmdir(d)
try:
    os.close(fd)
except OSError as e:
    sys.exit(0 if e.errno == errno.ENOENT else 1)
sys.exit(1)
PY
rmdir "$TOP/orders/groups/audit" || fail "rmdir group"
rmdir "$TOP/orders" || fail "rmdir topic"
[ -z "$(ls "$T/m3/topics")" ] || fail "topic still listed on node 3"
pass "bad input: missing topic, oversized message, double ack, bad config, topic gone before close; rmdir removes"
