#!/bin/bash
# bench/put-vs-etcd.sh: Aspen's put throughput and latency against etcd 3.4, both as
# 3-member clusters on loopback with fsync on, measured in one run on one machine.
#
#   ETCD_PUT_LOAD=/path/to/etcd-put-load bench/put-vs-etcd.sh [ROUNDS] [TOTAL]
#
# Needs Debian's etcd-server and the etcd load generator from the shared bench tools
# (built outside this repository). Rounds alternate the two systems; medians are printed
# with the ratio Aspen/etcd. Data dirs live under $BENCH_DIR (default: a temp dir on the
# same disk as /tmp).
set -euo pipefail
ROUNDS=${1:-3}
TOTAL=${2:-20000}
ASPEN=${ASPEN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/aspen}
LOAD=${ETCD_PUT_LOAD:?set ETCD_PUT_LOAD to the etcd-put-load binary}
command -v etcd >/dev/null || { echo "needs etcd (apt-get install etcd-server)" >&2; exit 1; }
D=${BENCH_DIR:-$(mktemp -d /tmp/aspen-bench.XXXXXX)}
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_aspen() {
  rm -rf "$D/aspen"; mkdir -p "$D/aspen"
  head -c 32 /dev/urandom | base64 > "$D/aspen/secret"; head -c 32 /dev/urandom | base64 > "$D/aspen/token"
  A=(); for i in 1 2 3; do A[$i]=127.0.0.1:$(free_port); done
  peers="1=${A[1]},2=${A[2]},3=${A[3]}"
  for i in 1 2 3; do
    extra=(); [ $i = 1 ] && extra=(--init --peers "$peers")
    RUST_LOG=warn "$ASPEN" node --id $i --data-dir "$D/aspen/n$i" --listen "${A[$i]}" \
      --secret-file "$D/aspen/secret" --token-file "$D/aspen/token" "${extra[@]}" 2>"$D/aspen/n$i.log" &
    PIDS+=($!)
  done
  export ASPEN_TOKEN_FILE=$D/aspen/token ASPEN_ENDPOINTS="${A[1]},${A[2]},${A[3]}"
  for _ in $(seq 1 300); do "$ASPEN" kv put warmup x >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "aspen cluster did not come up" >&2; exit 1
}

start_etcd() {
  rm -rf "$D/etcd"; mkdir -p "$D/etcd"
  E=(); P=(); for i in 1 2 3; do E[$i]=127.0.0.1:$(free_port); P[$i]=127.0.0.1:$(free_port); done
  cl="n1=http://${P[1]},n2=http://${P[2]},n3=http://${P[3]}"
  for i in 1 2 3; do
    etcd --name n$i --data-dir "$D/etcd/n$i" --listen-client-urls "http://${E[$i]}" \
      --advertise-client-urls "http://${E[$i]}" --listen-peer-urls "http://${P[$i]}" \
      --initial-advertise-peer-urls "http://${P[$i]}" --initial-cluster "$cl" \
      --initial-cluster-token bench --initial-cluster-state new --logger zap --log-level warn \
      >"$D/etcd/n$i.log" 2>&1 &
    PIDS+=($!)
  done
  ETCD_EPS="${E[1]},${E[2]},${E[3]}"
  for _ in $(seq 1 300); do "$LOAD" "$ETCD_EPS" 1 1 >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "etcd cluster did not come up" >&2; exit 1
}

field() { sed -n "s|.*$1=\([0-9.]*\).*|\1|p"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

start_aspen; start_etcd
echo "aspen: $ASPEN_ENDPOINTS   etcd: $ETCD_EPS   rounds=$ROUNDS total=$TOTAL (1-client runs use TOTAL/10)"
for clients in 1 64; do
  n=$TOTAL; [ $clients = 1 ] && n=$((TOTAL / 10))
  : > "$D/a$clients"; : > "$D/e$clients"
  for r in $(seq 1 "$ROUNDS"); do
    a=$("$ASPEN" bench put --clients $clients --total $n --value-size 100 --prefix "r$r")
    e=$("$LOAD" "$ETCD_EPS" $clients $n 100 "r$r")
    echo "  $a"; echo "  $e"
    echo "$a" >> "$D/a$clients"; echo "$e" >> "$D/e$clients"
  done
  ap=$(field 'puts/s' < "$D/a$clients" | median); ep=$(field 'puts/s' < "$D/e$clients" | median)
  a50=$(field p50 < "$D/a$clients" | median); e50=$(field p50 < "$D/e$clients" | median)
  a99=$(field p99 < "$D/a$clients" | median); e99=$(field p99 < "$D/e$clients" | median)
  printf 'clients=%-3s aspen %7.0f puts/s p50 %.2f ms p99 %.2f ms | etcd %7.0f puts/s p50 %.2f ms p99 %.2f ms | throughput ratio %.2fx, p50 ratio %.2fx\n' \
    $clients "$ap" "$a50" "$a99" "$ep" "$e50" "$e99" "$(echo "$ap / $ep" | bc -l)" "$(echo "$a50 / $e50" | bc -l)"
done
