#!/usr/bin/env bash
# Installs everything taglock's builds and tests need on a fresh machine:
# rustfmt and clippy, the wasm32 target, wasm-bindgen-cli at the exact version of
# the wasm-bindgen crate, Debian's Chromium, the npm packages, and the real
# registry and client the proxy is tested against (docker-registry, skopeo), the
# further clients (podman, buildah, oras-py), and the Envoy the proxy-wasm filter
# is tested in.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup component list --installed 2>/dev/null || true)
  for component in rustfmt clippy; do
    grep -q "^$component" <<<"$installed" || rustup component add "$component"
  done
fi
bash scripts/install-wasm-toolchain.sh
bash host-js/scripts/install.sh
bash scripts/install-registry.sh
bash scripts/install-clients.sh
bash scripts/install-envoy.sh
