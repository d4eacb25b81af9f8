#!/usr/bin/env bash
# The main job: builds the taglock CLI and runs it on the example policies, then
# puts the enforcing proxy in front of a real registry and shows it at work:
#
#   1. `taglock check/test/eval` on examples/*.json — validation and lints, which
#      tags each policy protects, decisions for real requests;
#   2. a real docker-registry (CNCF distribution) on 127.0.0.1 with a temporary
#      storage directory, `taglock serve` in front of it with
#      examples/proxy/policy.json and examples/proxy/users.json, and the pattern
#      tester served by the same proxy at /ui/tester/;
#   3. skopeo pushing a protected tag through the proxy, the refused overwrite and
#      delete;
#   4. Envoy in front of the same registry with the taglock filter, configured by
#      `taglock envoy bootstrap`: the same pushes and refusals, Envoy's counters;
#      then the commands to try yourself. Ctrl-C stops everything.
#
# `--no-serve` stops after step 1. TAGLOCK_DEMO_PORT picks the proxy's port
# (default 8765).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -q -p taglock-cli
taglock=target/release/taglock

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@" || true; }
title() { printf '\n\033[1;34m== %s ==\033[0m\n' "$*"; }

title "The CLI on the example policies"
for policy in examples/*.json; do
  run "$taglock" check "$policy"
done
run "$taglock" test examples/bitbucket.json --image acme/web v1.2.0 v1.2 prod preprod release-2026-04 latest
run "$taglock" test examples/stackit.json --image team-a/web v1.0.0 rc test nightly
run "$taglock" test examples/ecr.json --image acme/web v1.0.0 latest dev-feature
for dir in examples/requests/*/; do
  policy="examples/$(basename "$dir").json"
  for request in "$dir"*.json; do
    run "$taglock" eval --compact "$policy" "$request"
  done
done

if [ "${1:-}" = "--no-serve" ]; then
  exit 0
fi

# The pattern tester's engine (the web build of the same core).
bash host-js/scripts/install.sh >/dev/null
cargo xtask build-wasm >/dev/null

title "The enforcing proxy in front of a real registry"
demo="$(mktemp -d -t taglock-demo-XXXXXX)"
pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$demo"
  printf '\nstopped the proxy and the registry; removed %s\n' "$demo"
}
trap stop EXIT INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() { # URL: polls until it answers at all, for at most 20 s
  for _ in $(seq 200); do
    python3 - "$1" <<'PY' 2>/dev/null && return 0
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
    sleep 0.1
  done
  echo "demo.sh: $1 did not answer" >&2
  return 1
}

# The registry: Debian's docker-registry, loopback only, deletes enabled.
registry_port="$(free_port)"
mkdir -p "$demo/storage"
cat >"$demo/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $demo/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$registry_port
  secret: taglock-demo-only
YAML
/usr/bin/docker-registry serve "$demo/registry.yml" >"$demo/registry.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$registry_port/v2/"
echo "docker-registry on http://127.0.0.1:$registry_port (storage $demo/storage)"

# The proxy, with the example policy and users, serving the tester at /ui/.
port="${TAGLOCK_DEMO_PORT:-8765}"
"$taglock" serve --upstream "http://127.0.0.1:$registry_port" \
  --policy examples/proxy/policy.json --users examples/proxy/users.json \
  --audit-log "$demo/audit.jsonl" --ui host-js --listen "127.0.0.1:$port" \
  >"$demo/serve.out" 2>"$demo/serve.log" &
pids+=($!)
for _ in $(seq 300); do
  grep -q '^taglock serve: listening on ' "$demo/serve.out" 2>/dev/null && break
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    cat "$demo/serve.log" >&2
    echo "demo.sh: taglock serve exited" >&2
    exit 1
  fi
  sleep 0.1
done
proxy_url="$(sed -n 's/^taglock serve: listening on //p' "$demo/serve.out" | head -1)"
[ -n "$proxy_url" ] || { cat "$demo/serve.log" >&2; echo "demo.sh: taglock serve did not start" >&2; exit 1; }
proxy="${proxy_url#http://}"
echo "taglock serve on $proxy_url (policy examples/proxy/policy.json, users examples/proxy/users.json)"

# Two tiny OCI images to push: different content, so different digests.
python3 - "$demo" <<'PY'
import hashlib, io, json, os, sys, tarfile
root = sys.argv[1]
for name in ("one", "two"):
    layout = os.path.join(root, "images", name)
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    def blob(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}
    content = ("taglock demo image %s\n" % name).encode()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("hello.txt"); info.size = len(content)
        t.addfile(info, io.BytesIO(content))
    layer = blob(tar.getvalue())
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    manifest = blob(json.dumps({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar")]}).encode())
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [dict(manifest,
            mediaType="application/vnd.oci.image.manifest.v1+json",
            annotations={"org.opencontainers.image.ref.name": "latest"})]}, f)
PY
images="$demo/images"

push() { # USER IMAGE TAG LAYOUT
  run skopeo --insecure-policy copy --quiet --preserve-digests --dest-tls-verify=false \
    --dest-creds "$1:$1-demo" "oci:$images/$4:latest" "docker://$proxy/$2:$3"
}
title "skopeo through the proxy (users and passwords: examples/proxy/README.md)"
push alice acme/web v1.0.0 one
push alice acme/web v1.0.0 two
push alice acme/web v1.0.0 one
digest="$(skopeo inspect --tls-verify=false --creds alice:alice-demo --format '{{.Digest}}' "docker://$proxy/acme/web:v1.0.0")"
run skopeo delete --tls-verify=false --creds alice:alice-demo "docker://$proxy/acme/web@$digest"
push quinn acme/web v1.1.0 one
push bob acme/deploy v1.0.0 one
push ci-web acme/deploy v1.0.0 one
title "The audit log: one JSON line per decision ($demo/audit.jsonl), manifests only"
python3 - "$demo/audit.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if "/manifests/" not in e["path"]:
        continue
    actor = e.get("actor") or {}
    who = "%s %s" % (actor.get("kind", "?"), actor.get("id", ""))
    if "decision" in e:
        d = e["decision"]
        outcome = d["reason"] + ("" if d["allowed"] else " (%d)" % d["status"])
    else:
        r = e["refusal"]
        outcome = "refused by the proxy: %s (%d)" % (r["code"], r["status"])
    print("%-6s %-44s %-22s %s" % (e["method"], e["path"][:44], who, outcome))
PY

title "The same core inside Envoy: taglock envoy bootstrap, then envoy -c"
# ECR-style immutability (examples/ecr.json: every tag but `latest` and `dev-*`
# immutable); the registry would authenticate clients itself, so the policy
# checks no permissions.
envoy_port="$(free_port)"
admin_port="$(free_port)"
run "$taglock" envoy bootstrap --policy examples/ecr.json --upstream "127.0.0.1:$registry_port" \
  --listen "127.0.0.1:$envoy_port" --admin "127.0.0.1:$admin_port" --out "$demo/envoy"
envoy="target/envoy/envoy/_bin/envoy"
"$envoy" -c "$demo/envoy/envoy.yaml" --use-dynamic-base-id --log-level warn \
  >"$demo/envoy.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$admin_port/ready" || { cat "$demo/envoy.log" >&2; echo "demo.sh: envoy did not start" >&2; exit 1; }
echo "Envoy on http://127.0.0.1:$envoy_port (admin http://127.0.0.1:$admin_port), filter and config in $demo/envoy"
envoy_push() { # IMAGE TAG LAYOUT
  run skopeo --insecure-policy copy --quiet --preserve-digests --dest-tls-verify=false \
    "oci:$images/$3:latest" "docker://127.0.0.1:$envoy_port/$1:$2"
}
envoy_push team/api v1.0.0 one
envoy_push team/api v1.0.0 two
envoy_push team/api latest two
envoy_push team/api latest one
say "curl -s http://127.0.0.1:$admin_port/stats | grep taglock_"
curl -s "http://127.0.0.1:$admin_port/stats" | grep taglock_ || true

cat <<TXT

$(printf '\033[1m')Try it yourself$(printf '\033[0m') (the proxy: $proxy_url, the registry direct: http://127.0.0.1:$registry_port)

  # push a protected tag (a new semver tag: allowed, and from now on immutable)
  skopeo --insecure-policy copy --preserve-digests --dest-tls-verify=false --dest-creds bob:bob-demo \\
    oci:$images/one:latest docker://$proxy/acme/web:v2.0.0

  # try to overwrite it with another image: refused, with the reason
  skopeo --insecure-policy copy --preserve-digests --dest-tls-verify=false --dest-creds bob:bob-demo \\
    oci:$images/two:latest docker://$proxy/acme/web:v2.0.0

  # delete it: refused for its repository's admin (alice), allowed for a workspace admin (root)
  skopeo delete --tls-verify=false --creds alice:alice-demo docker://$proxy/acme/web@$digest
  skopeo delete --tls-verify=false --creds root:root-demo docker://$proxy/acme/web@$digest

  # what the policy would protect among the registry's tags
  $taglock preview --registry http://127.0.0.1:$registry_port --policy examples/proxy/policy.json

  # every decision, one JSON line each
  tail -f $demo/audit.jsonl

  # the same refusal through Envoy with the filter (ECR-style policy)
  skopeo --insecure-policy copy --preserve-digests --dest-tls-verify=false \\
    oci:$images/two:latest docker://127.0.0.1:$envoy_port/team/api:v1.0.0

The pattern tester: $proxy_url/ui/tester/
Metrics: $proxy_url/metrics, Envoy's: http://127.0.0.1:$admin_port/stats/prometheus
Ctrl-C stops the proxy, Envoy and the registry.
TXT
wait "${pids[@]}"
