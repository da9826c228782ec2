#!/usr/bin/env bash
# Runs every test of the project. Safe to run on a fresh clone: it builds what it needs and installs
# the reference verifier into a throwaway virtualenv under target/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

step "the repository stands alone: nothing refers to a folder beside the clone"
if git grep -nE '\.\./+shared' -- . ; then
  echo "the files above reach into a folder beside the repository, which a clone does not have: copy what they need into the repo"
  exit 1
fi

step "PostgreSQL for the tests of the PostgreSQL store and of scale-out (a throwaway cluster under /tmp)"
pg_was_running=0
scripts/postgres.sh status 2>/dev/null && pg_was_running=1
eval "$(scripts/postgres.sh start)"
# A cluster this run started is deleted at exit (not only stopped: its files would stay in /tmp).
[ "$pg_was_running" = 1 ] || trap 'scripts/postgres.sh destroy || true' EXIT
# Belt and braces (a failed start above leaves no URL, and eval does not fail): a PostgreSQL test
# that finds no ALLOWLY_TEST_DATABASE_URL then fails instead of skipping.
export ALLOWLY_REQUIRE_POSTGRES=1

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build (release; the interop tests and benches reuse it)"
cargo build --release --workspace --all-targets --locked

step "rust tests (core + cli)"
# Output shown as it runs and kept: a PostgreSQL test that skipped (no server) fails the run.
rust_log=target/rust-tests.log
cargo test --release --workspace --locked 2>&1 | tee "$rust_log"
if grep -q 'SKIPPED (PostgreSQL)' "$rust_log"; then
  grep 'SKIPPED (PostgreSQL)' "$rust_log"
  echo "the PostgreSQL tests above skipped although this script started a server: they must run here"
  exit 1
fi

step "without PostgreSQL, plain cargo test passes and says loudly that the PostgreSQL tests skipped"
no_pg=$(env -u ALLOWLY_TEST_DATABASE_URL -u ALLOWLY_REQUIRE_POSTGRES \
  cargo test --release --locked -q -p allowly-core --test postgres 2>&1) || { echo "$no_pg"; exit 1; }
grep -q 'SKIPPED (PostgreSQL)' <<<"$no_pg" || { echo "$no_pg"; echo "the PostgreSQL tests neither ran nor said they skipped"; exit 1; }

step "the conformance vectors are part of the repo: without them their tests fail, never skip"
for suite in wire5_vectors verify_many; do
  if output=$(ALLOWLY_WIRE5_VECTORS=/nonexistent/wire5.json cargo test --release --locked -q --workspace --test "$suite" 2>&1); then
    echo "core/tests/$suite.rs passed without its vectors"
    exit 1
  fi
  grep -q "cannot read the vectors" <<<"$output" || { echo "$output"; echo "core/tests/$suite.rs failed for another reason"; exit 1; }
done

step "benches compile"
cargo bench --workspace --locked --no-run

step "interop with the reference verifier allowly-receipt-format 5.0.0"
scripts/interop.sh

step "a 1,000,000-receipt export: allowly verify in bounded memory, the reference verifier on a sample"
scripts/scale-test.sh

step "HTTP runtime: official client allowly 0.8.0, SIGTERM/SIGINT, SIGKILL under load"
scripts/server-test.sh

step "Python SDK: the wheel, embedded and against allowly serve, verifier parity, stubs"
scripts/python-test.sh

step "MCP guard in Python (allowly.mcp): fastmcp 4 and the official mcp 2.x MCPServer, the stdio example"
scripts/mcp-python-test.sh

step "Node SDK (@allowly/sdk): embedded and remote, fallback, interop, event loop, the MCP guard, tsc"
scripts/node-test.sh

step "C SDK: liballowly and allowly.h (header check, plain, ASan+UBSan, valgrind, remote)"
scripts/c-test.sh

step "conformance: every operation of the catalog from Rust, Python, Node and C, embedded and remote"
scripts/conformance-test.sh

step "the docs: every example of docs/http-api.md and docs/policy-format.md against allowly serve"
scripts/docs-test.sh

step "console: every screen in Chromium (playwright-core, axe-core), screenshots"
scripts/console-test.sh

step "the README quickstart, as written"
scripts/readme-quickstart.sh

printf '\nall tests passed\n'
