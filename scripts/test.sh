#!/bin/bash
# The whole test suite: formatting, lints, unit and integration tests (multi-node,
# storage conformance, fault cases), the shell tests against real mounts, and the
# bounded robustness profile (faults injected into a real cluster, histories checked).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
if [ -x integration/run.sh ]; then
  echo "== integration (shell tests on real mounts)"
  cargo build --locked
  integration/run.sh target/debug/aspen
fi
echo "== cargo run picks the aspen binary (the README's run command)"
cargo run --locked -q -- --help > /dev/null
echo "== robustness (bounded profile: kill, pause, partition, full restart; ~2 minutes)"
scripts/robustness.sh ci
echo "== all tests passed"
