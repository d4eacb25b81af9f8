#!/usr/bin/env bash
# The main job: builds the taglock CLI and runs it on the example policies,
# then serves the pattern tester on 127.0.0.1 (`--no-serve` skips that),
# showing what a registry operator sees: validation and lints, which tags each
# policy protects, and decisions for real requests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -q -p taglock-cli
taglock=target/release/taglock

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@" || true; }

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

# The pattern tester: the web build of the same core, served on loopback.
if [ "${1:-}" != "--no-serve" ]; then
  bash host-js/scripts/install.sh >/dev/null
  cargo xtask build-wasm >/dev/null
  port=8765
  printf '\n\033[1mThe pattern tester: http://127.0.0.1:%s/tester/  (Ctrl-C to stop)\033[0m\n' "$port"
  exec python3 -m http.server "$port" --bind 127.0.0.1 --directory host-js
fi
