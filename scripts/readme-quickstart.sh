#!/usr/bin/env bash
# Runs the README's quickstart block as written, in a scratch copy of the repository's examples, so
# the documentation cannot drift from the tool.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -n '/<!-- quickstart:begin -->/,/<!-- quickstart:end -->/p' "$root/README.md" | sed '1,2d;$d' | sed '$d' > "$work/quickstart.sh"
[ -s "$work/quickstart.sh" ] || { echo "no quickstart block found in README.md"; exit 1; }
cp -r "$root/examples" "$work/examples"
mkdir -p "$work/target" && ln -s "$root/target/release" "$work/target/release"
cd "$work"
bash -eu quickstart.sh > output.txt 2>&1 || { cat output.txt; echo "the README quickstart failed"; exit 1; }
cat output.txt
# The walk-through must show each decision it promises.
for expected in "allow" "confirm" "user_confirmed" "escalation_approved" "denied, exit code 3" \
                "budget_exceeded" "attempt 3 denied" "0 invalid"; do
  grep -q -- "$expected" output.txt || { echo "quickstart output lacks \`$expected\`"; exit 1; }
done
echo "readme quickstart: ok"
