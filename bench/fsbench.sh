#!/bin/bash
# bench/fsbench.sh [NFILES] [BIGMB]: the same small-file and sequential workload on tmpfs,
# on a plain FUSE pass-through (libfuse's passthrough_ll example, compiled here, backed
# by tmpfs) and on /kv of a 3-node Aspen cluster on loopback, in one run; prints each
# figure and the ratios /kv : pass-through and /kv : tmpfs.
#
# Needs root (tmpfs mounts), Debian's fuse3 and libfuse3-dev, gcc, and a release build
# (cargo build --release). Aspen keeps values up to 1 MiB, so on /kv the sequential
# phase writes and reads BIGMB files of 1 MiB each instead of one BIGMB file; the other
# two systems run both forms.
set -euo pipefail
N=${1:-10000}
MB=${2:-1024}
WRITERS=16
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ASPEN=${ASPEN:-$ROOT/target/release/aspen}
D=$(mktemp -d /tmp/aspen-fsbench.XXXXXX)
PIDS=()
cleanup() {
  cd /
  for m in "$D/kv-mnt" "$D/pt" "$D/tmpfs" "$D/ptsrc"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- the three file systems ----
mkdir -p "$D/tmpfs" "$D/ptsrc" "$D/pt" "$D/kv-mnt"
mount -t tmpfs -o size=4g tmpfs "$D/tmpfs"
mount -t tmpfs -o size=4g tmpfs "$D/ptsrc"
src=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
[ -f "$src" ] || { echo "needs libfuse3-dev (apt-get install libfuse3-dev)" >&2; exit 1; }
gcc -O2 -Wall "$src" $(pkg-config fuse3 --cflags --libs) -o "$D/passthrough_ll"
"$D/passthrough_ll" -o source="$D/ptsrc" "$D/pt" &
PIDS+=($!)

head -c 32 /dev/urandom | base64 > "$D/secret"; head -c 32 /dev/urandom | base64 > "$D/token"
for i in 1 2 3; do A[$i]=127.0.0.1:$(free_port); done
for i in 1 2 3; do
  extra=(); [ $i = 1 ] && extra=(--init --peers "1=${A[1]},2=${A[2]},3=${A[3]}" --mount "$D/kv-mnt")
  RUST_LOG=warn "$ASPEN" node --id $i --data-dir "$D/n$i" --listen "${A[$i]}" --secret-file "$D/secret" \
    --token-file "$D/token" "${extra[@]}" 2>"$D/n$i.log" &
  PIDS+=($!)
done
for _ in $(seq 1 300); do
  grep -q " $D/pt fuse" /proc/mounts && grep -q " $D/kv-mnt fuse.aspen" /proc/mounts && \
    echo ok > "$D/kv-mnt/kv/.ready" 2>/dev/null && break
  sleep 0.1
done
rm -f "$D/kv-mnt/kv/.ready"

# ---- the workload; one "name value unit seconds" line per phase ----
workload() { # DIR SEQ(single|files)
  local dir=$1 seq=$2 W="$1/fsb" data t0 t1
  mkdir -p "$W/d" "$W/p"
  data=$(head -c 100 /dev/zero | tr '\0' x)
  cd "$W/d"
  t0=$(now); for ((i = 0; i < N; i++)); do printf '%s' "$data" > "f$i"; done; t1=$(now)
  echo "create+write_100B $N files $(secs $t0 $t1)"
  t0=$(now); stat -c %s -- f* > /dev/null; t1=$(now)
  echo "stat $N files $(secs $t0 $t1)"
  t0=$(now); bytes=$(cat -- f* | wc -c); t1=$(now)
  [ "$bytes" -eq $((N * 100)) ] || echo "WARN: read $bytes bytes" >&2
  echo "read_100B $N files $(secs $t0 $t1)"
  t0=$(now); ls -f > /dev/null; t1=$(now)
  echo "readdir_ls-f $N entries $(secs $t0 $t1)"
  t0=$(now); ls -l > /dev/null; t1=$(now)
  echo "readdir_ls-l $N entries $(secs $t0 $t1)"
  t0=$(now); rm -f -- f*; t1=$(now)
  echo "unlink $N files $(secs $t0 $t1)"
  cd "$W/p"
  local writers=()
  t0=$(now)
  for ((w = 0; w < WRITERS; w++)); do
    ( for ((i = w; i < N; i += WRITERS)); do printf '%s' "$data" > "f$i"; done ) &
    writers+=($!)
  done
  wait "${writers[@]}"; t1=$(now)
  echo "create+write_100B_x$WRITERS $N files $(secs $t0 $t1)"
  rm -f -- f*
  cd "$W"
  if [ "$seq" = single ]; then
    t0=$(now); dd if=/dev/zero of=big bs=1M count="$MB" conv=fdatasync status=none; t1=$(now)
    echo "seq_write_1file $MB MiB $(secs $t0 $t1)"
    t0=$(now); dd if=big of=/dev/null bs=1M status=none; t1=$(now)
    echo "seq_read_1file $MB MiB $(secs $t0 $t1)"
    rm -f big
  fi
  mkdir -p m
  t0=$(now); for ((i = 0; i < MB; i++)); do dd if=/dev/zero of="m/$i" bs=1M count=1 status=none; done; t1=$(now)
  echo "seq_write_1MiB_files $MB MiB $(secs $t0 $t1)"
  t0=$(now); cat m/* > /dev/null; t1=$(now)
  echo "seq_read_1MiB_files $MB MiB $(secs $t0 $t1)"
  rm -rf m
  cd /; rm -rf "$W"
}

echo "fsbench: N=$N files, $MB MiB sequential, $WRITERS parallel writers; $(nproc) cores; $(date -u +%FT%TZ)"
workload "$D/tmpfs" single > "$D/r.tmpfs"
workload "$D/pt" single > "$D/r.pt"
workload "$D/kv-mnt/kv" files > "$D/r.kv"

printf '\n%-28s %14s %14s %14s %10s %10s\n' phase tmpfs passthrough aspen-kv kv:pt kv:tmpfs
while read -r name count unit s; do
  rate() { awk -v n="$name" -v c="$count" '$1 == n { printf "%.0f", c / ($4 > 0 ? $4 : 1e-9) }' "$1"; }
  t=$(rate "$D/r.tmpfs"); p=$(rate "$D/r.pt"); k=$(rate "$D/r.kv")
  ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo -; }
  printf '%-28s %14s %14s %14s %10s %10s\n' "$name ($unit/s)" "${t:--}" "${p:--}" "${k:--}" "$(ratio "$k" "$p")" "$(ratio "$k" "$t")"
done < "$D/r.tmpfs"
