#!/bin/bash
# Secrets through the mounts of a 3-node cluster sharing one age identity: a write makes
# a version, cat reads the latest from any node, <path>@<N> reads version N, files are
# 0600, rm soft-deletes the latest version, a secret encrypted to another recipient is
# EACCES, and no plaintext reaches the data dirs or the logs.
. "$(dirname "$0")/lib.sh"
require_fuse
"$ASPEN" secrets keygen "$T/keys.txt" >/dev/null || fail "keygen"
# allow_other: other users reach the mount, so only the mode bits can refuse them.
NODE_ARGS=(--age-identity "$T/keys.txt" -o allow_other)
start_cluster
S1=$T/m1/secrets/kv
S2=$T/m2/secrets/kv
TAG=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

mkdir -p "$S1/app/db" || fail "mkdir below /secrets/kv"
echo "first-$TAG" > "$S1/app/db/password" || fail "write version 1"
echo "second-$TAG" > "$S1/app/db/password" || fail "write version 2"
[ "$(cat "$S2/app/db/password")" = "second-$TAG" ] || fail "latest through node 2"
current() { "$ASPEN" -w json secrets kv metadata get "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["current_version"])'; }
[ "$(current app/db/password)" = 2 ] || fail "two writes make two versions, got $(current app/db/password)"
[ "$(cat "$S2/app/db/password@1")" = "first-$TAG" ] || fail "version 1 by name"
[ "$(stat -c %a "$S1/app/db/password")" = 600 ] || fail "mode 0600"
[ "$(ls "$S2/app/db")" = password ] || fail "listing shows the path only"
[ "$(ls "$S2")" = app ] || fail "implicit directory"
[ "$("$ASPEN" secrets kv get app/db/password)" = "second-$TAG" ] || fail "the CLI sees it"
pass "write, cat (latest and @N) and ls through the mounts of two nodes"

if id nobody >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  chmod 755 "$T"
  echo "public-$TAG" > "$T/m2/kv/public" || fail "plain kv write"
  [ "$(setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$T/m2/kv/public")" = "public-$TAG" ] \
    || fail "nobody reads a 0644 kv file (the mount lets other users in)"
  err=$(setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$S2/app/db/password" 2>&1) \
    && fail "nobody read a root-owned 0600 secret"
  case "$err" in *"Permission denied"*) ;; *) fail "expected EACCES for nobody, got: $err" ;; esac
  pass "a 0600 secret owned by root is unreadable for another user"
else
  echo "SKIPPED: the permission check needs root and the user nobody" >&2
fi

rm "$S1/app/db/password" || fail "rm"
if cat "$S2/app/db/password" 2>/dev/null; then fail "a soft-deleted version reads"; fi
[ "$(cat "$S2/app/db/password@1")" = "first-$TAG" ] || fail "older version after rm"
"$ASPEN" secrets kv undelete app/db/password --versions 2 >/dev/null || fail "undelete"
[ "$(cat "$S1/app/db/password")" = "second-$TAG" ] || fail "undeleted version reads"
pass "rm soft-deletes the latest version; undelete restores it"

OTHER=$("$ASPEN" secrets keygen "$T/other.txt") || fail "second keygen"
"$ASPEN" secrets recipients set "$OTHER" >/dev/null || fail "recipients set"
echo "other-$TAG" > "$S1/app/foreign" || fail "write to another recipient"
err=$(cat "$S2/app/foreign" 2>&1) && fail "read without the identity"
case "$err" in *"Permission denied"*) ;; *) fail "expected EACCES, got: $err" ;; esac
pass "a secret this cluster's identity cannot decrypt is EACCES"

echo "canary-$TAG" > "$T/m1/kv/canary" || fail "plain kv write"
wait_for "the scan finds a plain value" grep -rlq --binary-files=text "canary-$TAG" "$T"/n1
for s in "first-$TAG" "second-$TAG" "other-$TAG"; do
  if grep -rl --binary-files=text "$s" "$T"/n* 2>/dev/null; then fail "plaintext $s on disk or in a log"; fi
done
pass "no plaintext in the data dirs or logs"
