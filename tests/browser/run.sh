#!/usr/bin/env bash
# Browser tests of the web client: installs what is missing, builds the server if needed, runs
# node's test runner. Exits non-zero when a test fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "installing chromium…"
  apt-get update -qq && apt-get install -y -qq chromium
fi
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool"; }
done

# The same build `cargo test` makes (dependencies, whisper.cpp above all, are optimised in it).
cd "$root"
cargo build --quiet

cd "$here"
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
mkdir -p "$root/tests/artifacts"
exec node --test --test-concurrency=1 --test-reporter=spec "$@" ./*.test.mjs
