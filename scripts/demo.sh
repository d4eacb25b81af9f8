#!/usr/bin/env bash
# The main job: builds the taglock CLI and runs it on the example policies,
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
