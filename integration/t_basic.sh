#!/bin/bash
# Everyday shell use of /kv on node 1's mount, seen from node 3's mount.
. "$(dirname "$0")/lib.sh"
require_fuse
start_cluster
A=$T/m1/kv; C=$T/m3/kv

echo postgres://db:5432 > "$A/url"
[ "$(cat "$A/url")" = postgres://db:5432 ] || fail "cat after echo"
wait_for "node 3 sees the write" grep -qx postgres://db:5432 "$C/url"
pass "echo on node 1, cat on node 3"

mkdir -p "$A/app/db"
echo 5432 > "$A/app/db/port"
ls -l "$A/app/db" | grep -q ' port$' || fail "ls -l lists port"
[ "$(stat -c %s "$A/app/db/port")" = 5 ] || fail "size of port"
pass "mkdir -p, ls -l, stat"

mv "$A/app/db/port" "$A/app/db/port2"
[ ! -e "$A/app/db/port" ] && [ "$(cat "$A/app/db/port2")" = 5432 ] || fail "mv file"
mv "$A/app" "$A/app2"
[ "$(cat "$A/app2/db/port2")" = 5432 ] || fail "mv dir"
wait_for "node 3 sees the moved dir" test -f "$C/app2/db/port2"
pass "mv of a file and of a directory"

if rmdir "$A/app2/db" 2>/dev/null; then fail "rmdir of a non-empty dir"; fi
rm "$A/app2/db/port2"; rmdir "$A/app2/db"; rmdir "$A/app2"
[ ! -e "$A/app2" ] || fail "rmdir"
pass "rm, rmdir (ENOTEMPTY first)"

ln -s url "$A/link"
[ "$(readlink "$A/link")" = url ] && [ "$(cat "$A/link")" = postgres://db:5432 ] || fail "symlink"
if ln "$A/url" "$A/hard" 2>/dev/null; then fail "hard links are refused"; fi
pass "ln -s works; ln (hard) is refused"

touch "$A/empty"
[ -f "$A/empty" ] && [ "$(stat -c %s "$A/empty")" = 0 ] || fail "touch"
touch -d '2001-02-03 04:05:06' "$A/empty"
[ "$(stat -c %Y "$A/empty")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || fail "touch -d sets mtime"
chmod 600 "$A/empty"
[ "$(stat -c %a "$A/empty")" = 600 ] || fail "chmod"
wait_for "node 3 sees mode 600" sh -c "[ \"\$(stat -c %a '$C/empty')\" = 600 ]"
pass "touch, utimens, chmod persist and replicate"

printf 'one\n' > "$A/log"; printf 'two\n' >> "$A/log"
[ "$(cat "$A/log")" = "$(printf 'one\ntwo')" ] || fail "append"
pass "O_APPEND"

# The CLI sees what the mount wrote, and the reverse.
[ "$("$ASPEN" kv get url)" = postgres://db:5432 ] || fail "cli get"
"$ASPEN" kv put from/cli value >/dev/null
wait_for "mount sees the CLI write" grep -qx value "$A/from/cli"
pass "CLI and mount agree"

# xattrs: read-only metadata and stored user attributes.
if command -v getfattr >/dev/null; then
  rev=$(getfattr --only-values -n user.aspen.revision "$A/url")
  [ -n "$rev" ] || fail "user.aspen.revision"
  setfattr -n user.owner -v team-a "$A/url"
  wait_for "xattr replicated" sh -c "[ \"\$(getfattr --only-values -n user.owner '$C/url')\" = team-a ]"
  if setfattr -n user.aspen.revision -v 1 "$A/url" 2>/dev/null; then fail "user.aspen.* is read-only"; fi
  pass "xattrs"
fi

# /cluster status files.
grep -q . "$T/m2/cluster/leader" || fail "cluster/leader"
[ "$(wc -l < "$T/m1/cluster/members")" = 3 ] || fail "cluster/members has 3 lines"
grep -q '^aspen_raft_term' "$T/m1/cluster/metrics" || fail "metrics"
grep -q '^ok' "$T/m3/cluster/health" || fail "health"
pass "/cluster files"

# statfs has real figures.
df "$T/m1" | tail -1 | awk '{ exit !($2 > 0) }' || fail "df shows a size"
pass "statfs"
