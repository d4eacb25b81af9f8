#!/usr/bin/env bash
# Runs every test of taglock: formatting, lints, the embedded component's sync with
# the sources, the Rust suites (unit, conformance corpus natively and through the
# component, property tests, CLI with both engines, host, the Envoy filter in a
# real Envoy), the JS package's suites (corpus in Node, pattern tester in headless
# Chromium), and a bounded run of every fuzz target.
# Installs what it needs itself (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p taglock-envoy --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p taglock-policy-core --no-default-features --all-targets -- -D warnings

step "wasm artifacts build from source; the embedded component and Envoy filter are up to date"
cargo xtask build-wasm --check

step "cargo test (unit, conformance corpus, properties, component host, CLI, doc tests)"
cargo test --workspace

step "policy-core as the WebAssembly builds compile it (no fast-matching: the bounded backtracker)"
cargo test -p taglock-policy-core --no-default-features

step "fuzz targets: a bounded run of each, from the committed regressions and seeds"
cargo xtask fuzz --seconds 20

step "host-js: the corpus in Node, the pattern tester in Chromium"
(cd host-js && npm test)
