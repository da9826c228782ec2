#!/usr/bin/env bash
# Runs the README's quickstart block as written, in a scratch copy of the repository's examples, so
# the documentation cannot drift from the tool; then, in the same shell, the README's reference
# verifier block (the reference verifier from the virtualenv of scripts/reference-venv.sh).
# Asserts every decision and exit code the walk-through promises, and that it writes nothing
# outside quickstart/ (which the repository's .gitignore ignores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# block <name>: the fenced block between <!-- name:begin --> and <!-- name:end --> in README.md.
block() {
  sed -n "/<!-- $1:begin -->/,/<!-- $1:end -->/p" "$root/README.md" | sed '1,2d;$d' | sed '$d'
}
block quickstart > "$work/quickstart.sh"
[ -s "$work/quickstart.sh" ] || { echo "no quickstart block found in README.md"; exit 1; }
block reference-verify > "$work/reference-verify.sh"
[ -s "$work/reference-verify.sh" ] || { echo "no reference-verify block found in README.md"; exit 1; }
grep -q '^pip install allowly-receipt-format==5.0.0' "$work/reference-verify.sh" \
  || { echo "the reference-verify block does not install allowly-receipt-format==5.0.0"; exit 1; }

[ -x "$root/target/release/allowly" ] || cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin allowly
reference=$("$root/scripts/reference-venv.sh")

run="$work/run"
mkdir -p "$run/target"
cp -r "$root/examples" "$run/examples"
ln -s "$root/target/release" "$run/target/release"
cd "$run"
# The reference block runs in the quickstart's shell (it uses $WS and $FP), with the reference
# venv's pip and allowly-receipt-verify first on PATH (the pip line finds the package installed).
unset ALLOWLY_HOME ALLOWLY_URL ALLOWLY_API_KEY ALLOWLY_DATABASE_URL
PATH="$reference/bin:$PATH" bash -eu -c "source '$work/quickstart.sh'; echo '--- reference verifier'; source '$work/reference-verify.sh'" \
  > "$work/output.txt" 2>&1 || { cat "$work/output.txt"; echo "the README quickstart failed"; exit 1; }
cat "$work/output.txt"

fail() { echo "quickstart: $*"; exit 1; }
# The walk-through must show each decision and exit code it promises.
for expected in "email.send  allow" "email.send  confirm" "exit code 4" "user_confirmed" \
                "refund.issue  escalate" "exit code 5" "escalation_approved" "denied, exit code 3" \
                "budget_exceeded" "attempt 3 denied, exit code 3"; do
  grep -qF -- "$expected" "$work/output.txt" || fail "output lacks \`$expected\`"
done
# Two allowed budget attempts, then the third denied.
if grep -qE "attempt [12] denied" "$work/output.txt"; then fail "a budget attempt under the cap was denied"; fi
# The reference verifier accepted the export.
# Both verifiers accepted every receipt of the export, the same number.
ours=$(sed -n '/^--- reference verifier$/q;p' "$work/output.txt" | grep -oE '^[0-9]+ ok, 0 invalid' || true)
theirs=$(sed -n '/^--- reference verifier$/,$p' "$work/output.txt" | grep -oE '^[0-9]+ ok, 0 invalid' || true)
[ -n "$ours" ] || fail "allowly verify did not report every receipt ok"
[ "$theirs" = "$ours" ] || fail "the reference verifier reported \`${theirs:-nothing}\`, allowly verify \`$ours\`"

# Everything it wrote is under quickstart/, which git ignores in the repository.
extra=$(ls -A "$run" | grep -vxE 'examples|target|quickstart' || true)
[ -z "$extra" ] || fail "wrote outside quickstart/: $extra"
[ -d "$run/quickstart/home" ] && [ -s "$run/quickstart/receipts.jsonl" ] || fail "no quickstart/home or quickstart/receipts.jsonl"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  for file in quickstart/home/allowly.db quickstart/receipts.jsonl quickstart/keys.json; do
    git -C "$root" check-ignore -q "$file" || fail "the repository's .gitignore does not ignore $file"
  done
fi
echo "readme quickstart: ok"
