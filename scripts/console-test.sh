#!/usr/bin/env bash
# The web console in a real browser: Debian's Chromium driven by playwright-core walks every screen
# of `allowly serve`'s console (tests/console/walk.test.mjs): sign-in, Scopes, Approvals answered
# for checks made with the Node SDK, Receipts, Receipt and Download, Verify signed out, Revoke, the
# Overview against the API, CSRF, escaping, headers, no key in any page, rate-limited sign-ins,
# axe-core on every screen at 1280x800 and 390x844, and full-page screenshots of each screen in
# target/console-screenshots/.
# Idempotent; works on a fresh clone: builds target/release/allowly and the SDK's native addon if
# needed, installs Chromium (apt-get, as root) if missing, then `npm ci` in tests/console/. Starts
# its own `allowly serve` on a temporary home and a free port, and stops it and removes the home at
# exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset ALLOWLY_DATABASE_URL

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; exit 1; }

command -v node >/dev/null || fail "node (>= 20) is required"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail "node >= 20 is required, found $(node --version)"

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  step "installing Chromium (Debian's package)"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install --no-install-recommends -y -qq chromium >/dev/null
  else
    fail "$chromium is missing: install Debian's chromium (apt-get install --no-install-recommends chromium)"
  fi
  [ -x "$chromium" ] || fail "$chromium is still missing after installing chromium"
fi
export CHROMIUM="$chromium"
echo "$("$chromium" --version 2>/dev/null || echo chromium)"

step "allowly (release)"
cargo build --release --locked --quiet -p allowly-cli
allowly="${CARGO_TARGET_DIR:-$root/target}/release/allowly"

step "@allowly/sdk and its native addon (as scripts/node-test.sh builds them)"
(
  cd bindings-node
  npm install --no-audit --no-fund --ignore-scripts --loglevel=error
  npx napi build --platform --release --js native.cjs --dts native.d.ts
)

step "playwright-core and axe-core (tests/console/package-lock.json)"
(cd tests/console && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step "allowly serve on a temporary home and a free port"
"$allowly" --home "$work/home" serve --listen 127.0.0.1:0 --checkpoint-interval 0 >"$work/out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 300); do
  grep -q 'runtime key' "$work/out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q 'runtime key' "$work/out" 2>/dev/null || { cat "$work/server.log"; fail "the server did not start"; }
ALLOWLY_URL=$(grep -o 'listening on http://[0-9.:]*' "$work/out" | head -1 | sed 's/listening on //')
ALLOWLY_SETUP_KEY=$(grep -o 'allowly\.setup\.[^ ]*' "$work/out" | head -1)
ALLOWLY_RUNTIME_KEY=$(grep -o 'allowly\.runtime\.[^ ]*' "$work/out" | head -1)
ALLOWLY_WORKSPACE_ID=$(grep -o 'workspace ws_[0-9A-Za-z]*' "$work/out" | head -1 | cut -d' ' -f2)
export ALLOWLY_URL ALLOWLY_SETUP_KEY ALLOWLY_RUNTIME_KEY ALLOWLY_WORKSPACE_ID
echo "server at $ALLOWLY_URL, workspace $ALLOWLY_WORKSPACE_ID"

step "the walk (node:test)"
shots="${CARGO_TARGET_DIR:-$root/target}/console-screenshots"
rm -rf "$shots"
export ALLOWLY_SCREENSHOTS="$shots"
status=0
(cd tests/console && node --test --test-reporter=spec walk.test.mjs) || status=$?
if [ "$status" != 0 ]; then
  echo "--- server log (last 40 lines)"
  tail -40 "$work/server.log"
  exit "$status"
fi
echo
echo "screenshots: $(find "$shots" -name '*.png' | wc -l) in ${shots#"$root"/}"
echo "console tests passed"
