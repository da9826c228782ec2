#!/usr/bin/env bash
# Generates bindings-node/generated/types.d.ts from the core's Rust types (ts-rs derives behind
# allowly-core's `typescript` feature; the generator is src/bin/gen_types.rs). index.d.ts imports
# every wire type from that file.
#
#   scripts/gen-types.sh           regenerate the committed file
#   scripts/gen-types.sh --check   regenerate into a temporary folder and fail if the committed file
#                                  differs (run by scripts/node-test.sh)
set -euo pipefail
pkg=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$pkg/.." && pwd)
committed="$pkg/generated/types.d.ts"

generate() {
  (cd "$root" && cargo run --quiet --locked -p allowly-node --features typescript --bin allowly-node-gen-types -- "$1")
}

case "${1:-}" in
  --check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    generate "$tmp/types.d.ts"
    if ! diff -u "$committed" "$tmp/types.d.ts"; then
      echo
      echo "FAIL  bindings-node/generated/types.d.ts is stale: the Rust types of the operation catalog changed."
      echo "      Run bindings-node/scripts/gen-types.sh and commit the result (then fix index.d.ts if tsc complains)."
      exit 1
    fi
    echo "generated/types.d.ts matches the Rust types"
    ;;
  "")
    mkdir -p "$pkg/generated"
    generate "$committed"
    echo "wrote ${committed#"$root"/}"
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
