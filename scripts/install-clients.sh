#!/usr/bin/env bash
# Installs the further real clients the proxy is tested with (cli/tests/serve_clients.rs):
# Debian's `podman` and `buildah` (both push from their own image storage, no daemon:
# the tests pull an OCI layout into a private vfs storage and push from there), the
# Python libraries oras-py needs (Debian's python3-requests, python3-jsonschema), and
# oras-py itself (PyPI's `oras` 0.2.43, hash-pinned in scripts/oras-requirements.txt)
# into target/oras/, where the tests find it (or at $TAGLOCK_ORAS_DIR). The tests run
# it with Debian's /usr/bin/python3, which sees the Debian packages.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
/usr/bin/python3 -c 'import requests, jsonschema' >/dev/null 2>&1 ||
  missing+=(python3-requests python3-jsonschema)
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)

if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  echo "install-clients.sh: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

dir="${TAGLOCK_ORAS_DIR:-$PWD/target/oras}"
want="0.2.43"
if [ ! -f "$dir/oras-$want.dist-info/METADATA" ]; then
  rm -rf "$dir"
  /usr/bin/python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$dir" --require-hashes -r scripts/oras-requirements.txt
fi

PYTHONPATH="$dir" /usr/bin/python3 -c 'import oras.client, oras.oci; oras.oci.Subject' ||
  { echo "install-clients.sh: oras-py does not import from $dir" >&2; exit 1; }
echo "install-clients.sh: $(podman --version), $(buildah --version | cut -d' ' -f1-3), oras-py $want at $dir"
