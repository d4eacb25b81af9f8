#!/usr/bin/env bash
# Installs what `cargo xtask build-wasm` needs: the wasm32-unknown-unknown Rust
# target (the component imports nothing, so no WASI target is needed).
# Idempotent and non-interactive; safe to run on every CI job.
set -euo pipefail

if ! command -v rustup >/dev/null 2>&1; then
  echo "rustup is required (https://rustup.rs)" >&2
  exit 1
fi

toolchain="${RUSTUP_TOOLCHAIN:-$(rustup show active-toolchain | cut -d' ' -f1)}"
if rustup target list --installed --toolchain "$toolchain" | grep -qx wasm32-unknown-unknown; then
  echo "wasm32-unknown-unknown already installed for $toolchain"
else
  rustup target add --toolchain "$toolchain" wasm32-unknown-unknown
fi
