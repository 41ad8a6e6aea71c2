#!/bin/bash
# mount -t aspen: mount(8) runs mount.aspen, which detaches once the mount is live.
. "$(dirname "$0")/lib.sh"
require_fuse
[ "$(id -u)" = 0 ] || { echo "SKIPPED: mount -t aspen needs root to install /sbin/mount.aspen" >&2; exit 0; }
start_cluster

# Install the helper where mount(8) looks (restored afterwards).
saved=""; [ -e /sbin/mount.aspen ] && { saved=$T/mount.aspen.saved; cp -P /sbin/mount.aspen "$saved"; }
ln -sf "$ASPEN" /sbin/mount.aspen
restore() { rm -f /sbin/mount.aspen; [ -n "$saved" ] && cp -P "$saved" /sbin/mount.aspen; cleanup; }
trap restore EXIT

mkdir -p "$T/remote"
mount -t aspen "${ADDR[2]}" "$T/remote" -o "token_file=$T/token,_netdev,attr_timeout=1" || fail "mount -t aspen exit $?"
grep -q "^${ADDR[2]} $T/remote fuse.aspen " /proc/mounts || fail "fsname/subtype in /proc/mounts: $(grep remote /proc/mounts)"
echo via-helper > "$T/remote/kv/h"
wait_for "node 1 sees the helper mount's write" grep -qx via-helper "$T/m1/kv/h"
pass "mount -t aspen HOST:PORT DIR: live, fsname=HOST:PORT, subtype aspen"

set +e
mount -t aspen 127.0.0.1:1 "$T/remote2" -o "token_file=$T/token" 2>"$T/err"; code=$?
set -e
[ $code = 32 ] || fail "unreachable cluster: exit $code, want 32"
grep -q "mount.aspen:" "$T/err" || fail "no clear message"
set +e
mount -t aspen "${ADDR[2]}" "$T/remote" -o "token_file=$T/token,no_such_option" 2>"$T/err"; code=$?
set -e
[ $code = 32 ] && grep -q "unknown mount option" "$T/err" || fail "bad option: exit $code: $(cat "$T/err")"
pass "failures exit 32 with a clear message"

daemon=$(pgrep -f "mount.aspen ${ADDR[2]} $T/remote" | head -1)
[ -n "$daemon" ] || fail "no mount daemon found"
umount "$T/remote"
wait_for "the daemon ends on umount" sh -c "! kill -0 $daemon"
pass "umount ends the daemon"
