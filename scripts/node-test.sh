#!/usr/bin/env bash
# Node SDK (@allowly/sdk, bindings-node/): builds the napi addon once (cargo reuses target/), builds
# target/release/allowly if needed, then runs the node:test suite (embedded and against
# `allowly serve`, fallback, reference-verifier interop, event loop, bad input, the MCP guard
# (@allowly/sdk/mcp with the real MCP SDK, and the examples/mcp stdio server), the product-page
# samples, the README's program run as `node app.mjs` in an empty folder), checks that
# bindings-node/generated/types.d.ts is what the core's Rust types generate
# (bindings-node/scripts/gen-types.sh --check) and runs `tsc --noEmit` on the examples against
# index.d.ts. Idempotent; works on a fresh clone. The tests remove the folders they make under the
# temporary folder and stop the servers they start when they exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset ALLOWLY_DATABASE_URL

command -v node >/dev/null || { echo "FAIL  node (>= 20) is required"; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "FAIL  node >= 20 is required, found $(node --version)"; exit 1; }

echo "==> allowly binary (for the server tests)"
cargo build --release --locked --quiet -p allowly-cli
export ALLOWLY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/allowly"

echo "==> reference verifier venv"
export ALLOWLY_REFERENCE_VENV
ALLOWLY_REFERENCE_VENV=$(scripts/reference-venv.sh)

echo "==> @allowly/sdk: npm install (dev tools) and the native addon"
cd bindings-node
# --ignore-scripts: the package's own install script builds the addon; run it explicitly below
# with the CLI from devDependencies, so the build is the same whether or not it is fresh.
npm install --no-audit --no-fund --ignore-scripts --loglevel=error
npx napi build --platform --release --js native.cjs --dts native.d.ts

echo "==> examples/mcp: the stdio MCP server the MCP tests spawn (npm install, tsc: it also type-checks mcp.d.ts)"
(cd "$root/examples/mcp" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error && npx tsc)

echo "==> lints of the binding crate (and of its type generator, feature typescript)"
(cd "$root" && cargo fmt -p allowly-node --check && cargo clippy -p allowly-node --release --locked --all-targets --quiet -- -D warnings)
(cd "$root" && cargo clippy -p allowly-node --locked --all-targets --features typescript --quiet -- -D warnings)

echo "==> generated/types.d.ts is what the Rust types generate (drift check)"
scripts/gen-types.sh --check

echo "==> tsc --noEmit (examples and test/types.check.ts against index.d.ts)"
npx tsc -p tsconfig.json

echo "==> node:test"
node --test --test-reporter=spec test/*.test.mjs

echo
echo "node SDK tests passed"
