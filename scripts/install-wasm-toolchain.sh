#!/usr/bin/env bash
# Installs what `cargo xtask build-wasm` needs: the wasm32-unknown-unknown Rust
# target (the component imports nothing, so no WASI target is needed) and
# binaryen's `wasm-opt` at the version the artifacts are built with (xtask/src/opt.rs,
# WASM_OPT_VERSION: Debian 12's `binaryen` package), so the committed component is
# reproducible. Idempotent and non-interactive; safe to run on every CI job.
set -euo pipefail

wasm_opt_version=108

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

have="$(wasm-opt --version 2>/dev/null | awk '{print $3}' || true)"
if [ "$have" = "$wasm_opt_version" ]; then
  echo "wasm-opt (binaryen $wasm_opt_version) already installed"
else
  if [ -n "$have" ]; then
    echo "found wasm-opt from binaryen $have; the build needs binaryen $wasm_opt_version" >&2
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install binaryen $wasm_opt_version (wasm-opt) by hand: this script knows only apt" >&2
    exit 1
  fi
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq binaryen
  have="$(wasm-opt --version 2>/dev/null | awk '{print $3}' || true)"
  if [ "$have" != "$wasm_opt_version" ]; then
    echo "wasm-opt reports binaryen ${have:-nothing} after installing; need $wasm_opt_version" >&2
    exit 1
  fi
fi
