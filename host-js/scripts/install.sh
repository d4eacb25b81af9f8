#!/usr/bin/env bash
# Installs what host-js needs to build and test, idempotently: the wasm32 target
# and wasm-opt (scripts/install-wasm-toolchain.sh), wasm-bindgen-cli at exactly
# Cargo.lock's wasm-bindgen version, the npm packages, and Debian's Chromium for
# the browser tests. Safe to run again; does nothing that is already done.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "$here/.." && pwd)"

# The wasm32 standard library and binaryen's wasm-opt at the pinned version
# (`cargo xtask build-wasm` optimises every artifact with it).
bash "$root/scripts/install-wasm-toolchain.sh"

# wasm-bindgen-cli must match the wasm-bindgen crate exactly.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$root/Cargo.lock")"
if [ -z "$want" ]; then
  echo "install.sh: Cargo.lock has no wasm-bindgen package" >&2
  exit 1
fi
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have" != "$want" ]; then
  echo "install.sh: installing wasm-bindgen-cli $want (found: ${have:-none})"
  cargo install wasm-bindgen-cli --version "$want"
fi

# Debian's Chromium for playwright-core (it never downloads a browser of its own).
if ! [ -x /usr/bin/chromium ]; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium
fi

# npm packages, at the versions package-lock.json pins. `npm install` rather than
# `npm ci`: jco's dependency tree has platform-specific optional packages that npm
# leaves out of lock files written on Linux, and `npm ci` then refuses the lock as
# "out of sync"; `npm install` installs the pinned versions all the same.
cd "$here"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
  && [ -d node_modules/playwright-core ] && [ -d node_modules/@bytecodealliance/jco ]; then
  : # already installed from this lock file
else
  npm install --no-audit --no-fund
fi
