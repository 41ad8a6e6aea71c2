#!/bin/bash
# cp -r of a tree with binary files into node 1's mount and out of node 3's mount: identical.
. "$(dirname "$0")/lib.sh"
require_fuse
start_cluster

src=$T/src; mkdir -p "$src/a/b/c" "$src/empty"
head -c 300000 /dev/urandom > "$src/a/random.bin"
head -c 1048576 /dev/urandom > "$src/a/b/exactly-1MiB.bin"
printf '\0\1\2\377binary\0tail' > "$src/a/b/c/nul.bin"
: > "$src/a/zero-length"
for i in $(seq 1 200); do echo "file $i" > "$src/a/b/c/f$i.txt"; done
ln -s ../random.bin "$src/a/b/link"

cp -r "$src" "$T/m1/kv/tree"
wait_for "node 3 has the whole tree" test -f "$T/m3/kv/tree/a/b/c/f200.txt"
cp -r "$T/m3/kv/tree" "$T/out"
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
diff <(sums "$src") <(sums "$T/out") || fail "checksums differ after the round trip"
diff <(cd "$src" && find . | sort) <(cd "$T/out" && find . | sort) || fail "tree shapes differ"
[ "$(readlink "$T/out/a/b/link")" = ../random.bin ] || fail "symlink target"
[ -d "$T/out/empty" ] || fail "empty directory survives"
pass "cp -r in and out: $(find "$src" -type f | wc -l) files, identical checksums"

# Too big: one byte over the value limit is EFBIG, and nothing half-written remains.
if head -c 1048577 /dev/zero > "$T/m1/kv/too-big" 2>"$T/err"; then fail "a value over 1 MiB was accepted"; fi
grep -qi "too large" "$T/err" || fail "expected EFBIG (File too large), got: $(cat "$T/err")"
# As on a local file system with a size limit, what fit before the limit is kept.
[ "$(stat -c %s "$T/m1/kv/too-big")" -le 1048576 ] || fail "more than the limit was stored"
pass "write past the value limit fails with EFBIG"
