#!/bin/bash
# A file held open across a leader change, and what users get without a quorum.
. "$(dirname "$0")/lib.sh"
require_fuse
start_cluster

leader=$(leader_index)
# Hold the file open on a node that is not the leader (its mount survives the kill).
holder=$(( leader % 3 + 1 )); other=$(( holder % 3 + 1 )); [ "$other" = "$leader" ] && other=$(( other % 3 + 1 ))
f=$T/m$holder/kv/held
exec 7>"$f"
echo "before the leader change" >&7
kill_node "$leader"
echo "after the leader change" >&7
exec 7>&-   # close: commits through the new leader
wait_for "the write reached node $other" grep -q "after the leader change" "$T/m$other/kv/held"
[ "$(cat "$T/m$other/kv/held")" = "$(printf 'before the leader change\nafter the leader change')" ] || fail "content after failover"
new=$(leader_index); [ "$new" != "$leader" ] || fail "no new leader"
pass "file held open on node $holder across the leader change (node $leader killed, node $new leads)"

# Bring the old leader back so the rest starts from a healthy cluster.
start_node "$leader"
wait_for "node $leader remounted" mounted "$T/m$leader"

# No quorum: stop two nodes; writes on the third fail with EROFS or EIO in bounded time.
echo kept > "$T/m$holder/kv/kept"
for i in 1 2 3; do [ "$i" != "$holder" ] && kill_node "$i"; done
start=$SECONDS
# (Python reports close(2) errors; shells ignore them for redirections.)
if timeout 60 python3 -c 'import sys; f = open(sys.argv[1], "w"); f.write("x"); f.close()' \
    "$T/m$holder/kv/noquorum" 2>"$T/err"; then fail "a write succeeded without a quorum"; fi
took=$((SECONDS - start))
grep -Eqi "read-only file system|input/output error" "$T/err" || fail "expected EROFS or EIO, got: $(cat "$T/err")"
[ "$took" -lt 45 ] || fail "the write took ${took}s to fail"
pass "no quorum: the write failed in ${took}s with: $(tr -d '\n' < "$T/err" | sed 's/.*: //')"
start=$SECONDS
timeout 60 cat "$T/m$holder/kv/kept" >/dev/null 2>&1 || true
[ $((SECONDS - start)) -lt 45 ] || fail "a read hung without a quorum"
timeout 60 ls "$T/m$holder/kv" >/dev/null 2>&1 || true
[ $((SECONDS - start)) -lt 90 ] || fail "ls hung without a quorum"
pass "no quorum: reads answer or fail in bounded time, never hang"
