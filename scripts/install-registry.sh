#!/usr/bin/env bash
# Installs what the proxy's tests, benchmark and demo run against: Debian's
# `docker-registry` (CNCF distribution 2.8, /usr/bin/docker-registry) and `skopeo`
# (the real OCI client). Idempotent and non-interactive: does nothing when both are
# there, otherwise runs `apt-get update` once and installs what is missing.
#
# Debian's package does not start the registry for us to use: the tests and the
# demo run `docker-registry serve CONFIG.yml` themselves, on 127.0.0.1 with a
# temporary storage directory. The package's own service is stopped and disabled
# where a service manager started it, so it never holds port 5000.
set -euo pipefail

missing=()
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-registry.sh: docker-registry and skopeo already installed"
  exit 0
fi

sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
echo "install-registry.sh: installing ${missing[*]}"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"

if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  $sudo_cmd systemctl disable --now docker-registry || true
fi

for tool in /usr/bin/docker-registry skopeo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-registry.sh: $tool is still missing after apt-get install" >&2
    exit 1
  fi
done
echo "install-registry.sh: $(/usr/bin/docker-registry --version 2>/dev/null || echo docker-registry), $(skopeo --version)"
