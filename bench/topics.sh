#!/bin/bash
# bench/topics.sh [ROUNDS] [N]: topic throughput on a 3-node cluster on loopback (fsync
# on), next to `aspen bench put` in the same run: 100-byte messages, 16 publishers and 4
# consumers of one group, through the client (`aspen bench topic`: one publish per
# command; each consumption a claim and an acknowledgement) and through node 1's mount
# (16 shell loops of `printf > publish`, then 4 loops of `cat next`, which claims at open
# and acknowledges at close). Prints each round and the medians, with ratios to puts/s.
#
# Needs root and /dev/fuse for the mount part, and a release build (cargo build --release).
set -euo pipefail
ROUNDS=${1:-3}
N=${2:-4000}
ASPEN=${ASPEN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/aspen}
D=$(mktemp -d /tmp/aspen-topics-bench.XXXXXX)
PIDS=()
cleanup() {
  umount "$D/m1" 2>/dev/null || umount -l "$D/m1" 2>/dev/null || true
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }'; }

head -c 32 /dev/urandom | base64 > "$D/secret"; head -c 32 /dev/urandom | base64 > "$D/token"
for i in 1 2 3; do A[$i]=127.0.0.1:$(free_port); done
mkdir -p "$D/m1"
for i in 1 2 3; do
  extra=(); [ $i = 1 ] && extra=(--init --peers "1=${A[1]},2=${A[2]},3=${A[3]}" --mount "$D/m1")
  RUST_LOG=warn "$ASPEN" node --id $i --data-dir "$D/n$i" --listen "${A[$i]}" \
    --secret-file "$D/secret" --token-file "$D/token" "${extra[@]}" 2>"$D/n$i.log" &
  PIDS+=($!)
done
export ASPEN_TOKEN_FILE=$D/token ASPEN_ENDPOINTS="${A[1]},${A[2]},${A[3]}"
for _ in $(seq 1 300); do "$ASPEN" kv put warmup x >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 1 300); do grep -q " $D/m1 fuse.aspen" /proc/mounts && break; sleep 0.1; done

msg=$(head -c 100 /dev/zero | tr '\0' m)
: > "$D/results"
for r in $(seq 1 "$ROUNDS"); do
  put=$("$ASPEN" bench put --clients 16 --total "$N" | sed -n 's/.*puts\/s=\([0-9]*\).*/\1/p')
  line=$("$ASPEN" bench topic --publishers 16 --consumers 4 --total "$N")
  cpub=$(sed -n 's/.*publish\/s=\([0-9]*\).*/\1/p' <<<"$line")
  ccon=$(sed -n 's/.*consume\/s=\([0-9]*\).*/\1/p' <<<"$line")
  T=$D/m1/topics/t$r
  mkdir "$T" "$T/groups/g"
  per=$((N / 16)); t0=$(now)
  W=()
  for w in $(seq 1 16); do ( for ((i = 0; i < per; i++)); do printf '%s' "$msg" > "$T/publish"; done ) & W+=($!); done
  wait "${W[@]}"
  t1=$(now); mpub=$(rate $((per * 16)) "$t0" "$t1")
  [ "$(ls "$T/messages" | wc -l)" = $((per * 16)) ] || { echo "mount publish lost messages" >&2; exit 1; }
  per=$((per * 16 / 4)); t0=$(now)
  W=()
  for w in 1 2 3 4; do ( for ((i = 0; i < per; i++)); do cat "$T/groups/g/next" > /dev/null; done ) & W+=($!); done
  wait "${W[@]}"
  t1=$(now); mcon=$(rate $((per * 4)) "$t0" "$t1")
  [ "$(cat "$T/groups/g/offset")" = $((per * 4)) ] || { echo "mount consume: offset $(cat "$T/groups/g/offset")" >&2; exit 1; }
  rmdir "$T"
  echo "round $r: put/s=$put client publish/s=$cpub consume/s=$ccon mount publish/s=$mpub consume/s=$mcon"
  echo "$put $cpub $ccon $mpub $mcon" >> "$D/results"
done
python3 - "$D/results" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
cols = list(zip(*rows))
med = [statistics.median(c) for c in cols]
names = ["put/s (anchor)", "client publish/s", "client consume/s", "mount publish/s", "mount consume/s"]
print(f"medians over {len(rows)} rounds:")
for n, m in zip(names, med):
    print(f"  {n:20s} {m:8.0f}   ratio to put/s {m / med[0]:.2f}")
PY
