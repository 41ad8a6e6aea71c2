#!/bin/bash
# demo.sh: build, start a single embedded node in a temp dir, mount it, do a put and a
# get through the file system and through the CLI, then stop it (it unmounts itself).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
A=$PWD/target/release/aspen
D=$(mktemp -d /tmp/aspen-demo.XXXXXX); mkdir -p "$D/mnt"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$A" up "$D/mnt" --data-dir "$D/data" --listen 127.0.0.1:$port &
up=$!
trap 'kill -TERM $up 2>/dev/null; wait $up 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do grep -q " $D/mnt fuse" /proc/mounts && break; sleep 0.1; done
export ASPEN_ENDPOINTS=127.0.0.1:$port ASPEN_TOKEN_FILE=$D/data/client.token
echo "postgres://db:5432" > "$D/mnt/kv/app-db-url"
echo "cat through the mount: $(cat "$D/mnt/kv/app-db-url")"
"$A" kv put app/mode on
echo "get through the CLI:   $("$A" kv get app/mode)"
echo "ls of the mount:"; ls -l "$D/mnt/kv"
echo "cluster health:        $(cat "$D/mnt/cluster/health")"
