#!/bin/bash
# Runs every shell test against real mounts: integration/run.sh [path/to/aspen]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export ASPEN=$(cd "$(dirname "${1:-$here/../target/debug/aspen}")" && pwd)/$(basename "${1:-aspen}")
[ -x "$ASPEN" ] || { echo "no aspen binary at $ASPEN (cargo build first)" >&2; exit 1; }
failed=0
for t in "$here"/t_*.sh; do
  echo "== $(basename "$t")"
  if ! bash "$t"; then echo "FAILED: $(basename "$t")"; failed=$((failed + 1)); fi
done
echo "== integration: $failed failed"
[ "$failed" = 0 ]
