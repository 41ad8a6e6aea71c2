#!/bin/bash
# Bad input through the mount gets a clear errno and the daemon keeps serving; a killed
# daemon leaves a mount that umount clears, and `aspen up` explains how.
. "$(dirname "$0")/lib.sh"
require_fuse
start_cluster
K=$T/m1/kv

# errno_of OP PATH: runs one raw syscall from Python and prints the errno name (or OK).
errno_of() {
  python3 - "$@" <<'PY'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
op, path = sys.argv[1], sys.argv[2].encode("utf-8", "surrogateescape")
if op == "mkdir":
    rc = libc.mkdir(path, 0o755)
elif op == "creat":
    rc = libc.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
elif op == "creat_raw":  # name bytes exactly as given, NUL included, after the directory
    d, name = os.path.split(path)
    fd = os.open(d, os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(name + b"\0", len(name) + 1)
    rc = libc.openat(fd, buf, os.O_CREAT | os.O_WRONLY, 0o644)
print("OK" if rc >= 0 else errno.errorcode[ctypes.get_errno()])
PY
}

long=$(printf 'n%.0s' $(seq 1 256))
[ "$(errno_of creat "$K/$long")" = ENAMETOOLONG ] || fail "256-byte name: $(errno_of creat "$K/$long")"
[ "$(errno_of mkdir "$K/$long")" = ENAMETOOLONG ] || fail "256-byte dir name"
ok255=$(printf 'n%.0s' $(seq 1 255))
[ "$(errno_of creat "$K/$ok255")" = OK ] || fail "255-byte name must work"
pass "names over 255 bytes: ENAMETOOLONG (255 works)"

# A NUL ends the name at the syscall boundary; a '/' makes it a path. Neither reaches the
# daemon as part of a name, and neither breaks it.
[ "$(errno_of creat "$K/missing-dir/x")" = ENOENT ] || fail "slash in a name"
[ "$(errno_of creat_raw "$K/nul"$'\x01'"name")" = OK ] || fail "control characters are fine in names"
pass "names with / resolve as paths (ENOENT), odd bytes are stored"

# A key over 4096 bytes: nested directories until the path is too long.
d=$K; depth=0; res=OK
while [ "$res" = OK ] && [ $depth -lt 40 ]; do
  d="$d/$(printf 'd%.0s' $(seq 1 200))"; depth=$((depth + 1)); res=$(errno_of mkdir "$d")
done
[ "$res" = ENAMETOOLONG ] || fail "key over 4 KiB gave $res at depth $depth"
pass "paths over the key limit: ENAMETOOLONG (at depth $depth)"

for tree in topics hooks; do
  r=$(errno_of creat "$T/m1/$tree/x"); [ "$r" = EOPNOTSUPP ] || [ "$r" = ENOTSUP ] || fail "create in /$tree gave $r"
done
r=$(errno_of mkdir "$T/m1/hooks/d"); [ "$r" = EOPNOTSUPP ] || [ "$r" = ENOTSUP ] || fail "mkdir in /hooks gave $r"
# /secrets holds the services' own directories (kv/) only.
r=$(errno_of creat "$T/m1/secrets/x"); [ "$r" = EPERM ] || fail "create in /secrets gave $r"
r=$(errno_of mkdir "$T/m1/secrets/d"); [ "$r" = EPERM ] || fail "mkdir in /secrets gave $r"
r=$(errno_of creat "$T/m1/cluster/x"); [ "$r" = EPERM ] || [ "$r" = EACCES ] || fail "create in /cluster gave $r"
# In /topics, mkdir makes a topic; files are only the service's own.
r=$(errno_of mkdir "$T/m1/topics/t"); [ "$r" = OK ] || fail "mkdir of a topic gave $r"
r=$(errno_of creat "$T/m1/topics/t/x"); [ "$r" = EOPNOTSUPP ] || [ "$r" = ENOTSUP ] || fail "create in a topic gave $r"
r=$(errno_of mkdir "$T/m1/topics/t/messages/d"); [ "$r" = EPERM ] || fail "mkdir in messages/ gave $r"
rmdir "$T/m1/topics/t" || fail "rmdir of a topic"
pass "trees without that operation refuse it with a clear errno"

echo still > "$K/alive" && [ "$(cat "$K/alive")" = still ] || fail "daemon stopped serving"
pass "the daemon keeps serving after bad input"

# Kill node 1's daemon: its mount is stale until umount clears it.
kill_node 1
if ls "$T/m1" >/dev/null 2>"$T/err"; then fail "a dead daemon's mount still answers"; fi
grep -qi "not connected" "$T/err" || fail "expected ENOTCONN, got $(cat "$T/err")"
if "$ASPEN" up "$T/m1" --data-dir "$T/up" --listen 127.0.0.1:$(free_port) 2>"$T/up.err"; then fail "aspen up on a stale mount"; fi
grep -q "umount $T/m1" "$T/up.err" || fail "aspen up does not say how to clear the stale mount: $(cat "$T/up.err")"
pass "aspen up on a stale mount explains: $(head -c 120 "$T/up.err")..."
umount "$T/m1" || fail "umount of the stale mount"
! mounted "$T/m1" || fail "still mounted"
pass "umount clears a dead daemon's mount"

# aspen up: mounts, serves, and unmounts cleanly on SIGTERM.
"$ASPEN" up "$T/m1" --data-dir "$T/up" --listen 127.0.0.1:$(free_port) >"$T/up.log" 2>&1 &
up=$!; PIDS+=($up)
wait_for "aspen up mounted" mounted "$T/m1"
echo embedded > "$T/m1/kv/hello"; [ "$(cat "$T/m1/kv/hello")" = embedded ] || fail "aspen up serves"
kill -TERM $up; wait $up || fail "aspen up exited non-zero on SIGTERM"
! mounted "$T/m1" || fail "aspen up left its mount behind"
pass "aspen up mounts, serves and unmounts on SIGTERM"
