#!/bin/bash
# Robustness runs against real clusters with injected faults (see aspen-robustness --help).
#   scripts/robustness.sh            the bounded CI profile (each scenario once, ~2.5 minutes)
#   scripts/robustness.sh long [MIN] the long profile: scenarios in turn for MIN minutes (30)
#   scripts/robustness.sh broken     a deliberately broken build (linearizable reads served
#                                    without a leadership check): the checker must FAIL it
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-ci}" in
ci)
  cargo build --locked --bins
  exec target/debug/aspen-robustness --profile ci --seconds 20 ;;
long)
  cargo build --locked --release --bins
  exec target/release/aspen-robustness --profile long --minutes "${2:-30}" --seconds 60 ;;
broken)
  CARGO_TARGET_DIR=target/broken cargo build --locked --release --bins --features broken-reads
  log=$(mktemp)
  status=0
  target/broken/release/aspen-robustness --profile one --scenario partition --seconds 30 "${@:2}" | tee "$log" || status=$?
  if [ "$status" -eq 1 ] && grep -q "not linearizable" "$log"; then
    echo "the checker caught the broken build, as it must"
  else
    echo "the broken build was not caught (exit status $status)" >&2; exit 1
  fi ;;
*) echo "usage: $0 [ci|long [MINUTES]|broken]" >&2; exit 2 ;;
esac
