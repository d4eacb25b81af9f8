#!/usr/bin/env bash
# Runs every test of taglock: formatting, lints, the Rust test suites (unit,
# conformance corpus, property tests, CLI), and the doc examples.
# Installs what it needs itself (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (unit, conformance corpus, properties, CLI, doc tests)"
cargo test --workspace

step "benchmarks compile"
cargo bench --workspace --no-run
