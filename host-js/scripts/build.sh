#!/usr/bin/env bash
# Builds the web flavour of policy-wasm into host-js/pkg/ (what index.js loads),
# through the project's one build entry point for wasm artifacts
# (`cargo xtask build-wasm`, which runs xtask/src/web.rs). Honours CARGO_TARGET_DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here/.."
cargo xtask build-wasm
